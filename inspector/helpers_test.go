package inspector

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"
	"github.com/rivo/uniseg"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

var update = flag.Bool("update", false, "rewrite the golden screens in testdata/")

// t0 is the fixtures' first receive time: 2026-11-26 10:00:00 UTC.
var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC).UnixNano()

// writeCapture writes one session per argument (messages get receive times
// t0 + offset, sessions an hour apart) and returns the file.
func writeCapture(t testing.TB, sessions ...[]storage.Message) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fixture.db")
	var ss []capturetest.Session
	for i, msgs := range sessions {
		start := t0 + int64(i)*int64(time.Hour)
		for j := range msgs {
			msgs[j].TimeNS = start + msgs[j].OffsetNS
		}
		ss = append(ss, capturetest.Session{Messages: msgs, EndNS: start + int64(time.Hour) - 1,
			Info: storage.SessionInfo{Source: "subscriber", Broker: "mqtt://127.0.0.1:1883", ClientID: "test", Protocol: 4,
				CleanSession: true, StartedNS: start, Version: "test", Host: "h", Filters: []storage.Filter{{Filter: "#", QoS: 2, Granted: 2}}}})
	}
	capturetest.Write(t, path, ss...)
	return path
}

func msg(off time.Duration, topic string, qos byte, payload string) storage.Message {
	return storage.Message{OffsetNS: int64(off), Topic: topic, QoS: qos, Payload: []byte(payload)}
}

// fixture is the capture most UI tests use: telemetry JSON, text, binary,
// retained-store messages, odd topics, two sessions.
func fixture(t testing.TB) string {
	t.Helper()
	var s1 []storage.Message
	for _, tp := range []string{"status/dev1", "status/dev2"} {
		m := msg(0, tp, 1, "online")
		m.Retain, m.FromStore = true, true
		s1 = append(s1, m)
	}
	for i := range 200 {
		off := time.Duration(i+1) * 500 * time.Millisecond
		switch i % 5 {
		case 0, 1:
			s1 = append(s1, msg(off, fmt.Sprintf("plant/%d/temp", i%2+1), byte(i%3),
				fmt.Sprintf(`{"temp":%.1f,"unit":"C","n":%d}`, 20+float64(i%7)/2, i)))
		case 2:
			s1 = append(s1, msg(off, "status/heartbeat", 0, fmt.Sprintf("beat %d", i)))
		case 3:
			s1 = append(s1, storage.Message{OffsetNS: int64(off), Topic: "bin/raw", QoS: 2,
				Payload: []byte{0, 1, 2, 0xff, byte(i), 0x80, 0x7f, '[', 'r', 'e', 'd', ']'}})
		case 4:
			s1 = append(s1, msg(off, "odd topic/wohnzimmer/temperatür/🌡", 1, `["[red]not a tag[-]",`+fmt.Sprint(i)+`]`))
		}
	}
	s1 = append(s1, msg(101*time.Second, "empty", 0, ""))
	var s2 []storage.Message
	for i := range 20 {
		s2 = append(s2, msg(time.Duration(i)*time.Second, "plant/1/temp", 1, fmt.Sprintf(`{"temp":%d}`, 30+i)))
	}
	return writeCapture(t, s1, s2)
}

// harness runs a UI on a simulation screen.
type harness struct {
	t      testing.TB
	u      *UI
	app    *tview.Application
	screen tcell.SimulationScreen
	done   chan error
	exited atomic.Bool
}

