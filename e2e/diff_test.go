package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// TestDiffTwoRecordingsOfSameTraffic records the same deterministic traffic
// twice through real brokers and the real recorder: the captures compare
// equal with the defaults, and a changed run does not.
func TestDiffTwoRecordingsOfSameTraffic(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	record := func(name string, change bool) string {
		b := startBroker(t)
		pub := testbroker.Connect(t, b.URL())
		testbroker.Publish(t, pub, "home/door/state", 1, true, []byte(`{"open":false}`))
		path := filepath.Join(dir, name)
		wait := recordCLI(t, ctx, path, "--broker", b.URL(), "--count", "61", "--quiet")
		start := time.Now()
		for i := range 60 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * 20 * time.Millisecond)))
			payload := fmt.Sprintf(`{"t":%d.5,"seq":%d,"ts":%d}`, 20+i%3, i, time.Now().UnixNano())
			if change && i == 30 {
				payload = fmt.Sprintf(`{"t":99.5,"seq":%d,"ts":0}`, i)
			}
			testbroker.Publish(t, pub, fmt.Sprintf("home/room%d/temp", i%3), byte(i%2), false, []byte(payload))
		}
		if code, _, stderr := wait(); code != 0 {
			t.Fatalf("record: %d %s", code, stderr)
		}
		return path
	}
	a, b, c := record("a.db", false), record("b.db", false), record("c.db", true)
	if code, out, stderr := runCLI(t, ctx, "diff", "--ignore-field", "ts", a, b); code != 0 {
		t.Fatalf("two recordings of the same traffic: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ := runCLI(t, ctx, "diff", "--ignore-field", "ts", a, c)
	if code != 1 || !strings.Contains(out, "home/room0/temp") || !strings.Contains(out, "t: 20.5 → 99.5") {
		t.Fatalf("changed run: exit %d\n%s", code, out)
	}
	// Without --ignore-field the embedded send times differ.
	if code, _, _ := runCLI(t, ctx, "diff", a, b); code != 1 {
		t.Errorf("timestamps in payloads compared equal")
	}
	// The retained state came from the broker's store on both sides.
	cap, _ := storage.Open(a)
	defer cap.Close()
	if n, _ := cap.Count(ctx, storage.Query{FromStore: new(true)}); n != 1 {
		t.Errorf("%d retained messages recorded", n)
	}
}
