package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/diff"
)

func TestParseDiff(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
		chk  func(diffOptions) bool
	}{
		{[]string{"a.db", "b.db"}, true, func(o diffOptions) bool {
			return o.a == "a.db" && o.b == "b.db" && o.opts.RateTolerance == 0.1 && o.opts.CountTolerance == 0 && !o.json
		}},
		{[]string{"--rate-tolerance", "25%", "--count-tolerance", "3", "--ignore-timing", "--json", "a", "b"}, true, func(o diffOptions) bool {
			return o.opts.RateTolerance == 0.25 && o.opts.CountTolerance == 3 && o.opts.IgnoreTiming && o.json && !o.opts.StrictOrder
		}},
		{[]string{"--strict-order", "a", "b"}, true, func(o diffOptions) bool { return o.opts.StrictOrder }},
		{[]string{"--rate-tolerance", "0.05", "--size-tolerance", "0", "a", "b"}, true, func(o diffOptions) bool {
			return o.opts.RateTolerance == 0.05 && o.opts.SizeTolerance > 0 && o.opts.SizeTolerance < 1e-9
		}},
		{[]string{"--ignore-field", "ts", "--ignore-field", "**.seq", "-t", "a/#", "a", "b"}, true, func(o diffOptions) bool {
			return len(o.opts.IgnoreFields) == 2 && o.opts.IgnoreFields[1].String() == "**.seq" && o.opts.Query.Match != nil
		}},
		{[]string{"a"}, false, nil},
		{[]string{"a", "b", "c"}, false, nil},
		{[]string{"--rate-tolerance", "ten", "a", "b"}, false, nil},
		{[]string{"--rate-tolerance", "-5%", "a", "b"}, false, nil},
		{[]string{"--count-tolerance", "-1", "a", "b"}, false, nil},
		{[]string{"--ignore-field", "a[", "a", "b"}, false, nil},
		{[]string{"-t", "a/#/b", "a", "b"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseDiff(tt.args, testIO())
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !tt.chk(o) {
				t.Errorf("options = %+v", o)
			}
		})
	}
}

func TestDiffExitCodes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	writeCapture(t, a, sampleSessions()...)
	changed := sampleSessions()
	changed[1][1].Payload = []byte(`{"t":23,"ts":3}`)
	writeCapture(t, b, changed...)
	notCapture := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notCapture, []byte("not a capture\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"equal to itself", []string{a, a}, 0, "equal within tolerances"},
		{"different", []string{a, b}, 1, "t: 22 → 23"},
		{"field ignored", []string{"--ignore-field", "t", a, b}, 0, "equal"},
		{"topic filter", []string{"-t", "home/door", a, b}, 0, "equal"},
		{"missing file", []string{a, filepath.Join(dir, "nope.db")}, 4, ""}, // as for every verb
		{"not a capture", []string{a, notCapture}, 4, ""},
		{"no captures in the directory", []string{a, t.TempDir()}, 4, ""},
		{"usage", []string{a}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, ctx, append([]string{"diff"}, tt.args...)...)
			if code != tt.code || !strings.Contains(out, tt.out) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr: %s", code, tt.code, out, stderr)
			}
			if code == 2 && (out != "" || !strings.HasPrefix(stderr, "mqtape diff: ")) {
				t.Errorf("error output: stdout %q, stderr %q", out, stderr)
			}
		})
	}
	code, out, _ := runCLI(t, ctx, "diff", "--json", a, b)
	var r diff.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 || r.Equal || len(r.Topics) != 1 ||
		r.Topics[0].Topic != "home/temp" || r.Topics[0].Changed != 1 || len(r.Retain) != 0 {
		t.Errorf("--json: exit %d, %v, %+v", code, err, r)
	}
}
