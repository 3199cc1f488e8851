package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/replay"
)

// playStatus renders the progress bar line.
func playStatus(pr replay.Progress, plan *replay.Plan, loop int) string {
	state := "▶"
	if pr.Paused {
		state = "⏸ PAUSED"
	}
	speed := "×" + speedString(pr.Speed)
	late := "late " + fmtMS(pr.Lateness)
	if plan == nil || loop == 0 {
		return fmt.Sprintf("%s pass %d  %s  %s msgs  %s  %s", state, pr.Pass, fmtElapsed(pr.Position),
			humanize.GroupDigits(pr.Published), late, speed)
	}
	total := plan.Duration * time.Duration(loop)
	msgs := plan.Messages * int64(loop)
	frac := 0.0
	if total > 0 {
		frac = float64(pr.Position) / float64(total)
	} else if msgs > 0 {
		frac = float64(pr.Published) / float64(msgs)
	}
	bar := progressBar(frac)
	eta := "--:--"
	if !pr.Paused {
		eta = fmtElapsed(atSpeed(max(total-pr.Position, 0), pr.Speed))
	}
	return fmt.Sprintf("%s %s/%s [%s] %s/%s msgs  %s  %s  ETA %s", state, fmtElapsed(pr.Position), fmtElapsed(total), bar,
		humanize.GroupDigits(pr.Published), humanize.GroupDigits(msgs), late, speed, eta)
}

// progressBar draws frac (0 to 1) as a bar of 20 cells: play's and
// export's progress lines.
func progressBar(frac float64) string {
	const width = 20
	filled := int(min(max(frac, 0), 1) * width)
	return strings.Repeat("█", filled) + strings.Repeat("░", width-filled)
}
