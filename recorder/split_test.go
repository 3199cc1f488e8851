package recorder_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/loadgen"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/storage"
)

// partOf reads a part: its messages without the carried-forward retained
// rows, the carried rows, and its split links.
func partOf(t *testing.T, path string) (live, carried []storage.Message, links []storage.PartLink) {
	t.Helper()
	msgs, sessions, events := capturetest.Read(t, path)
	if len(sessions) != 1 {
		t.Fatalf("%s: %d sessions, want 1", path, len(sessions))
	}
	n := 0
	for _, e := range events {
		if e.Kind != storage.EventSplit {
			continue
		}
		var l storage.PartLink
		if err := json.Unmarshal([]byte(e.Detail), &l); err != nil {
			t.Fatalf("%s: split event %q: %v", path, e.Detail, err)
		}
		if l.Next == "" {
			n = l.Carried
		}
		links = append(links, l)
	}
	return msgs[n:], msgs[:n], links
}

// A QoS 1 flood recorded with a small --split-size: every message is in
// exactly one part, each part starts with the retained state, names its
// neighbours, and the broker connection stays up across the seams.
func TestSplitUnderFloodLosesAndRepeatsNothing(t *testing.T) {
	b := startBroker(t)
	pub := publisher(t, b, "pub")
	publish(t, pub, "status/a", 1, true, []byte("online"))
	publish(t, pub, "status/b", 1, true, []byte("offline"))
	dir := t.TempDir()
	first := filepath.Join(dir, "run-0001.db")
	r := startRecording(t, b, first, recorder.Config{BatchSize: 512, Split: &recorder.Split{Size: 1 << 20,
		Pattern: filepath.Join(dir, "run.db"), First: 1, Recording: "rec1"}})
	waitStored(t, r, 2)

	const devices, total = 4, 24000
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := loadgen.Run(ctx, loadgen.Config{Addr: b.Addr(), Devices: devices, Messages: total, QoS: 1, Size: 400}); err != nil {
		t.Fatal(err)
	}
	waitStored(t, r, total+2)
	r.stop(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.Reconnects != 0 || r.res.Dropped != 0 {
		t.Fatalf("reconnects %d, dropped %d: want none", r.res.Reconnects, r.res.Dropped)
	}
	if len(r.res.Parts) < 4 {
		t.Fatalf("%d parts, want at least 4 (1 MiB each)", len(r.res.Parts))
	}
	seen := make(map[[2]int]int)
	for k, p := range r.res.Parts {
		if want := storage.PartName(filepath.Join(dir, "run.db"), k+1, time.Time{}); p.Path != want || p.Deleted {
			t.Fatalf("part %d = %+v, want %s", k+1, p, want)
		}
		live, carried, links := partOf(t, p.Path)
		if k > 0 {
			got := map[string]string{}
			for _, m := range carried {
				if m.FromStore && m.Retain && m.TimeNS == carried[0].TimeNS {
					got[m.Topic] = string(m.Payload)
				}
			}
			if len(carried) != 2 || got["status/a"] != "online" || got["status/b"] != "offline" {
				t.Errorf("part %d starts with %+v, want the 2 retained messages", k+1, carried)
			}
			if links[0].Previous != filepath.Base(r.res.Parts[k-1].Path) || links[0].Recording != "rec1" || links[0].Part != k+1 {
				t.Errorf("part %d: first link %+v", k+1, links[0])
			}
		}
		if last := links[len(links)-1]; k < len(r.res.Parts)-1 && last.Next != filepath.Base(r.res.Parts[k+1].Path) {
			t.Errorf("part %d: last link %+v, want next %s", k+1, last, r.res.Parts[k+1].Path)
		}
		for i, m := range live {
			if i > 0 && (m.OffsetNS < live[i-1].OffsetNS || m.TimeNS < live[i-1].TimeNS) {
				t.Fatalf("part %d: time goes back at seq %d", k+1, m.Seq)
			}
			if d, n, ok := loadgen.ParsePayload(m.Payload); ok {
				seen[[2]int{d, n}]++
			}
		}
		if rep, err := storage.Check(context.Background(), p.Path, storage.CheckOptions{}); err != nil || !rep.OK() {
			t.Errorf("part %d: check: %v %+v", k+1, err, rep)
		}
	}
	if len(seen) != total {
		t.Errorf("%d distinct messages across the parts, want %d", len(seen), total)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("message %v recorded %d times", k, n)
		}
	}
}

