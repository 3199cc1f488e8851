package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

// splitFixture writes a recording of 30 messages, retained ones among
// them, as three parts (the retained state carried into parts 2 and 3)
// and as one file.
func splitFixture(t *testing.T) (dir string, parts []string, whole string) {
	t.Helper()
	dir = t.TempDir()
	var msgs []storage.Message
	for i := range 30 {
		m := capturetest.Msg(time.Duration(i)*time.Second, fmt.Sprintf("dev/%d", i%4), byte(i%3), fmt.Sprintf(`{"n":%d}`, i))
		if i%7 == 0 {
			m.Topic, m.Retain, m.FromStore = fmt.Sprintf("state/%d", i%2), true, i == 0
		}
		msgs = append(msgs, m)
	}
	parts, whole = capturetest.WriteParts(t, dir, "r1", msgs, 10, 20)
	return filepath.Join(dir, "parts"), parts, whole
}

// TestVerbsReadPartsAsOne: every reading verb given the parts (files, a
// directory, a glob) sees the recording as the unsplit file holds it:
// every message once, in time order, the carried retained rows left out.
func TestVerbsReadPartsAsOne(t *testing.T) {
	ctx := context.Background()
	_, parts, whole := splitFixture(t)
	dir := filepath.Dir(whole)
	for _, p := range parts[1:] {
		msgs, _, _ := capturetest.Read(t, p)
		if !msgs[0].FromStore || msgs[0].OffsetNS != 0 {
			t.Fatalf("%s does not start with carried retained rows: %+v", p, msgs[0])
		}
	}
	run := func(args ...string) string {
		t.Helper()
		code, out, stderr := runCLI(t, ctx, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		return out
	}
	want := run("export", whole)
	glob := filepath.Join(dir, "run-*.db")
	for name, args := range map[string][]string{"files": parts, "glob": {glob}} {
		if got := run(append([]string{"export"}, args...)...); got != want {
			t.Errorf("export of the parts (%s) differs from the unsplit capture's:\n%s\nwant:\n%s", name, got, want)
		}
	}
	// A directory: the parts and whole.db, two recordings read in time
	// order as merge reads them (the retained-store message both got from
	// the broker is kept once).
	if n := strings.Count(run("export", dir), "\n"); n != 59 {
		t.Errorf("export of the directory: %d messages, want 59 (the parts' 30 and whole.db's 30, one retained-store message once)", n)
	}
	// A part alone keeps its carried rows: they are its retained state.
	if n := strings.Count(run("export", parts[1]), "\n"); n <= 10 {
		t.Errorf("export of part 2 alone: %d messages, want its 10 and the carried ones", n)
	}
	var info Info
	if err := json.Unmarshal([]byte(run(append([]string{"info", "--json"}, parts...)...)), &info); err != nil || info.Totals.Messages != 30 {
		t.Errorf("info of the parts: %d messages (%v), want 30", info.Totals.Messages, err)
	}
	// The session read from the parts is the recording's: its source, its
	// clean flag, its last part's stop reason (not "merge"); the size is
	// the parts' together.
	var lastPart Info
	json.Unmarshal([]byte(run("info", "--json", parts[len(parts)-1])), &lastPart)
	var size int64
	for _, p := range parts {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
	}
	if len(info.Sessions) != 1 || info.Sessions[0].Source != "subscriber" || !info.Sessions[0].CleanSession ||
		info.Sessions[0].StopReason != lastPart.Sessions[0].StopReason || info.FileBytes != size {
		t.Errorf("info of the parts: sessions %+v, %d bytes; want one subscriber session, clean, stopped %q, %d bytes",
			info.Sessions, info.FileBytes, lastPart.Sessions[0].StopReason, size)
	}
	if out := run("diff", whole, glob); !strings.Contains(out, "equal") {
		t.Errorf("diff whole.db with the parts: %s", out)
	}
	plan := run(append([]string{"play", "--dry-run", "--json"}, parts...)...)
	if !strings.Contains(plan, `"messages_per_pass": 30,`) {
		t.Errorf("play --dry-run of the parts: %s", plan)
	}
	cut := filepath.Join(t.TempDir(), "cut.db")
	run(append([]string{"cut", "--from", "+5s", "--to", "+25s", "-o", cut}, parts...)...)
	if msgs, _, _ := capturetest.Read(t, cut); len(msgs) < 20 || len(msgs) > 24 {
		t.Errorf("cut 5s–25s of the parts: %d messages, want 20 plus the retained state", len(msgs))
	}
	merged := filepath.Join(t.TempDir(), "merged.db")
	run(append([]string{"merge", "-o", merged}, parts...)...)
	if msgs, _, _ := capturetest.Read(t, merged); len(msgs) != 30 {
		t.Errorf("merge of the parts: %d messages, want 30", len(msgs))
	}
}
