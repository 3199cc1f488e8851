package importer

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mqtape/mqtape/storage"
)

func benchImport(b *testing.B, input []byte, n int, opts Options) {
	b.SetBytes(int64(len(input)))
	var msgs int64
	for b.Loop() {
		c, err := storage.OpenWrite(filepath.Join(b.TempDir(), "b.db"))
		if err != nil {
			b.Fatal(err)
		}
		res, err := New(c, opts).Run(context.Background(), bytes.NewReader(input))
		c.Close()
		if err != nil || res.Messages != int64(n) {
			b.Fatalf("%d messages, %v", res.Messages, err)
		}
		msgs += res.Messages
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkImportJSONL imports 50,000 export lines (100-byte JSON payloads).
func BenchmarkImportJSONL(b *testing.B) {
	const n = 50000
	var in bytes.Buffer
	for i := range n {
		fmt.Fprintf(&in, `{"seq":%d,"session":1,"time":"x","ts_ns":%d,"offset_ns":%d,"topic":"plant/line%d/temp","qos":1,"retain":false,"dup":false,"packet_id":%d,"from_store":false,"client_id":"dev-%d","payload_b64":"","payload":"{\"t\":21.5,\"seq\":%08d,\"pad\":\"%s\"}"}`+"\n",
			i+1, 1e18+int64(i)*1e6, int64(i)*1e6, i%20, i%65535+1, i%50, i, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
	}
	benchImport(b, in.Bytes(), n, Options{Format: FormatJSONL})
}

// BenchmarkImportPcap decodes and imports a capture of 50,000 PUBLISH
// packets (100-byte payloads, five per TCP segment) from 10 connections.
func BenchmarkImportPcap(b *testing.B) {
	const n = 50000
	t := &testing.T{}
	p := newPcap(t)
	var conns []*conn
	for i := range 10 {
		c := p.conn(fmt.Sprintf("10.0.0.%d", i+2), "10.0.0.1", uint16(40000+i), 1883)
		c.syn()
		c.send(connectPkt(fmt.Sprintf("dev-%d", i), 4, ""))
		conns = append(conns, c)
	}
	for i := 0; i < n; i += 5 {
		var seg []byte
		for k := range 5 {
			seg = append(seg, publishPkt(pubSpec{topic: fmt.Sprintf("plant/line%d/temp", (i+k)%20), qos: 1, pid: uint16((i+k)%65535 + 1),
				payload: bytes.Repeat([]byte("x"), 100)})...)
		}
		conns[(i/5)%10].send(seg)
	}
	benchImport(b, p.buf.Bytes(), n, Options{Format: FormatPcap})
}
