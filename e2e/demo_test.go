package e2e

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/testbroker"
)

// TestDemoFirstRun runs the built binary as a new user would: it says what
// it is doing within its first second, and every command it then suggests
// that needs no broker runs as printed, by a shell in the same directory,
// with a file name that needs quoting (inspect on a pseudo-terminal).
func TestDemoFirstRun(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "demo", "--duration", "1s", "-o", "first run.db")
	cmd.Dir = dir
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() {
		t.Fatalf("demo printed nothing on stderr")
	}
	if first := time.Since(start); first > time.Second {
		t.Errorf("first progress line after %s: %q", first, lines.Text())
	}
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo: %v\n%s", err, rest.String())
	}
	steps := suggested(t, stdout.String(), bin)
	if !strings.Contains(steps, bin+" inspect 'first run.db'\n") {
		t.Errorf("next steps do not open the capture with this binary:\n%s", stdout.String())
	}
	ran := 0
	for _, line := range strings.Split(steps, "\n") {
		if strings.Contains(line, " inspect ") { // on a terminal: it opens the capture, q quits
			tm := runOnTerminal(t, "sh", "-c", "cd '"+dir+"' && TERM=xterm "+line)
			tm.waitFor(t, "first run.db")
			io.WriteString(tm.master, "q")
			if code := tm.wait(t); code != 0 {
				t.Errorf("suggested %q: exit %d\n%s", line, code, tm.text())
			}
			ran++
			continue
		}
		if !strings.Contains(line, " export ") && !strings.Contains(line, " info ") &&
			!(strings.HasPrefix(line, "sqlite3 ") && haveSQLite3()) {
			continue
		}
		out, err := runShell(dir, line)
		if err != nil || len(out) == 0 {
			t.Errorf("suggested %q: %v\n%s", line, err, out)
		}
		ran++
	}
	if ran < 3 {
		t.Errorf("ran %d suggested commands, want the inspect, export and info lines at least:\n%s", ran, steps)
	}
}

// TestDemoUnderGoRun: `go run . demo` suggests `go run . …`, which works
// from the module root (no mqtape on $PATH is needed).
func TestDemoUnderGoRun(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "demo.db")
	cmd := exec.Command("go", "run", ".", "demo", "--duration", "1s", "-o", path, "--quiet")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go run . demo: %v", err)
	}
	steps := suggested(t, string(out), "go run .")
	if !strings.Contains(steps, "go run . inspect "+path+"\n") {
		t.Fatalf("next steps under go run:\n%s", out)
	}
	for _, line := range strings.Split(steps, "\n") {
		if strings.Contains(line, " export ") {
			if csv, err := runShell(root, line); err != nil || !strings.HasPrefix(string(csv), "seq,") {
				t.Errorf("suggested %q: %v\n%.200s", line, err, csv)
			}
		}
	}
}

// suggested returns the command lines in demo's output: the lines of its
// "Next, try:" list and the "(N more topics: … info …)" hint, without
// indentation and trailing remarks. Each must start with program or sqlite3.
func suggested(t *testing.T, out, program string) string {
	t.Helper()
	_, next, ok := strings.Cut(out, "\nNext, try:\n")
	if !ok {
		t.Fatalf("no next steps in:\n%s", out)
	}
	var b strings.Builder
	if _, more, ok := strings.Cut(out, "more topics: "); ok {
		line, _, _ := strings.Cut(more, ")\n")
		b.WriteString(line + "\n")
	}
	for _, l := range strings.Split(next, "\n") {
		if !strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "      ") {
			continue // a blank line or a remark
		}
		l, _, _ = strings.Cut(strings.TrimSpace(l), "  (")
		b.WriteString(l + "\n")
	}
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if !strings.HasPrefix(l, program+" ") && !strings.HasPrefix(l, "sqlite3 ") {
			t.Errorf("suggested command %q does not start with %q", l, program)
		}
	}
	return b.String()
}

func runShell(dir, line string) ([]byte, error) {
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = dir
	return cmd.Output()
}

func haveSQLite3() bool {
	_, err := exec.LookPath("sqlite3")
	return err == nil
}
