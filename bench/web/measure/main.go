// Command measure times mqtape web on a large capture: the real binary,
// its JSON API over HTTP and the page in headless chromium (chromedp). It
// reports each step's median and worst over the runs, and the server's
// peak RSS (VmHWM).
//
//	go build -o /tmp/mqtape . && go run ./bench/inspect/gen -n 1000000 -o /tmp/1m.db
//	go run ./bench/web/measure -bin /tmp/mqtape -capture /tmp/1m.db -runs 5
//
// The filters are the topics and payloads of bench/inspect/gen.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// filters are timed through the API and the page.
var filters = []struct{ name, q string }{
	{"topic filter (one topic, ~5k msgs)", "plant/3/line/2/temp"},
	{"wildcard + QoS", "plant/+/line/1/# qos>=1"},
	{"payload text (SQL scan)", "ALARM"},
	{"JSON field .temp>24 (Go scan)", ".temp>24"},
}

func main() {
	bin := flag.String("bin", "/tmp/mqtape", "the mqtape binary")
	capture := flag.String("capture", "/tmp/1m.db", "capture to serve")
	runs := flag.Int("runs", 3, "runs (each a fresh server)")
	chromium := flag.String("chromium", "chromium", "the browser")
	flag.Parse()
	times := map[string][]time.Duration{}
	var steps []string
	add := func(step string, d time.Duration) {
		if _, ok := times[step]; !ok {
			steps = append(steps, step)
		}
		times[step] = append(times[step], d)
	}
	var peak int64
	for range *runs {
		rss, err := run(*bin, *capture, *chromium, add)
		if err != nil {
			fmt.Fprintln(os.Stderr, "measure:", err)
			os.Exit(1)
		}
		peak = max(peak, rss)
	}
	fmt.Printf("%-52s %9s %9s\n", "step", "median", "worst")
	for _, s := range steps {
		d := times[s]
		slices.Sort(d)
		fmt.Printf("%-52s %9s %9s\n", s, d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond))
	}
	fmt.Printf("%-52s %9d MB\n", "server peak RSS (VmHWM), worst run", peak>>10)
}

// run starts a server, times the steps and returns its peak RSS in KiB.
func run(bin, capture, chromium string, add func(string, time.Duration)) (int64, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "web", capture)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { cancel(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("no URL: %v", err)
	}
	base := strings.TrimSpace(line)
	if err := get(base + "api/messages?limit=200"); err != nil {
		return 0, err
	}
	add("API: start → first 200 rows", time.Since(start))
	for _, f := range filters {
		t := time.Now()
		if err := get(base + "api/messages?limit=200&q=" + url.QueryEscape(f.q)); err != nil {
			return 0, err
		}
		add("API: "+f.name, time.Since(t))
	}
	t := time.Now()
	if err := get(base + "api/topics"); err != nil {
		return 0, err
	}
	add("API: /api/topics (tree counts)", time.Since(t))
	if err := page(base, chromium, add); err != nil {
		return 0, err
	}
	return vmHWM(cmd.Process.Pid)
}

func get(u string) error {
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return nil
}

// page times the page in chromium: rows on screen after navigation, and
// each filter typed into the box (from Enter to the rows shown).
func page(base, chromium string, add func(string, time.Duration)) error {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1400, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(ctx); err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(base)); err != nil {
		return err
	}
	// performance.now() counts from the start of the navigation.
	ms, err := chromedp.Run(tctx, chromedp.Poll[float64](`document.querySelector('#rows tr') && performance.now()`,
		chromedp.WithPollingInterval(5*time.Millisecond)))
	if err != nil {
		return err
	}
	add("page: navigation → rows on screen", time.Duration(ms*float64(time.Millisecond)))
	for _, f := range filters {
		submit := `(() => { window.__t = performance.now(); const q = document.getElementById('q'); q.value = ` +
			strconv.Quote(f.q) + `; document.getElementById('filter-form').requestSubmit(); return true })()`
		if _, err := chromedp.Run(tctx, chromedp.Evaluate[bool](submit)); err != nil {
			return err
		}
		// Submitting clears the table at once: the first row is a match.
		ms, err := chromedp.Run(tctx, chromedp.Poll[float64](`document.querySelector('#rows tr') && performance.now() - window.__t`,
			chromedp.WithPollingInterval(5*time.Millisecond)))
		if err != nil {
			return fmt.Errorf("filter %q: %w", f.q, err)
		}
		add("page: "+f.name+", first rows", time.Duration(ms*float64(time.Millisecond)))
		// A search answered in parts says "searching…" until its page is
		// full or the capture ends.
		ms, err = chromedp.Run(tctx, chromedp.Poll[float64](`document.getElementById('status').textContent === '' && `+
			`document.querySelector('#rows tr') && performance.now() - window.__t`, chromedp.WithPollingInterval(5*time.Millisecond)))
		if err != nil {
			return fmt.Errorf("filter %q: %w", f.q, err)
		}
		add("page: "+f.name+", done", time.Duration(ms*float64(time.Millisecond)))
	}
	return nil
}

// vmHWM is a process's peak resident set in KiB.
func vmHWM(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM for %d", pid)
}
