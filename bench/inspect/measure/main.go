// Command measure times mqtape inspect as a person uses it: it starts the
// real binary in a tmux pane, sends keys with tmux send-keys and polls the
// pane (tmux capture-pane) until the expected text shows, then reports each
// step's latency and the process's peak RSS (VmHWM).
//
//	go build -o /tmp/mqtape . && go run ./bench/inspect/gen -n 1000000 -o /tmp/1m.db
//	go run ./bench/inspect/measure -bin /tmp/mqtape -capture /tmp/1m.db
//
// The capture should come from bench/inspect/gen (the steps look for its
// topics and its " ALARM " payloads).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	bin := flag.String("bin", "mqtape", "mqtape binary")
	capture := flag.String("capture", "", "capture file, or directory of parts (from bench/inspect/gen)")
	runs := flag.Int("runs", 3, "runs; the report shows the median and the worst of each step")
	flag.Parse()
	if *capture == "" {
		fmt.Fprintln(os.Stderr, "measure: -capture is required")
		os.Exit(2)
	}
	results := map[string][]time.Duration{}
	var order []string
	var rss []int64
	for run := range *runs {
		steps, hwm, err := measure(*bin, *capture, fmt.Sprintf("mqtape-measure-%d-%d", os.Getpid(), run))
		if err != nil {
			fmt.Fprintln(os.Stderr, "measure:", err)
			os.Exit(1)
		}
		for _, s := range steps {
			if run == 0 {
				order = append(order, s.name)
			}
			results[s.name] = append(results[s.name], s.took)
		}
		rss = append(rss, hwm)
	}
	fmt.Printf("capture %s (%d MB), %d runs\n", filepath.Base(*capture), captureSize(*capture)>>20, *runs)
	fmt.Printf("%-44s %10s %10s\n", "step", "median", "worst")
	for _, name := range order {
		d := results[name]
		sortDur(d)
		fmt.Printf("%-44s %10s %10s\n", name, d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
	maxRSS := int64(0)
	for _, r := range rss {
		maxRSS = max(maxRSS, r)
	}
	fmt.Printf("%-44s %7d MB\n", "peak RSS (VmHWM), worst run", maxRSS>>10)
}

func sortDur(d []time.Duration) {
	for i := range d {
		for j := i + 1; j < len(d); j++ {
			if d[j] < d[i] {
				d[i], d[j] = d[j], d[i]
			}
		}
	}
}

type step struct {
	name string
	took time.Duration
}

func tmux(args ...string) (string, error) {
	out, err := exec.Command("tmux", args...).CombinedOutput()
	return string(out), err
}

// measure runs one session and returns the steps' latencies and VmHWM in KiB.
func measure(bin, capture, session string) ([]step, int64, error) {
	tmux("kill-session", "-t", session)
	defer tmux("kill-session", "-t", session)
	pane := session + ":0.0"
	wait := func(what string, want func(screen string) bool) (time.Duration, error) {
		start := time.Now()
		for {
			screen, err := tmux("capture-pane", "-p", "-t", pane)
			if err != nil {
				return 0, fmt.Errorf("%s: %v: %s", what, err, screen)
			}
			if want(screen) {
				return time.Since(start), nil
			}
			if time.Since(start) > 30*time.Second {
				return 0, fmt.Errorf("%s: timed out; screen:\n%s", what, screen)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// contains: the screen shows every s and no background work is pending
	// (the header says "counting…", "searching payloads…" or "jumping…").
	contains := func(s ...string) func(string) bool {
		return func(screen string) bool {
			if lines := strings.SplitN(screen, "\n", 3); len(lines) < 2 || strings.Contains(lines[1], "…") {
				return false
			}
			for _, x := range s {
				if !strings.Contains(screen, x) {
					return false
				}
			}
			return true
		}
	}
	var steps []step
	// do types prep (untimed: a person types at their own pace) and waits
	// until the prompt line shows it, then times keys until want holds.
	do := func(name string, prep, keys []string, want func(string) bool) error {
		send := func(ks []string) error {
			for _, k := range ks {
				if out, err := tmux("send-keys", "-t", pane, k); err != nil {
					return fmt.Errorf("send-keys %q: %v: %s", k, err, out)
				}
			}
			return nil
		}
		if len(prep) > 0 {
			if err := send(prep); err != nil {
				return err
			}
			if typed := prep[len(prep)-1]; prep[0] == "/" || prep[0] == ":" {
				if _, err := wait(name+" (typing)", func(screen string) bool {
					lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
					last := strings.TrimSpace(lines[len(lines)-1])
					return strings.HasPrefix(last, prep[0]+" ") && (typed == prep[0] || strings.HasSuffix(last, typed))
				}); err != nil {
					return err
				}
			} else {
				time.Sleep(300 * time.Millisecond) // moving in the tree
			}
		}
		start := time.Now()
		if err := send(keys); err != nil {
			return err
		}
		if _, err := wait(name, want); err != nil {
			return err
		}
		steps = append(steps, step{name, time.Since(start)})
		return nil
	}

	launched := time.Now()
	cmd := fmt.Sprintf("exec %s inspect --utc --poll 0 %s", bin, capture)
	if out, err := tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", cmd); err != nil {
		return nil, 0, fmt.Errorf("tmux: %v: %s", err, out)
	}
	if _, err := wait("first screen", contains("row 1/", "SEQ")); err != nil {
		return nil, 0, err
	}
	steps = append(steps, step{"first screen from launch", time.Since(launched)})
	pidOut, err := tmux("display-message", "-p", "-t", pane, "#{pane_pid}")
	if err != nil {
		return nil, 0, err
	}
	pid := strings.TrimSpace(pidOut)
	total := totalRows(pane)
	// The topic counts (which also rank the rows of topic filters) come
	// from a pass over the topic index after the first screen; a topic
	// filter typed before they are in waits for them. Time them from launch
	// (the tree shows them), so the filter steps below start with them in.
	if _, err := tmux("send-keys", "-t", pane, "t"); err != nil {
		return nil, 0, err
	}
	if _, err := wait("topic counts", contains("all topics ("+total+")")); err != nil {
		return nil, 0, err
	}
	steps = append(steps, step{"topic counts in (tree), from launch", time.Since(launched)})
	if _, err := tmux("send-keys", "-t", pane, "t"); err != nil {
		return nil, 0, err
	}
	if _, err := wait("tree closed", func(screen string) bool { return !strings.Contains(screen, "all topics (") }); err != nil {
		return nil, 0, err
	}
	enter := []string{"Enter"}
	for _, s := range []struct {
		name       string
		prep, keys []string
		want       func(string) bool
	}{
		{"End (last of all messages)", nil, []string{"End"}, contains("row " + total + "/" + total)},
		{"Home", nil, []string{"Home"}, contains("row 1/" + total)},
		{"jump to offset :5m", []string{":", "5m"}, enter, contains("jumped to +5m0s")},
		{"jump to clock time :09:12:00", []string{":", "09:12:00"}, enter, contains("jumped to 09:12:00")},
		{"jump to seq :#654321", []string{":", "#654321"}, enter, contains("jumped to seq 654321")},
		{"PgDn", nil, []string{"PgDn"}, contains("row ")},
		{"topic filter plant/3/line/2/temp", []string{"/", "C-u", "plant/3/line/2/temp"}, enter, contains("filter: topic plant/3/line/2/temp", " matches")},
		{"End in the topic filter", nil, []string{"End"}, endOfFilter},
		{"topic filter plant/+/line/+/temp", []string{"/", "C-u", "plant/+/line/+/temp"}, enter, contains("filter: topic plant/+/line/+/temp", " matches")},
		{"topic filter plant/# (98% of rows)", []string{"/", "C-u", "plant/#"}, enter, contains("filter: topic plant/#", " matches")},
		{"jump :2m in the plant/# filter", []string{":", "2m"}, enter, contains("jumped to +2m0s")},
		{"tree: choose odd topic (filter odd topic/#)", []string{"t", "Home", "Down", "Down", "Down"}, enter, contains("filter: topic odd topic/#", " matches")},
		{"payload substring ALARM", []string{"t", "/", "C-u", "ALARM"}, enter, contains(`payload contains "ALARM"  `, " matches")},
		{"payload regex payload~overheat$", []string{"/", "C-u", "payload~overheat$"}, enter, contains(`payload ~ /overheat$/  `, " matches")},
		{"clear filter (Esc on the / line)", []string{"/"}, []string{"Escape"}, contains("filter: none")},
		{"topic tree with counts (t)", nil, []string{"t"}, contains("all topics ("+total+")", "plant (")},
		{"statistics (s): per-topic counts", []string{"t"}, []string{"s"}, contains("all ", " topics", "PEAK/s")},
	} {
		if err := do(s.name, s.prep, s.keys, s.want); err != nil {
			return nil, 0, err
		}
	}
	// The other columns fill in when the statistics pass ends.
	counts, more := steps[len(steps)-1].took, time.Now()
	if _, err := wait("statistics pass", func(screen string) bool {
		return !strings.Contains(screen, "computing") && strings.Contains(screen, "PEAK/s")
	}); err != nil {
		return nil, 0, err
	}
	steps = append(steps, step{"statistics: every column (full pass)", counts + time.Since(more)})
	hwm := vmHWM(pid)
	tmux("send-keys", "-t", pane, "q")
	return steps, hwm, nil
}

func endOfFilter(screen string) bool {
	for _, line := range strings.Split(screen, "\n") {
		if strings.HasPrefix(line, "row ") {
			f := strings.Fields(line)
			if len(f) > 1 {
				a, b, ok := strings.Cut(f[1], "/")
				return ok && a == b && a != "1"
			}
		}
	}
	return false
}

// totalRows reads the message count from the header.
func totalRows(pane string) string {
	screen, _ := tmux("capture-pane", "-p", "-t", pane)
	for _, line := range strings.Split(screen, "\n") {
		if strings.HasPrefix(line, "row 1/") {
			return strings.Fields(strings.TrimPrefix(line, "row 1/"))[0]
		}
	}
	return "?"
}

// vmHWM returns the peak resident set of pid (or its only child) in KiB.
func vmHWM(pid string) int64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return -1
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			n, _ := strconv.ParseInt(strings.Fields(string(v))[0], 10, 64)
			return n
		}
	}
	return -1
}

// captureSize is the size of a capture file, or of the *.db parts in a
// directory.
func captureSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil || !fi.IsDir() {
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	files, _ := filepath.Glob(filepath.Join(path, "*.db"))
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}
