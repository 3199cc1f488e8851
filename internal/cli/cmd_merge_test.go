package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
