package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/mqtape/mqtape/replay"
)

// TestReportPlay: the human report on stderr, the JSON on stdout and the
// command's error, from a replay's Report and how Run ended.
func TestReportPlay(t *testing.T) {
	tests := []struct {
		name    string
		quiet   bool
		json    bool
		rep     replay.Report
		runErr  error
		stderr  string
		wantErr string // "" for nil
	}{
		{name: "timed", rep: replay.Report{Published: 1234, Restored: 2, Passes: 1, Speed: 2, Intended: 800 * time.Millisecond,
			Actual: 801500 * time.Microsecond, Elapsed: 812 * time.Millisecond, Lateness: replay.Lateness{Count: 1232,
				P50: 120 * time.Microsecond, P90: 300 * time.Microsecond, P99: time.Millisecond, Max: 2500 * time.Microsecond}},
			stderr: "\nplayed 1,234 messages (2 retained restores) to mqtt://b:1883 in 812ms, 1 pass, speed 2\n" +
				"timing:    intended 800ms, actual 801.5ms, drift +1.500ms\n" +
				"lateness:  p50 0.120ms  p90 0.300ms  p99 1.000ms  max 2.500ms  (1,232 timed publishes)\n" +
				"acks:      0 failed, 0 unacknowledged\n"},
		{name: "early, slowed down with -", rep: replay.Report{Published: 3, Passes: 2, Speed: 0.5, StartSpeed: 1, Intended: 2 * time.Second,
			Actual: 1999 * time.Millisecond, Elapsed: 2 * time.Second},
			stderr: "\nplayed 3 messages (0 retained restores) to mqtt://b:1883 in 2s, 2 passes, speed 0.5 (started at 1)\n" +
				"timing:    intended 2s, actual 1.999s, drift -1.000ms\n" +
				"lateness:  p50 0.000ms  p90 0.000ms  p99 0.000ms  max 0.000ms  (0 timed publishes)\n" +
				"acks:      0 failed, 0 unacknowledged\n"},
		{name: "max speed, acks failed", rep: replay.Report{Published: 5000, Passes: 1, Speed: math.Inf(1), Actual: time.Second,
			Elapsed: 2 * time.Second, AckFailures: 1, Unacked: 2, AckError: errors.New("boom"), PropsDropped: 1},
			stderr: "\nplayed 5,000 messages (0 retained restores) to mqtt://b:1883 in 2s, 1 pass, speed max\n" +
				"rate:      2,500 msg/s\n" +
				"acks:      1 failed, 2 unacknowledged (first error: boom)\n" +
				"warning:   1 message published without its MQTT 5 properties (an MQTT 3.1.1 connection; -V 5 keeps them)\n",
			wantErr: "3 of 5000 publishes failed or were not acknowledged (first error: boom)"},
		{name: "interrupted, quiet, json", quiet: true, json: true, runErr: errInterrupted,
			rep:     replay.Report{Published: 4, Passes: 1, Speed: 4, StartSpeed: 1, Interrupted: true, Unacked: 1},
			wantErr: errInterrupted.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cio := testIO()
			o := playOptions{file: "c.db", quiet: tt.quiet, json: tt.json}
			err := reportPlay(cio, o, "mqtt://b:1883", tt.rep, tt.runErr)
			if got := cio.statusTerm.(*bytes.Buffer).String(); got != tt.stderr {
				t.Errorf("stderr\n%q\nwant\n%q", got, tt.stderr)
			}
			if (err == nil) != (tt.wantErr == "") || err != nil && err.Error() != tt.wantErr {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			out := cio.stdout.(*bytes.Buffer).Bytes()
			if !tt.json {
				if len(out) > 0 {
					t.Errorf("stdout without --json: %s", out)
				}
				return
			}
			var rep PlayReport
			if err := json.Unmarshal(out, &rep); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if rep.File != "c.db" || rep.Published != tt.rep.Published || rep.Interrupted != tt.rep.Interrupted || rep.Error != "" ||
				rep.Speed != speedString(tt.rep.Speed) || rep.StartSpeed != speedString(tt.rep.StartSpeed) {
				t.Errorf("JSON report %+v", rep)
			}
		})
	}
}
