package cli

import (
	"testing"
	"time"

	"github.com/mqtape/mqtape/replay"
)

func TestPlayStatusLine(t *testing.T) {
	plan := &replay.Plan{Messages: 100, Duration: 100 * time.Second}
	line := playStatus(replay.Progress{Published: 50, Position: 100 * time.Second, Speed: 2, Lateness: 120 * time.Microsecond, Pass: 2},
		plan, 2)
	want := "▶ 01:40/03:20 [██████████░░░░░░░░░░] 50/200 msgs  late 0.120ms  ×2  ETA 00:50"
	if line != want {
		t.Errorf("status\n%q\nwant\n%q", line, want)
	}
	line = playStatus(replay.Progress{Published: 7, Position: 3 * time.Second, Speed: 1, Paused: true, Pass: 4}, nil, 0)
	if want := "⏸ PAUSED pass 4  00:03  7 msgs  late 0.000ms  ×1"; line != want {
		t.Errorf("status %q, want %q", line, want)
	}
}
