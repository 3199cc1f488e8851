package export

import (
	"fmt"
	"testing"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// countingWriter counts what it is given.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// benchMessages is device telemetry: JSON on 50 topics, 1 kHz.
func benchMessages(n int) []storage.Message {
	msgs := make([]storage.Message, n)
	for i := range msgs {
		msgs[i] = storage.Message{Seq: int64(i + 1), Session: 1, TimeNS: 1.8e18 + int64(i)*int64(time.Millisecond),
			OffsetNS: int64(i) * int64(time.Millisecond), Topic: fmt.Sprintf("plant/line%d/press-%d/telemetry", i%5, i%10),
			QoS: 1, Payload: fmt.Appendf(nil, `{"cycle":%d,"pressure_bar":%.2f,"rpm":%d,"state":"RUN"}`, i, 180+float64(i%97)/10, 1450+i%20)}
	}
	return msgs
}

// BenchmarkWriters: msgs/s and bytes/msg of each format, on messages held
// in memory (no SQLite: bench/export/run.sh measures whole exports).
func BenchmarkWriters(b *testing.B) {
	msgs := benchMessages(100_000)
	type sink interface {
		Write(*storage.Message, decode.Result) error
	}
	formats := []struct {
		name string
		open func(w *countingWriter) (sink, func() error)
	}{
		{"jsonl", func(w *countingWriter) (sink, func() error) { x := NewJSONWriter(w); return x, x.Flush }},
		{"parquet", func(w *countingWriter) (sink, func() error) { x := NewParquetWriter(w, "bench"); return x, x.Close }},
		{"mcap", func(w *countingWriter) (sink, func() error) {
			x, err := NewMCAPWriter(w, "bench")
			if err != nil {
				b.Fatal(err)
			}
			return x, x.Close
		}},
	}
	for _, f := range formats {
		b.Run(f.name, func(b *testing.B) {
			var out countingWriter
			for b.Loop() {
				out = countingWriter{}
				w, done := f.open(&out)
				for i := range msgs {
					if err := w.Write(&msgs[i], decode.Result{}); err != nil {
						b.Fatal(err)
					}
				}
				if err := done(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(out.n)/float64(len(msgs)), "bytes/msg")
		})
	}
}
