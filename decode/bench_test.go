package decode

import (
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/mqtape/mqtape/internal/sparkplugtest"
)

// BenchmarkDecodeSparkplugData decodes DDATA messages (two metrics, aliases
// only) after their births, as export does.
func BenchmarkDecodeSparkplugData(b *testing.B) {
	reg, _ := NewRegistry(nil, nil)
	dec := reg.NewDecoder()
	msgs := sparkplugtest.EdgeNode()
	for _, m := range msgs[:3] {
		dec.Decode(m.Topic, nil, m.Payload)
	}
	data := msgs[3]
	n := 0
	for b.Loop() {
		if res := dec.Decode(data.Topic, nil, data.Payload); res.Err != nil {
			b.Fatal(res.Err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDecodeCBOR decodes a small CBOR map.
func BenchmarkDecodeCBOR(b *testing.B) {
	reg, _ := NewRegistry([]Rule{{"#", Format{Kind: KindCBOR}}}, nil)
	dec := reg.NewDecoder()
	p, _ := cbor.Marshal(map[string]any{"celsius": 21.5, "id": "s-1", "ok": true, "raw": []byte{1, 2, 3}})
	n := 0
	for b.Loop() {
		if res := dec.Decode("t", nil, p); res.Err != nil {
			b.Fatal(res.Err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
