package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmptySelection: play, export and cut refuse a selection with no
// message, saying what the capture holds (exit 1), and a reversed range
// (exit 2), before they connect, print or write anything.
func TestEmptySelection(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.db")
	writeCapture(t, in, cutSample())
	out := filepath.Join(dir, "out.db")
	verbs := map[string][]string{
		"play":   {"play", in, "--broker", "mqtt://127.0.0.1:1"}, // never connected to
		"export": {"export", in},
		"cut":    {"cut", in, "-o", out},
	}
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"from past the end", []string{"--from", "30s"}, exitError, "nothing selected: " + in + " holds 1 session of 9.5s, "},
		{"absolute time past the end", []string{"--from", "2030-01-01T00:00:00Z"}, exitError, " UTC (--from/--to are offsets"},
		{"reversed range", []string{"--from", "5s", "--to", "1s"}, exitUsage, "--from 5s is not before --to 1s"},
		{"empty range", []string{"--from", "5s", "--to", "5s"}, exitUsage, "the range [from, to) is empty"},
		{"no topic matches", []string{"-t", "plant/#"}, exitError,
			"nothing selected: -t/-x match none of the 4 topics in " + in + ": home/door, home/fan, home/light, home/temp"},
		{"every topic excluded", []string{"-x", "#"}, exitError, "match none of the 4 topics"},
		// Inside the session, after the topic's last message: say where
		// the topic's messages are.
		{"range after a topic's messages", []string{"-t", "home/door", "--from", "7s"}, exitError,
			" holds 1 session of 9.5s, 2026-"},
		{"range after a topic's messages", []string{"-t", "home/door", "--from", "7s"}, exitError,
			" UTC; without --from/--to the selection lies at +0s to +6s ("},
	}
	for verb, base := range verbs {
		for _, tt := range tests {
			t.Run(verb+" "+tt.name, func(t *testing.T) {
				code, stdout, stderr := runCLI(t, ctx, append(base, tt.args...)...)
				if code != tt.code || !strings.Contains(stderr, tt.msg) || stdout != "" {
					t.Errorf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.code, tt.msg, stdout, stderr)
				}
				if fileExists(out) {
					t.Errorf("%s written", out)
				}
			})
		}
	}
	// A selection with messages still works, and says so in the singular.
	if code, stdout, stderr := runCLI(t, ctx, "export", in, "-t", "home/temp", "--from", "9s"); code != 0 || strings.Count(stdout, "\n") != 1 {
		t.Errorf("export of one message: exit %d\n%s%s", code, stdout, stderr)
	}
	code, _, stderr := runCLI(t, ctx, "cut", in, "-t", "home/temp", "--from", "9s", "-o", out)
	if code != 0 || !strings.Contains(stderr, "cut 1 message (0 carried retained) from "+in+" into "+out+", 1 session\n") {
		t.Errorf("cut of one message: exit %d\n%s", code, stderr)
	}
}