func open(t testing.TB, path string) *storage.Capture {
	t.Helper()
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// start opens path and runs the inspector on a w×h simulation screen.
// Live polling is off unless opts.Poll is set; times are UTC.
func start(t testing.TB, path string, opts Options, w, hgt int) *harness {
	t.Helper()
	return startOn(t, open(t, path), opts, w, hgt)
}

func startOn(t testing.TB, c *storage.Capture, opts Options, w, hgt int) *harness {
	t.Helper()
	screen := tcell.NewSimulationScreen("UTF-8")
	app := tview.NewApplication()
	app.SetScreen(screen)
	screen.SetSize(w, hgt)
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Poll == 0 {
		opts.Poll = -1
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	u, err := New(app, c, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, u: u, app: app, screen: screen, done: make(chan error, 1)}
	go func() {
		err := u.Run(context.Background())
		h.exited.Store(true)
		h.done <- err
	}()
	t.Cleanup(h.stop)
	h.settle()
	return h
}

func (h *harness) stop() {
	if !h.exited.Load() {
		h.app.Stop()
	}
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		h.t.Error("inspector did not stop")
	}
	h.done <- nil // for a second stop
}

// sync runs f on the UI goroutine and waits for it and a redraw.
func (h *harness) sync(f func()) { h.t.Helper(); h.queue(f, true) }

func (h *harness) queue(f func(), draw bool) {
	h.t.Helper()
	ok := make(chan struct{})
	go func() {
		if draw {
			h.app.QueueUpdateDraw(f)
		} else {
			h.app.QueueUpdate(f)
		}
		close(ok)
	}()
	select {
	case <-ok:
	case <-time.After(10 * time.Second):
		h.t.Fatal("UI goroutine did not respond")
	}
}

// settle waits until background jobs have handed over their results (each
// hand-over redraws).
// poll runs one round of the live tail (what its ticker does) and settles.
func (h *harness) poll(ctx context.Context) {
	h.t.Helper()
	h.u.pollOnce(ctx)
	h.settle()
}

func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if h.u.busy.Load() == 0 {
			h.queue(func() {}, false) // updates queued before this one have run
			if h.u.busy.Load() == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatal("background jobs did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

// dispatch delivers a key as the application's event loop does.
func (h *harness) dispatch(ev *tcell.EventKey) {
	if capture := h.app.GetInputCapture(); capture != nil {
		if ev = capture(ev); ev == nil {
			return
		}
	}
	if handler := h.u.root.InputHandler(); handler != nil {
		handler(ev, func(p tview.Primitive) { h.app.SetFocus(p) })
	}
}

// press delivers keys one by one, each followed by settle. A string is typed
// rune by rune; tcell.Key values are special keys.
func (h *harness) press(keys ...any) {
	h.t.Helper()
	for _, k := range keys {
		var evs []*tcell.EventKey
		switch k := k.(type) {
		case string:
			for _, r := range k {
				evs = append(evs, tcell.NewEventKey(tcell.KeyRune, r, tcell.ModNone))
			}
		case rune:
			evs = append(evs, tcell.NewEventKey(tcell.KeyRune, k, tcell.ModNone))
		case tcell.Key:
			evs = append(evs, tcell.NewEventKey(k, 0, tcell.ModNone))
		default:
			h.t.Fatalf("press %T", k)
		}
		h.sync(func() { // a typed string arrives within one frame, as a paste would
			for _, ev := range evs {
				h.dispatch(ev)
			}
		})
		h.settle()
	}
}

// text returns the screen as lines, trailing spaces trimmed.
func (h *harness) text() string {
	h.t.Helper()
	var out string
	h.sync(func() {}) // a fresh frame
	cells, w, hgt := h.screen.GetContents()
	var b strings.Builder
	for y := range hgt {
		var line strings.Builder
		for x := 0; x < w; x++ {
			c := cells[y*w+x]
			if len(c.Runes) == 0 || c.Runes[0] == 0 {
				line.WriteByte(' ')
				continue
			}
			s := string(c.Runes)
			line.WriteString(s)
			if uniseg.StringWidth(s) == 2 {
				x++ // the wide rune covers the next cell
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	out = b.String()
	return out
}

// golden compares the screen with testdata/name.golden (-update rewrites it).
func (h *harness) golden(name string) {
	h.t.Helper()
	got := h.text()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			h.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		h.t.Fatalf("%s missing: run go test ./inspector -run %s -update and review it", path, h.t.Name())
	}
	if err != nil {
		h.t.Fatal(err)
	}
	if got != string(want) {
		h.t.Errorf("screen %s differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

// selectedSeq is the seq of the selected message (0 for none).
func (h *harness) selectedSeq() int64 {
	var seq int64
	h.sync(func() {
		if r := h.u.selected(); r != nil {
			seq = r.Seq
		}
	})
	return seq
}

// state reads UI state on the UI goroutine.
func (h *harness) state(f func(u *UI)) {
	h.sync(func() { f(h.u) })
}

func (h *harness) contains(s string) bool {
	return strings.Contains(h.text(), s)
}