// --keep and --max-total delete the oldest finished parts, never the one
// being written.
func TestSplitRetention(t *testing.T) {
	for _, tc := range []struct {
		name  string
		split recorder.Split
		kept  func(n int) int
	}{
		{"keep", recorder.Split{Keep: 2}, func(int) int { return 2 }},
		{"max-total", recorder.Split{MaxTotal: 3 << 20}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t)
			dir := t.TempDir()
			sp := tc.split
			sp.Size, sp.Pattern, sp.First, sp.Recording = 1<<20, filepath.Join(dir, "r-{n}.db"), 1, "x"
			r := startRecording(t, b, filepath.Join(dir, "r-0001.db"), recorder.Config{BatchSize: 512, Split: &sp})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if _, err := loadgen.Run(ctx, loadgen.Config{Addr: b.Addr(), Devices: 2, Messages: 24000, QoS: 1, Size: 400}); err != nil {
				t.Fatal(err)
			}
			waitStored(t, r, 24000)
			r.stop(t)
			if r.err != nil {
				t.Fatal(r.err)
			}
			parts := r.res.Parts
			if len(parts) < 3 {
				t.Fatalf("%d parts, want at least 3: %+v", len(parts), parts)
			}
			var onDisk []string
			var total int64
			deletedDone := false
			for i, p := range parts {
				_, err := os.Stat(p.Path)
				if p.Deleted == (err == nil) {
					t.Errorf("part %s: deleted=%v but stat says %v", p.Path, p.Deleted, err)
				}
				if p.Deleted {
					if deletedDone {
						t.Errorf("part %s deleted after a newer part was kept", p.Path)
					}
					continue
				}
				deletedDone = true
				if i == len(parts)-1 && p.Deleted {
					t.Errorf("the part being written was deleted")
				}
				fi, _ := os.Stat(p.Path)
				total += fi.Size()
				onDisk = append(onDisk, p.Path)
			}
			if tc.kept != nil && len(onDisk) != tc.kept(len(parts)) {
				t.Errorf("%d parts on disk, want %d", len(onDisk), tc.kept(len(parts)))
			}
			if sp.MaxTotal > 0 && (total > sp.MaxTotal+sp.Size || len(onDisk) == len(parts)) {
				t.Errorf("%d parts, %d bytes on disk with --max-total %d", len(onDisk), total, sp.MaxTotal)
			}
		})
	}
}

// --split-every starts a new part when the current one is old enough,
// also when no message arrives.
func TestSplitEvery(t *testing.T) {
	b := startBroker(t)
	pub := publisher(t, b, "pub")
	dir := t.TempDir()
	first := filepath.Join(dir, "t-0001.db")
	// The first part carries decoders (as record --decode stores them):
	// every later part must carry them too.
	dec := storage.Decoders{Rules: []storage.DecoderRule{{Filter: "a", Format: "cbor"}}}
	c, err := storage.OpenWrite(first)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetDecoders(context.Background(), dec); err != nil {
		t.Fatal(err)
	}
	c.Close()
	r := startRecording(t, b, first, recorder.Config{Split: &recorder.Split{Every: 200 * time.Millisecond,
		Pattern: filepath.Join(dir, "t-{n}.db"), First: 1, Recording: "e"}})
	publish(t, pub, "a", 1, false, []byte("one"))
	waitStored(t, r, 1)
	deadline := time.Now().Add(10 * time.Second)
	for r.rec.Stats().Part == first {
		if time.Now().After(deadline) {
			t.Fatal("no second part within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	publish(t, pub, "a", 1, false, []byte("two"))
	waitStored(t, r, 2)
	r.stop(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := map[string]string{}
	for i, p := range r.res.Parts {
		live, _, _ := partOf(t, p.Path)
		for _, m := range live {
			got[string(m.Payload)] = filepath.Base(p.Path)
		}
		pc, err := storage.Open(p.Path)
		if err != nil {
			t.Fatal(err)
		}
		if d, err := pc.Decoders(context.Background()); err != nil || !slices.Equal(d.Rules, dec.Rules) {
			t.Errorf("%s carries decoders %+v (%v), want %+v like the first part", p.Path, d.Rules, err, dec.Rules)
		}
		pc.Close()
		_, sessions, _ := capturetest.Read(t, p.Path)
		if want := storage.StopSplit; i < len(r.res.Parts)-1 && sessions[0].StopReason != want {
			t.Errorf("%s: stop reason %q, want %q", p.Path, sessions[0].StopReason, want)
		}
	}
	if got["one"] != "t-0001.db" || got["two"] == "" || got["two"] == "t-0001.db" {
		t.Errorf("messages by part: %v, want one in t-0001.db and two in a later part", got)
	}
}
