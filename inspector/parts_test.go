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
