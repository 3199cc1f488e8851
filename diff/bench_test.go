package diff

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/mqtape/mqtape/storage"
)

func benchCapture(b *testing.B, n int, change int) *storage.Capture {
	path := filepath.Join(b.TempDir(), "c.db")
	w, err := storage.OpenWrite(path)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, _ := w.BeginSession(ctx, storage.SessionInfo{Source: "import", StartedNS: t0})
	var batch []storage.Message
	for i := range n {
		v := i
		if change > 0 && i%change == 0 {
			v = -i
		}
		batch = append(batch, storage.Message{TimeNS: t0 + int64(i)*1e6, OffsetNS: int64(i) * 1e6, Topic: fmt.Sprintf("plant/m%d", i%50),
			QoS: 1, Payload: []byte(fmt.Sprintf(`{"v":%d,"ts":%d,"unit":"bar","tags":["a","b"]}`, v, i))})
		if len(batch) == 4096 {
			s.Write(ctx, batch, nil, t0)
			batch = batch[:0]
		}
	}
	s.Write(ctx, batch, nil, t0)
	s.End(ctx, t0, "import", 0)
	w.Close()
	c, err := storage.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkCompare compares two captures of 100,000 JSON messages on 50
// topics that differ in every 1000th message, ignoring one field.
func BenchmarkCompare(b *testing.B) {
	const n = 100000
	a, c := benchCapture(b, n, 0), benchCapture(b, n, 1000)
	ts, _ := ParsePath("ts")
	var msgs int64
	for b.Loop() {
		r, err := Compare(context.Background(), a, "a", c, "b", Options{IgnoreFields: []Path{ts}})
		if err != nil || r.Equal {
			b.Fatal(err)
		}
		msgs += 2 * n
	}
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
}
