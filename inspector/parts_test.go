package inspector

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

// TestPartsInPlaceScreens: the parts of a split recording read in place
// show what the unsplit recording shows, at the start, after End and Home
// across the parts, and with a topic filter (seqs and rows alike).
func TestPartsInPlaceScreens(t *testing.T) {
	var msgs []storage.Message
	for i := range 300 {
		m := capturetest.Msg(time.Duration(i)*200*time.Millisecond, fmt.Sprintf("dev/%d", i%(3+i/100)), byte(i%3), fmt.Sprintf(`{"n":%d}`, i))
		if i%11 == 0 {
			m.Topic, m.Retain = fmt.Sprintf("state/%d", i%2), true
		}
		msgs = append(msgs, m)
	}
	dir := t.TempDir()
	parts, whole := capturetest.WriteParts(t, dir, "r1", msgs, 100, 200)
	set, err := storage.OpenSet(context.Background(), parts, storage.MergeOptions{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	hp := startOn(t, set, Options{}, 120, 30)
	hw := start(t, whole, Options{}, 120, 30)
	screen := func(h *harness) string {
		s := h.text()
		for _, name := range []string{set.Path(), filepath.Base(set.Path()), whole, filepath.Base(whole)} {
			s = strings.ReplaceAll(s, name, "NAME")
		}
		return s
	}
	for _, step := range []struct {
		keys []any
		seq  int64
	}{
		{nil, 1},
		{[]any{tcell.KeyEnd}, 300},
		{[]any{tcell.KeyHome}, 1},
		{[]any{tcell.KeyEnd, tcell.KeyPgUp, tcell.KeyPgUp, tcell.KeyPgUp, tcell.KeyPgUp}, 0},
		{[]any{'/', "dev/3", tcell.KeyEnter, tcell.KeyEnd}, 0},
		{[]any{tcell.KeyHome}, 0},
	} {
		hp.press(step.keys...)
		hw.press(step.keys...)
		got, want := hp.selectedSeq(), hw.selectedSeq()
		if got != want || (step.seq != 0 && got != step.seq) {
			t.Fatalf("after %v: selected seq %d in place, %d in the unsplit file (want %d)", step.keys, got, want, step.seq)
		}
		if g, w := screen(hp), screen(hw); g != w {
			t.Errorf("after %v the screens differ:\n--- parts in place\n%s--- unsplit\n%s", step.keys, g, w)
		}
	}
}

// TestPartsInPlaceLiveTail: with the last part still being recorded, the
// inspector on the parts shows LIVE, follows the new messages (a new topic
// among them) and stops when the part's session ends.
func TestPartsInPlaceLiveTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Now().UnixNano()
	info := storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "c", Protocol: 4, StartedNS: now, Version: "test", Host: "h"}
	msgs := func(from, n int, topic string) []storage.Message {
		var b []storage.Message
		for i := from; i < from+n; i++ {
			b = append(b, storage.Message{TimeNS: now + int64(i)*1e6, OffsetNS: int64(i) * 1e6, Topic: topic, Payload: []byte(fmt.Sprint(i))})
		}
		return b
	}
	first, second := filepath.Join(dir, "run-0001.db"), filepath.Join(dir, "run-0002.db")
	c1, s1, err := storage.CreatePart(ctx, first, info, storage.PartStart{Recording: "r", Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Write(ctx, msgs(0, 10, "a/x"), nil, now+9e6); err != nil {
		t.Fatal(err)
	}
	if err := storage.EndPart(ctx, c1, s1, storage.PartLink{Recording: "r", Part: 1, Next: second}, now+10e6, 0); err != nil {
		t.Fatal(err)
	}
	info.StartedNS = now + 10e6
	c2, s2, err := storage.CreatePart(ctx, second, info, storage.PartStart{Recording: "r", Number: 2, Previous: first})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	write := func(from, n int, topic string) {
		t.Helper()
		if err := s2.Write(ctx, msgs(from, n, topic), nil, time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	write(10, 5, "a/x")
	set, err := storage.OpenSet(ctx, []string{first, second}, storage.MergeOptions{InPlace: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	h := startOn(t, set, Options{}, 160, 24)
	if !h.contains("LIVE") {
		t.Errorf("parts with the last one recording, not LIVE:\n%s", h.text())
	}
	h.press(tcell.KeyEnd, 'f')
	write(15, 3, "b/new")
	h.poll(ctx)
	var total int64
	h.state(func(u *UI) { total = u.m.total })
	if total != 18 || h.selectedSeq() != 18 {
		t.Fatalf("after 3 more in the last part: total %d, selected %d; want 18 and 18", total, h.selectedSeq())
	}
	h.press('t')
	if !h.contains("all topics (18)") || !h.contains("b (3)") {
		t.Errorf("tree after live growth:\n%s", h.text())
	}
	if err := s2.End(ctx, now+20e6, "signal", 0); err != nil {
		t.Fatal(err)
	}
	h.poll(ctx)
	if h.contains("LIVE") {
		t.Errorf("still LIVE after the last part ended:\n%s", h.text())
	}
}
