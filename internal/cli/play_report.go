package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/replay"
)

// PlayReport is the JSON form of the fidelity report.
type PlayReport struct {
	File   string `json:"file"`
	Broker string `json:"broker"`
	Speed  string `json:"speed"` // at the end (after the + / - keys)
	// StartSpeed is --speed.
	StartSpeed string `json:"start_speed"`
	Passes     int    `json:"passes"`
	Published  int64  `json:"published"`
	Restored   int64  `json:"retained_restores"`
	// PropsDropped: messages whose MQTT 5 properties were not sent (an
	// MQTT 3.1.1 connection).
	PropsDropped int64        `json:"properties_dropped"`
	IntendedS    float64      `json:"intended_s"`
	ActualS      float64      `json:"actual_s"`
	DriftMS      float64      `json:"drift_ms"`
	ElapsedS     float64      `json:"elapsed_s"`
	Lateness     LatenessJSON `json:"lateness_ms"`
	AckFailures  int64        `json:"ack_failures"`
	Unacked      int64        `json:"unacknowledged"`
	AckError     string       `json:"ack_error,omitempty"`
	Interrupted  bool         `json:"interrupted"`
	Error        string       `json:"error,omitempty"`
}

// LatenessJSON is the lateness of the timed publishes, in milliseconds.
type LatenessJSON struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// reportPlay prints the fidelity report, for people on stderr (unless
// --quiet) and as JSON on stdout (--json), and returns the command's error:
// runErr, else a failure to write the JSON, else the publishes that failed
// or were not acknowledged.
func reportPlay(cio *cliIO, o playOptions, broker string, rep replay.Report, runErr error) error {
	if !o.quiet {
		printPlayReport(cio.stderr, o, broker, rep)
	}
	if o.json {
		if err := writeJSON(cio.stdout, reportJSON(o, broker, rep, runErr)); err != nil && runErr == nil {
			runErr = err
		}
	}
	if runErr == nil && rep.AckFailures+rep.Unacked > 0 {
		runErr = fmt.Errorf("%d of %d publishes failed or were not acknowledged (first error: %v)",
			rep.AckFailures+rep.Unacked, rep.Published, rep.AckError)
	}
	return runErr
}

func msf(d time.Duration) float64 { return float64(d) / 1e6 }

func reportJSON(o playOptions, broker string, r replay.Report, err error) PlayReport {
	out := PlayReport{File: o.file, Broker: broker, Speed: speedString(r.Speed), StartSpeed: speedString(r.StartSpeed), Passes: r.Passes, Published: r.Published,
		Restored: r.Restored, PropsDropped: r.PropsDropped, IntendedS: r.Intended.Seconds(), ActualS: r.Actual.Seconds(), DriftMS: msf(r.Drift()),
		ElapsedS: r.Elapsed.Seconds(), AckFailures: r.AckFailures, Unacked: r.Unacked, Interrupted: r.Interrupted,
		Lateness: LatenessJSON{r.Lateness.Count, msf(r.Lateness.P50), msf(r.Lateness.P90), msf(r.Lateness.P99), msf(r.Lateness.Max)}}
	if r.AckError != nil {
		out.AckError = r.AckError.Error()
	}
	if err != nil && !errors.Is(err, errInterrupted) {
		out.Error = err.Error()
	}
	return out
}

func fmtMS(d time.Duration) string { return strconv.FormatFloat(msf(d), 'f', 3, 64) + "ms" }

func printPlayReport(w io.Writer, o playOptions, broker string, r replay.Report) {
	verb := "played"
	if r.Interrupted {
		verb = "interrupted after"
	}
	speed := speedString(r.Speed)
	if r.StartSpeed != 0 && r.StartSpeed != r.Speed {
		speed += " (started at " + speedString(r.StartSpeed) + ")"
	}
	fmt.Fprintf(w, "\n%s %s (%s) to %s in %s, %s, speed %s\n", verb,
		humanize.Count(r.Published, "message", "messages"), humanize.Count(r.Restored, "retained restore", "retained restores"),
		broker, r.Elapsed.Round(time.Millisecond), humanize.Count(int64(r.Passes), "pass", "passes"), speed)
	if !math.IsInf(r.Speed, 1) {
		drift := r.Drift()
		sign := "+"
		if drift < 0 {
			sign = "-"
			drift = -drift
		}
		fmt.Fprintf(w, "timing:    intended %s, actual %s, drift %s%s\n", r.Intended.Round(time.Microsecond),
			r.Actual.Round(time.Microsecond), sign, fmtMS(drift))
		l := r.Lateness
		fmt.Fprintf(w, "lateness:  p50 %s  p90 %s  p99 %s  max %s  (%s timed publishes)\n", fmtMS(l.P50), fmtMS(l.P90),
			fmtMS(l.P99), fmtMS(l.Max), humanize.GroupDigits(l.Count))
	} else if r.Actual > 0 {
		fmt.Fprintf(w, "rate:      %s msg/s\n", humanize.GroupDigits(int64(float64(r.Published)/r.Elapsed.Seconds())))
	}
	acks := fmt.Sprintf("acks:      %d failed, %d unacknowledged", r.AckFailures, r.Unacked)
	if r.AckError != nil {
		acks += fmt.Sprintf(" (first error: %v)", r.AckError)
	}
	fmt.Fprintln(w, acks)
	if r.PropsDropped > 0 {
		fmt.Fprintf(w, "warning:   %s published without %s MQTT 5 properties (an MQTT 3.1.1 connection; -V 5 keeps them)\n",
			humanize.Count(r.PropsDropped, "message", "messages"), humanize.Plural(r.PropsDropped, "its", "their"))
	}
}
