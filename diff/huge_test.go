package diff

import (
	"context"
	"encoding/json"
	"iter"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mqtape/mqtape/storage"
)

// guarded is a capture that fails the test when a payload over bigPayload
// comes out of Messages, or two are read at the same time.
type guarded struct {
	*storage.Capture
	t       *testing.T
	reading *atomic.Int32 // shared by both sides
	reads   *atomic.Int32
}

func (g guarded) Messages(ctx context.Context, q storage.Query) iter.Seq2[storage.Message, error] {
	return func(yield func(storage.Message, error) bool) {
		for m, err := range g.Capture.Messages(ctx, q) {
			if len(m.Payload) > bigPayload {
				g.t.Errorf("Messages yielded seq %d with its %d-byte payload", m.Seq, len(m.Payload))
			}
			if !yield(m, err) {
				return
			}
		}
	}
}

func (g guarded) Payload(ctx context.Context, seq int64, fn func([]byte) error) error {
	if g.reading.Add(1) > 1 {
		g.t.Errorf("seq %d: two huge payloads read at once", seq)
	}
	defer g.reading.Add(-1)
	g.reads.Add(1)
	return g.Capture.Payload(ctx, seq, fn)
}

// TestCompareHugePayloads: payloads over bigPayload are compared (byte by
// byte, JSON too) without ever being held by a scan, one at a time, and
// the report carries only bounded previews of them.
func TestCompareHugePayloads(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() string {
		b := make([]byte, 2*bigPayload+1)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return string(b)
	}
	bin, other := random(), random()
	text := strings.Repeat("x", 2*bigPayload)
	fill := strings.Repeat("y", bigPayload)
	jsonA, jsonB := `{"a":"`+fill+`","b":1}`, `{"b":1,"a":"`+fill+`"}`
	a := []msg{
		{at: 0, topic: "big/retained", payload: bin, store: true},
		{at: 0, topic: "big/rchanged", payload: bin, store: true},
		{at: 1, topic: "big/bin", payload: bin},
		{at: 1, topic: "big/same", payload: bin},
		{at: 1, topic: "big/text", payload: text + "a"},
		{at: 1, topic: "big/json", payload: jsonA},
		{at: 1, topic: "big/missing", payload: "small"},
		{at: 2, topic: "big/missing", payload: text},
	}
	b := []msg{
		{at: 0, topic: "big/rchanged", payload: other, store: true},
		{at: 1, topic: "big/bin", payload: other},
		{at: 1, topic: "big/same", payload: bin},
		{at: 1, topic: "big/text", payload: text + "b"},
		{at: 1, topic: "big/json", payload: jsonB},
		{at: 1, topic: "big/missing", payload: "small"},
	}
	var reading, reads atomic.Int32
	ga := guarded{capture(t, a), t, &reading, &reads}
	gb := guarded{capture(t, b), t, &reading, &reads}
	r, err := Compare(context.Background(), ga, "a.db", gb, "b.db", Options{IgnoreTiming: true})
	if err != nil {
		t.Fatal(err)
	}
	if reads.Load() == 0 {
		t.Error("no payload was read through Payload")
	}
	changed := map[string]int64{}
	for _, td := range r.Topics {
		changed[td.Topic] = td.Changed + td.Missing
		for _, m := range td.Messages {
			checkPreview(t, td.Topic, m.PayloadA, m.PayloadB)
			if td.Topic == "big/bin" && !strings.HasSuffix(m.PayloadA, "(2097153 bytes)") {
				t.Errorf("big/bin: preview %q does not give the size", m.PayloadA)
			}
		}
	}
	want := map[string]int64{"big/bin": 1, "big/text": 1, "big/json": 1, "big/missing": 1}
	for topic, n := range want {
		if changed[topic] != n {
			t.Errorf("%s: %d changed or missing, want %d (report topics: %v)", topic, changed[topic], n, changed)
		}
	}
	if _, ok := changed["big/same"]; ok {
		t.Error("big/same: identical huge payloads reported as different")
	}
	kinds := map[string]string{}
	for _, d := range r.Retain {
		kinds[d.Topic] = d.Kind
		checkPreview(t, d.Topic, d.PayloadA, d.PayloadB)
	}
	if kinds["big/retained"] != "only_in_a" || kinds["big/rchanged"] != "changed" || len(kinds) != 2 {
		t.Errorf("retained differences %v, want big/retained only_in_a and big/rchanged changed", kinds)
	}
	if js, _ := json.Marshal(r); len(js) > 16<<10 {
		t.Errorf("the JSON report is %d bytes: it carries more than previews", len(js))
	}
}

// checkPreview fails when a report's payload text is more than a preview.
func checkPreview(t *testing.T, topic string, ps ...string) {
	t.Helper()
	for _, p := range ps {
		if len(p) > 2*previewLen {
			t.Errorf("%s: the report holds %d bytes of a payload, more than a preview", topic, len(p))
		}
	}
}
