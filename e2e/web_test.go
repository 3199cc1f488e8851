package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// webHostile are topics and payloads that try to run script, restyle the
// page, retitle it or reorder its text.
var webHostile = []struct{ topic, payload string }{
	{"<script>document.title='pwned'</script>", `<img src=x onerror="document.title='pwned';window.pwned=1">`},
	{`x/"><svg onload=window.pwned=1>`, "</td></tr></table><h1 id=injected>big</h1>"},
	{"esc/\x1b]0;retitled\x07\x1b[2J", "\x1b[31mred\u009b"},
	{"bidi/\u202eevil\u2066", "left\u202eright"},
}

// liveCapture is a capture a recorder is writing: its session stays open
// and Write adds messages the way the recorder commits them.
type liveCapture struct {
	t     *testing.T
	path  string
	sess  *storage.Session
	start int64
	n     int
}

func newLiveCapture(t *testing.T) *liveCapture {
	t.Helper()
	l := &liveCapture{t: t, path: filepath.Join(t.TempDir(), "live.db"), start: time.Now().UnixNano()}
	c, err := storage.OpenWrite(l.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	l.sess, err = c.BeginSession(context.Background(), storage.SessionInfo{Source: "subscriber", Broker: "mqtt://127.0.0.1:1883",
		ClientID: "rec", Protocol: 4, StartedNS: l.start, Version: "test", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *liveCapture) write(topic, payload string) {
	l.t.Helper()
	l.n++
	off := int64(l.n) * int64(100*time.Millisecond)
	m := storage.Message{TimeNS: l.start + off, OffsetNS: off, Topic: topic, QoS: byte(l.n % 2), Payload: []byte(payload)}
	if err := l.sess.Write(context.Background(), []storage.Message{m}, nil, m.TimeNS); err != nil {
		l.t.Fatal(err)
	}
}

// startWeb runs mqtape web on path and returns the URL it printed.
func startWeb(t *testing.T, path string) string {
	t.Helper()
	bin := testbroker.BuildMqtape(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "web", path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("mqtape web printed no URL: %v", err)
	}
	return strings.TrimSpace(line)
}

// browser starts Debian's chromium headless (skipped when it is absent,
// except with CI=true).
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := testbroker.Binary(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 900))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser (no timeout on this first call)
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// page runs steps in the browser tab within 30 s.
func page(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the tab.
func eval[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const jsTopics = `Array.from(document.querySelectorAll('#rows tr td.topic'), td => td.textContent)`

// TestWebInBrowser opens a capture that is being recorded in a real
// browser: the filter comes from the URL, hostile topics and payloads stay
// text (shown as termsafe shows them), j selects and puts seq in the URL,
// and ?follow=1 shows messages written while the page is open.
// newWebCapture is the capture of the page tests: the hostile messages,
// then 40 plant/N/temp readings (N = i%4, celsius 20+i).
func newWebCapture(t *testing.T) *liveCapture {
	t.Helper()
	live := newLiveCapture(t)
	for _, h := range webHostile {
		live.write(h.topic, h.payload)
	}
	for i := range 40 {
		live.write(fmt.Sprintf("plant/%d/temp", i%4), fmt.Sprintf(`{"celsius":%d}`, 20+i))
	}
	return live
}

func TestWebInBrowser(t *testing.T) {
	live := newWebCapture(t)
	base := startWeb(t, live.path)
	ctx := browser(t)

	// The filter from the URL.
	page(t, ctx, chromedp.Navigate(base+"?q="+url.QueryEscape("plant/1/temp .celsius>30")), chromedp.WaitVisible(`#rows tr`))
	topics := eval(t, ctx, chromedp.Evaluate[[]string](jsTopics))
	q := eval(t, ctx, chromedp.Value(`#q`))
	if q != "plant/1/temp .celsius>30" || len(topics) != 7 || slices.ContainsFunc(topics, func(s string) bool { return s != "plant/1/temp" }) {
		t.Errorf("?q= filter box %q, rows %q; want 7 rows of plant/1/temp", q, topics)
	}

	// Hostile data stays text, shown as mqtape shows it on a terminal.
	page(t, ctx, chromedp.Navigate(base), chromedp.WaitVisible(`#rows tr`))
	topics = eval(t, ctx, chromedp.Evaluate[[]string](jsTopics))
	title := eval(t, ctx, chromedp.Evaluate[string](`document.title`))
	injected := eval(t, ctx, chromedp.Evaluate[bool](`!!document.querySelector('#injected, img, svg, body script') || document.scripts.length !== 1`))
	pwned := eval(t, ctx, chromedp.Evaluate[bool](`window.pwned === 1`))
	if title != "mqtape web" || injected || pwned {
		t.Errorf("hostile data ran: title %q, injected elements %v, script ran %v", title, injected, pwned)
	}
	for i, h := range webHostile {
		if i >= len(topics) || topics[i] != termsafe.String(h.topic) {
			t.Errorf("row %d of %q, want %q", i, topics, termsafe.String(h.topic))
		}
	}
	// The header: the file and how many messages it holds (from /api/topics).
	header := eval(t, ctx, chromedp.Poll[string](`document.getElementById('file').textContent || false`))
	if want := fmt.Sprintf("%s · %d messages", live.path, len(webHostile)+40); header != want {
		t.Errorf("header %q, want %q", header, want)
	}
	page(t, ctx, chromedp.KeyEvent("j"), chromedp.KeyEvent("j"))
	if search := eval(t, ctx, chromedp.Evaluate[string](`location.search`)); search != "?seq=2" {
		t.Errorf("after j j the URL has %q, want ?seq=2", search)
	}
	if detail := eval(t, ctx, chromedp.Text(`#detail`)); !strings.Contains(detail, "</td></tr></table><h1 id=injected>big</h1>") {
		t.Errorf("detail pane of message 2: %q", detail)
	}

	// Follow: messages written now appear within a second.
	page(t, ctx, chromedp.Navigate(base+"?follow=1"), chromedp.WaitVisible(`#rows tr`),
		chromedp.Poll[chromedp.Void](`document.getElementById('status').textContent === 'following'`))
	began := time.Now()
	live.write("door/open", `{"open":true}`)
	live.write("door/\u202eclosed", `{"open":false}`)
	page(t, ctx, chromedp.Poll[chromedp.Void](`(`+jsTopics+`).includes('door/⟨U+202E⟩closed')`, chromedp.WithPollingTimeout(5*time.Second)))
	if took := time.Since(began); took > time.Second {
		t.Errorf("followed messages took %v to appear, want within 1 s", took)
	}
	if shot := os.Getenv("MQTAPE_WEB_SCREENSHOT"); shot != "" {
		page(t, ctx, chromedp.Navigate(base+"?field=.celsius&seq=30"), chromedp.WaitVisible(`#rows tr[aria-selected=true]`))
		png := eval(t, ctx, chromedp.FullScreenshot(100))
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
