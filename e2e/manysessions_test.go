package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// TestManySessions (issue 15): 24,000 messages in 1,200 sessions. Time
// filters work with any number of sessions, and the cost is linear in
// messages: import ≤ 3 s and play --dry-run ≤ 1.5 s of CPU on the
// reference machine (2 cores), cut ≤ 3 s, merge of twice as many ≤ 6 s;
// the real binary is timed, so -race does not count. The figures are
// logged (go test -v -run TestManySessions ./e2e).
func TestManySessions(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: times the real binary")
	}
	const sessions, perSession = 1200, 20
	all := make([][]storage.Message, sessions)
	for s := range all {
		for i := range perSession {
			all[s] = append(all[s], capturetest.Msg(time.Duration(i)*100*time.Millisecond,
				fmt.Sprintf("fleet/%d/%d", s%50, i%4), byte(i%3), fmt.Sprintf(`{"s":%d,"i":%d}`, s, i)))
		}
	}
	src := capturetest.WriteOffsets(t, all...)
	bin := testbroker.BuildMqtape(t)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "all.jsonl")
	for _, step := range []struct {
		name  string
		args  []string
		limit time.Duration
		out   string // stdout goes here
	}{
		{"export", []string{"export", src}, 3 * time.Second, jsonl},
		{"import", []string{"import", jsonl, "-o", filepath.Join(dir, "imported.db"), "--quiet"}, 3 * time.Second, ""},
		{"play --dry-run", []string{"play", "--dry-run", src}, 1500 * time.Millisecond, os.DevNull},
		{"cut", []string{"cut", src, "-o", filepath.Join(dir, "cut.db"), "--quiet"}, 3 * time.Second, ""},
		{"cut --from", []string{"cut", src, "--from", "500ms", "-o", filepath.Join(dir, "cut-from.db"), "--quiet"}, 3 * time.Second, ""},
		{"merge", []string{"merge", src, filepath.Join(dir, "imported.db"), "-o", filepath.Join(dir, "merged.db"), "--quiet"}, 6 * time.Second, ""},
		{"export --from 0s", []string{"export", "--from", "0s", src}, 3 * time.Second, os.DevNull},
		{"export --from 1s", []string{"export", "--from", "1s", src}, 3 * time.Second, os.DevNull},
		{"diff --from", []string{"diff", "--from", "500ms", src, filepath.Join(dir, "imported.db")}, 3 * time.Second, os.DevNull},
	} {
		cmd := exec.Command(bin, step.args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if step.out != "" {
			f, err := os.Create(step.out)
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = f
			defer f.Close()
		}
		start := time.Now()
		err := cmd.Run()
		wall := time.Since(start)
		if err != nil {
			t.Errorf("%s: %v\n%s", step.name, err, stderr.String())
			continue
		}
		// The limit applies to CPU time (user + system): on a shared
		// machine the wall time also counts other processes.
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		t.Logf("%-17s wall %6.0f ms  cpu %6.0f ms", step.name, wall.Seconds()*1000, cpu.Seconds()*1000)
		if cpu > step.limit {
			t.Errorf("%s took %s of CPU, want ≤ %s", step.name, cpu.Round(time.Millisecond), step.limit)
		}
	}
	for name, want := range map[string]int{"imported.db": sessions * perSession, "cut.db": sessions * perSession,
		"cut-from.db": sessions * (perSession - 5), "merged.db": 2 * sessions * perSession} {
		msgs, _, _ := capturetest.Read(t, filepath.Join(dir, name))
		if len(msgs) != want {
			t.Errorf("%s: %d messages, want %d", name, len(msgs), want)
		}
	}
}
