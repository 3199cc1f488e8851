package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/storage"
)

func TestMergeOrderAndMetadata(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	// Both start at the same time (writeCapture's first session): A's
	// messages at even tenths, B's at odd ones, plus a tie.
	var ma, mb []storage.Message
	for i := range 10 {
		ma = append(ma, storage.Message{OffsetNS: int64(2*i) * 1e8, Topic: "a", Payload: []byte(fmt.Sprint(2 * i))})
		mb = append(mb, storage.Message{OffsetNS: int64(2*i+1) * 1e8, Topic: "b", Payload: []byte(fmt.Sprint(2*i + 1))})
	}
	mb = slices.Insert(mb, 9, storage.Message{OffsetNS: 18e8, Topic: "b", Payload: []byte("tie")}) // before B's 1.9 s
	ma[0].FromStore, ma[0].Retain = true, true
	writeCapture(t, a, ma)
	writeCapture(t, b, mb, []storage.Message{{OffsetNS: 0, Topic: "late", Payload: []byte("second session")}})
	ha, hb := fileHash(t, a), fileHash(t, b)
	out := filepath.Join(dir, "all.db")
	code, stdout, stderr := runCLI(t, ctx, "merge", a, b, "-o", out)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "merged 22 messages from 2 captures") {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	if fileHash(t, a) != ha || fileHash(t, b) != hb {
		t.Fatal("merge changed an input")
	}
	msgs, sessions, events := readCapture(t, out)
	var payloads []string
	for _, m := range msgs {
		payloads = append(payloads, string(m.Payload))
	}
	want := "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 tie 19 second session"
	if got := strings.Join(payloads, " "); got != want {
		t.Errorf("order:\n got %s\nwant %s", got, want)
	}
	if len(sessions) != 1 || sessions[0].Source != "merge" || sessions[0].StartedNS != 1_790_000_000_000_000_000 ||
		msgs[21].OffsetNS != 3600e9 || !msgs[0].FromStore {
		t.Errorf("session %+v, last offset %d", sessions, msgs[21].OffsetNS)
	}
	merged := 0
	for _, e := range events {
		if e.Kind == "merged" {
			merged++
		}
	}
	if merged != 3 {
		t.Errorf("merged events: %+v", events)
	}
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{a, "-o", out + "2"}, exitUsage, "at least two"},
		{[]string{a, b}, exitUsage, "missing -o"},
		{[]string{a, b, "-o", a}, exitUsage, "is the input"},
		{[]string{a, filepath.Join(dir, "nope.db"), "-o", out + "3"}, exitCapture, "no such file"},
	} {
		if code, _, stderr := runCLI(t, ctx, append([]string{"merge"}, tt.args...)...); code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%v: exit %d, %s", tt.args, code, stderr)
		}
	}
	if fileExists(out+"2") || fileExists(out+"3") {
		t.Error("a failed merge left a file")
	}
}

// TestMergeSharedSubscription is the README's scale-out recipe: two
// recorders share one $share subscription, each stores part of the traffic,
// and the merge holds all of it, in order.
func TestMergeSharedSubscription(t *testing.T) {
	b := startBroker(t)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var waits []func() (int, string, string)
	var paths []string
	for i := range 2 {
		p := filepath.Join(dir, fmt.Sprintf("rec%d.db", i))
		paths = append(paths, p)
		waits = append(waits, recordCLI(t, ctx, p, "--broker", b.URL(), "-t", "$share/mqtape/plant/#", "--quiet"))
	}
	pub := connect(t, b.URL())
	const n = 60
	for i := range n {
		mustPublish(t, pub, fmt.Sprintf("plant/m%d", i%4), 1, false, []byte(fmt.Sprint(i)))
	}
	count := func(p string) int64 {
		c, err := storage.Open(p)
		if err != nil {
			return 0
		}
		defer c.Close()
		n, _ := c.Count(context.Background(), storage.Query{})
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(paths[0])+count(paths[1]) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	for _, w := range waits {
		if code, _, stderr := w(); code != 0 {
			t.Fatalf("record: %d %s", code, stderr)
		}
	}
	c0, c1 := count(paths[0]), count(paths[1])
	if c0 == 0 || c1 == 0 || c0+c1 != n {
		t.Fatalf("the recorders stored %d and %d of %d messages", c0, c1, n)
	}
	out := filepath.Join(dir, "all.db")
	if code, _, stderr := runCLI(t, context.Background(), "merge", paths[0], paths[1], "-o", out); code != 0 {
		t.Fatalf("merge: %d %s", code, stderr)
	}
	// Ordered by receive time (the broker may deliver to one recorder a
	// little later than to the other), complete, and each recorder's own
	// order kept.
	msgs, _, _ := readCapture(t, out)
	var got []int
	for i, m := range msgs {
		var v int
		fmt.Sscan(string(m.Payload), &v)
		got = append(got, v)
		if i > 0 && m.TimeNS < msgs[i-1].TimeNS {
			t.Fatalf("not in time order at %d", i)
		}
	}
	for _, p := range paths {
		own, _, _ := readCapture(t, p)
		k := 0
		for _, m := range msgs {
			if k < len(own) && string(m.Payload) == string(own[k].Payload) && m.TimeNS == own[k].TimeNS {
				k++
			}
		}
		if k != len(own) {
			t.Errorf("%s: only %d of its %d messages appear in order", p, k, len(own))
		}
	}
	slices.Sort(got)
	for i, v := range got {
		if v != i {
			t.Fatalf("merged payloads %v", got)
		}
	}
}
