package inspector

import (
	"slices"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/gdamore/tcell/v2"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/sparkplugtest"
	"github.com/mqtape/mqtape/storage"
)

// TestDetailDecoded: the detail pane shows a Sparkplug B payload as its
// decoded tree, metric names from the births; v cycles to hex; a payload
// the decoder cannot read shows its error and the hex.
func TestDetailDecoded(t *testing.T) {
	var msgs []storage.Message
	for i, m := range sparkplugtest.EdgeNode()[:4] {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * int64(time.Second), Topic: m.Topic, QoS: 1, Payload: m.Payload})
	}
	msgs = append(msgs, storage.Message{OffsetNS: 5e9, Topic: "spBv1.0/plant/DDATA/edge1/pump1", Payload: []byte{0xff, 0xff}})
	c := open(t, writeCapture(t, msgs))
	reg, err := decode.NewRegistry(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec := export.NewResolver(c, reg).Decode
	h := startOn(t, c, Options{Decode: dec}, 120, 50)
	h.press('G') // the last message: not a Sparkplug payload
	for _, w := range []string{"sparkplug failed, hex (auto)", "decode_error: sparkplug: ", "ff ff"} {
		if !h.contains(w) {
			t.Errorf("want %q on screen:\n%s", w, h.text())
		}
	}
	h.press(tcell.KeyUp) // seq 4: DDATA with aliases only
	for _, w := range []string{"decoded sparkplug (auto)", `"name": "Running"`, `"name": "Count"`, `"alias": 11`} {
		if !h.contains(w) {
			t.Errorf("want %q on screen:\n%s", w, h.text())
		}
	}
	h.press('v', 'v', 'v')
	if !h.contains("view hex") {
		t.Errorf("v cycles to hex:\n%s", h.text())
	}
}

// decodedCapture is sparkplugtest's edge node, a message a second, then
// CBOR readings on sensors/…, with a Resolver decoding sensors/# as CBOR.
func decodedCapture(t *testing.T) (*storage.Capture, DecodeFunc) {
	t.Helper()
	var msgs []storage.Message
	for i, m := range sparkplugtest.EdgeNode() {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * int64(time.Second), Topic: m.Topic, QoS: 1, Payload: m.Payload})
	}
	for i, c := range []float64{19.5, 26.25, 22} {
		b, err := cbor.Marshal(map[string]any{"celsius": c, "id": "s-1"})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, storage.Message{OffsetNS: int64(10+i) * int64(time.Second), Topic: "sensors/s-1", Payload: b})
	}
	c := open(t, writeCapture(t, msgs))
	rules, err := decode.ParseRules([]string{"sensors/#=cbor"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := decode.NewRegistry(rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, export.NewResolver(c, reg).Decode
}

// TestFilterOnDecoded: the / line's .PATH and metric: terms read decoded
// values: Sparkplug metrics by the names their births gave the aliases
// (also a birth's own), CBOR fields; counts follow.
func TestFilterOnDecoded(t *testing.T) {
	c, dec := decodedCapture(t)
	h := startOn(t, c, Options{Decode: dec}, 140, 30)
	for _, tc := range []struct {
		filter string
		seqs   []int64
	}{
		{"metric:Count<0", []int64{5}},           // DDATA with the alias of Count only
		{"metric:Count>=0", []int64{3, 4}},       // the DBIRTH names it itself
		{"metric:Pressure>2", []int64{8}},        // after the rebirth, alias 2 is Pressure
		{"metric:Temperature=21.75", []int64{2}}, // before it, alias 2 is Temperature
		{".celsius>20", []int64{10, 11}},         // CBOR
		{`sensors/# .id="s-1" .celsius<20`, []int64{9}},
	} {
		h.press(tcell.KeyCtrlU, '/', tcell.KeyCtrlU, tc.filter, tcell.KeyEnter)
		var got []int64
		h.state(func(u *UI) {
			for r := range u.m.total {
				if m := u.m.rowAt(u.ctx, r); m != nil {
					got = append(got, m.Seq)
				}
			}
		})
		if !slices.Equal(got, tc.seqs) {
			t.Errorf("/%s selects %v, want %v\n%s", tc.filter, got, tc.seqs, h.text())
		}
	}
}
