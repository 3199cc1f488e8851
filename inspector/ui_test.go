package inspector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/mqtt"

	"github.com/gdamore/tcell/v2"

	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

// TestGoldenScreens draws the main screens of the fixture capture on a
// 110×34 simulation screen and compares them with testdata/*.golden.
func TestGoldenScreens(t *testing.T) {
	path := fixture(t)
	steps := []struct {
		name string
		keys []any
	}{
		{"start", nil},
		{"end", []any{tcell.KeyEnd}},
		{"filter", []any{tcell.KeyHome, '/', "plant/+/temp qos>=1", tcell.KeyEnter}},
		{"tree", []any{'t', tcell.KeyDown, tcell.KeyDown, tcell.KeyDown, tcell.KeyRight}},
		{"hex", []any{'t', '/', tcell.KeyCtrlU, "bin/raw", tcell.KeyEnter}},
		{"diff-json", []any{'/', tcell.KeyCtrlU, "plant/1/temp", tcell.KeyEnter, tcell.KeyDown, 'd'}},
		{"diff-text", []any{'d', '/', tcell.KeyCtrlU, "status/heartbeat", tcell.KeyEnter, tcell.KeyDown, 'd'}},
		{"jump-relative", []any{'d', tcell.KeyEscape, '/', tcell.KeyEscape, 'r', ':', "1m", tcell.KeyEnter}},
		{"bad-filter", []any{'r', '/', "payload~( qos>=1", tcell.KeyEnter}},
		{"help", []any{tcell.KeyEscape, '?'}},
		{"stats", []any{'?', tcell.KeyHome, tcell.KeyDown, tcell.KeyDown, 's'}},
	}
	h := start(t, path, Options{}, 110, 34)
	for _, s := range steps {
		h.press(s.keys...)
		h.golden(s.name)
	}
}

func TestGoldenEmptyCapture(t *testing.T) {
	h := start(t, writeCapture(t, nil), Options{}, 80, 16)
	h.golden("empty")
	h.press(tcell.KeyEnd, tcell.KeyPgDn, 'v', 'd', 'w', tcell.KeyEscape, 's', 't', '/', "x", tcell.KeyEnter)
	if !h.contains("no messages") {
		t.Errorf("empty capture after keys:\n%s", h.text())
	}
}

// TestFilterFlow: the / line applies on Enter, keeps the selected message
// when it matches (else the next match), shows errors inline, and Esc
// clears the filter.
func TestFilterFlow(t *testing.T) {
	h := start(t, fixture(t), Options{}, 120, 40)
	h.press(tcell.KeyDown, tcell.KeyDown, tcell.KeyDown) // row 4: seq 4, plant/2/temp
	if got := h.selectedSeq(); got != 4 {
		t.Fatalf("selected seq %d, want 4", got)
	}
	h.press('/', "plant/# qos>=1", tcell.KeyEnter)
	var total int64
	var text string
	h.state(func(u *UI) { total, text = u.m.total, u.filter.Text })
	// plant/N/temp is i%5 in {0,1} with qos i%3 ≥ 1, plus session 2's 20 (qos 1).
	want := int64(20)
	for i := range 200 {
		if i%5 <= 1 && i%3 >= 1 {
			want++
		}
	}
	if total != want || text != "plant/# qos>=1" {
		t.Fatalf("filter: %d matches for %q, want %d", total, text, want)
	}
	// Seq 4 is i=1 (qos 1): it matches and stays selected.
	if got := h.selectedSeq(); got != 4 {
		t.Errorf("after filtering, selected seq %d, want 4 (kept)", got)
	}
	if !h.contains("topic plant/#, qos 1,2") || !h.contains(humanize.GroupDigits(want)+" matches") {
		t.Errorf("header does not show the filter and its count:\n%s", h.text())
	}

	// A bad query leaves the prompt open with the error; the old filter stays.
	h.press('/', tcell.KeyCtrlU, "a/#/b", tcell.KeyEnter)
	if !h.contains("invalid topic filter") {
		t.Errorf("no inline error for a bad filter:\n%s", h.text())
	}
	var focusPrompt bool
	h.state(func(u *UI) { focusPrompt = u.app.GetFocus() == u.prompt; total = u.m.total })
	if !focusPrompt || total != want {
		t.Errorf("after a bad query: prompt focused %v, total %d", focusPrompt, total)
	}
	// Esc clears the filter.
	h.press(tcell.KeyEscape)
	h.state(func(u *UI) { total, text = u.m.total, u.filter.Text })
	if total != 223 || text != "" {
		t.Errorf("after Esc: %d rows, filter %q; want all 223", total, text)
	}
	if got := h.selectedSeq(); got != 4 {
		t.Errorf("after clearing, selected seq %d, want 4", got)
	}

	// Completion: Tab takes the proposed topic; Enter applies what is typed
	// even while the list of proposals is open.
	h.press('/', tcell.KeyCtrlU, "status/h", tcell.KeyTab, tcell.KeyEnter)
	h.state(func(u *UI) { total, text = u.m.total, u.filter.Text })
	if text != "status/heartbeat" || total != 40 {
		t.Errorf("Tab completion: filter %q with %d matches, want status/heartbeat with 40", text, total)
	}
	h.press('/', tcell.KeyCtrlU, "plant/1", tcell.KeyEnter)
	h.state(func(u *UI) { total, text = u.m.total, u.filter.Text })
	if text != "plant/1" || total != 0 || h.contains("plant/1/temp  ") {
		t.Errorf("Enter with proposals open: filter %q (%d matches)\n%s", text, total, h.text())
	}

	// Payload terms (list mode) and a regular expression.
	h.press('/', tcell.KeyCtrlU, "payload~beat\\s1[0-9]$", tcell.KeyEnter)
	h.state(func(u *UI) { total = u.m.total })
	if total != 2 { // beat 12, beat 17
		t.Errorf("payload regex: %d matches, want 2", total)
	}
	h.press('/', tcell.KeyCtrlU, `"beat 1"`, tcell.KeyEnter)
	h.state(func(u *UI) { total = u.m.total })
	var n int64
	for i := range 200 {
		if i%5 == 2 && strings.Contains(fmt.Sprintf("beat %d", i), "beat 1") {
			n++
		}
	}
	if total != n {
		t.Errorf("payload substring: %d matches, want %d", total, n)
	}
}

// TestNavigationAndJumps drives the table keys and the : line.
func TestNavigationAndJumps(t *testing.T) {
	h := start(t, fixture(t), Options{}, 100, 30)
	check := func(what string, want int64) {
		t.Helper()
		if got := h.selectedSeq(); got != want {
			t.Errorf("%s: selected seq %d, want %d", what, got, want)
		}
	}
	h.press(tcell.KeyEnd)
	check("End", 223)
	h.press('g')
	check("g", 1)
	h.press('G')
	check("G", 223)
	h.press(tcell.KeyHome, tcell.KeyPgDn)
	var vis int64
	h.state(func(u *UI) { vis = u.visibleRows() })
	check("PgDn", 1+vis)
	h.press(tcell.KeyPgUp, tcell.KeyUp)
	check("PgUp, Up", 1)
	status := func(what, want string) {
		t.Helper()
		var got string
		h.state(func(u *UI) { got = u.status })
		if got != want {
			t.Errorf("%s: status %q, want %q", what, got, want)
		}
	}
	h.press(':', "#100", tcell.KeyEnter)
	check(":#100", 100)
	status(":#100", "jumped to seq 100")
	h.press(':', "+10s", tcell.KeyEnter) // seq 100 is i=97 at 49 s → 59 s is i=117, seq 120
	check(":+10s", 120)
	h.press(':', "-1m", tcell.KeyEnter)
	check(":-1m", 1)
	h.press(':', "30s", tcell.KeyEnter) // offset in session 1: i=59 at 30 s, seq 62
	check(":30s", 62)
	status(":30s", "jumped to +30s into the session: seq 62")
	h.press(':', "10:00:45", tcell.KeyEnter) // clock: i=89 at 45 s, seq 92
	check(":10:00:45", 92)
	h.press(':', "2026-11-26T11:00:05Z", tcell.KeyEnter) // session 2 starts at 11:00 with seq 204
	check(":RFC3339", 209)
	h.press(':', "12:00", tcell.KeyEnter)
	check(":12:00 (after the end)", 223)
	if !h.contains("nothing at or after") {
		t.Errorf("no note for a jump past the end:\n%s", h.text())
	}
	h.press(':', "yesterday", tcell.KeyEnter)
	if !h.contains("jump:") {
		t.Errorf("no inline error for a bad jump:\n%s", h.text())
	}
	h.press(tcell.KeyEscape)

	// Jumps respect the filter: the first match at or after the target.
	h.press('/', "plant/2/temp", tcell.KeyEnter, ':', "#100", tcell.KeyEnter)
	check("filtered :#100", 104)
	status("filtered :#100", "jumped to seq 104, the first at or after seq 100 in the view")
	h.press(tcell.KeyEnd)
	check("filtered End", 198)
}

// TestTreeSelection: choosing a node filters to node/#, the top node clears
// the topic filter and keeps other terms.
func TestTreeSelection(t *testing.T) {
	h := start(t, fixture(t), Options{}, 100, 30)
	h.press('/', "qos>=1", tcell.KeyEnter, 't')
	if !h.contains("all topics (223)") || !h.contains("plant (100)") {
		t.Fatalf("tree without counts:\n%s", h.text())
	}
	// bin, empty, odd topic, plant: four Downs, Enter.
	h.press(tcell.KeyDown, tcell.KeyDown, tcell.KeyDown, tcell.KeyDown, tcell.KeyEnter)
	var text string
	var total int64
	h.state(func(u *UI) { text, total = u.filter.Text, u.m.total })
	if text != "plant/# qos>=1" {
		t.Errorf("tree choice gave filter %q", text)
	}
	var want int64 = 20
	for i := range 200 {
		if i%5 <= 1 && i%3 >= 1 {
			want++
		}
	}
	if total != want {
		t.Errorf("tree choice: %d matches, want %d", total, want)
	}
	// Expand plant, choose plant/1.
	h.press(tcell.KeyRight, tcell.KeyDown, tcell.KeyEnter)
	h.state(func(u *UI) { text = u.filter.Text })
	if text != "plant/1/# qos>=1" {
		t.Errorf("tree choice gave filter %q", text)
	}
	// The top node clears the topic terms only.
	h.press(tcell.KeyHome, tcell.KeyEnter)
	h.state(func(u *UI) { text = u.filter.Text })
	if text != "qos>=1" {
		t.Errorf("top node gave filter %q", text)
	}
	// From the statistics, t goes back to the messages with the tree.
	h.press('s', 't')
	var treeFocused bool
	h.state(func(u *UI) { treeFocused = !u.statsShown && u.app.GetFocus() == u.tree.view })
	if !treeFocused {
		t.Error("t from the statistics did not show the focused tree")
	}
	// t hides the tree and gives the table the focus back.
	h.press('t')
	var tableFocused bool
	h.state(func(u *UI) { tableFocused = u.app.GetFocus() == u.table })
	if !tableFocused || h.contains("all topics") {
		t.Error("t did not hide the tree")
	}
}

// TestViews: v cycles auto, JSON, text, hex; tags in data are shown
// literally.
func TestViews(t *testing.T) {
	h := start(t, fixture(t), Options{}, 120, 40)
	h.press(tcell.KeyDown, tcell.KeyDown) // seq 3: {"temp":20.0,...}
	for _, step := range []struct {
		key  any
		want []string
	}{
		{nil, []string{"view json (auto)", `"temp": 20.0,`}},
		{'v', []string{"view json  ", `"temp": 20.0,`}},
		{'v', []string{"view text", `{"temp":20.0,"unit":"C","n":0}`}},
		{'v', []string{"view hex", "7b 22 74 65 6d 70"}},
		{'v', []string{"view json (auto)"}},
	} {
		if step.key != nil {
			h.press(step.key)
		}
		for _, w := range step.want {
			if !h.contains(w) {
				t.Errorf("after %v: want %q on screen:\n%s", step.key, w, h.text())
			}
		}
	}
	// A JSON array holding tview tags: shown as text, not interpreted.
	h.press('/', `"odd topic/#"`, tcell.KeyEnter)
	if !h.contains("[red]not a tag[-]") {
		t.Errorf("tags in payloads must be shown literally:\n%s", h.text())
	}
}

// TestOddData: binary, huge, empty and unicode payloads and topics.
func TestOddData(t *testing.T) {
	huge := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB of text
	bigJSON := append(append([]byte(`{"a":"`), bytes.Repeat([]byte("x"), 3<<20)...), `"}`...)
	var msgs []storage.Message
	for i, p := range [][]byte{nil, {0}, {0xff, 0xfe}, huge, bigJSON, []byte("\x1b[31mred\x1b[0m"), []byte("a\tb\nc\r\n"),
		[]byte("\xe2\x82"), []byte(`{"nested":{"deep":[1,[2,{"x":null}]]}}`), bytes.Repeat([]byte{0xc3}, 100)} {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i), Topic: []string{"", "/", "a//b", " ", "🌡/ü", "x\x01y", "$SYS/x", "a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", "[red]", "long" + strings.Repeat("-", 300)}[i], Payload: p})
	}
	h := start(t, writeCapture(t, msgs), Options{}, 90, 30)
	for range msgs {
		for _, k := range []any{'v', 'v', 'v', 'v', 'd', 'd', tcell.KeyDown} {
			h.press(k)
		}
	}
	h.press('t', tcell.KeyDown, tcell.KeyRight, tcell.KeyEnter, 's', 'n', 's')
	if !h.contains("[red]") {
		t.Errorf("topic [red] not shown literally:\n%s", h.text())
	}
}

// TestLiveTail: rows written while the inspector runs appear, follow mode
// keeps the newest selected, new topics join the tree and a topic filter.
func TestLiveTail(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "live.db")
	w, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s, err := w.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "c", Protocol: 4,
		StartedNS: time.Now().UnixNano(), Version: "test", Host: "h"}) // now: a live session
	if err != nil {
		t.Fatal(err)
	}
	write := func(from, n int, topic string) {
		var b []storage.Message
		for i := from; i < from+n; i++ {
			b = append(b, storage.Message{TimeNS: t0 + int64(i)*1e6, OffsetNS: int64(i) * 1e6, Topic: topic, Payload: []byte(strconv.Itoa(i))})
		}
		if err := s.Write(ctx, b, nil, time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
	}
	h := start(t, path, Options{}, 100, 24) // an empty, open capture
	if !h.contains("LIVE") || !h.contains("no messages") {
		t.Errorf("open empty capture:\n%s", h.text())
	}
	write(0, 10, "a/x")
	h.poll(ctx)
	var total int64
	h.state(func(u *UI) { total = u.m.total })
	if total != 10 || h.selectedSeq() != 1 {
		t.Fatalf("after 10 rows: total %d, selected %d", total, h.selectedSeq())
	}
	h.press('f')
	write(10, 5, "a/x")
	h.poll(ctx)
	if got := h.selectedSeq(); got != 15 {
		t.Errorf("follow: selected %d, want 15", got)
	}
	// A filter on a topic that appears only later.
	h.press('/', "b/#", tcell.KeyEnter)
	write(15, 3, "b/y")
	write(18, 2, "a/x")
	h.poll(ctx)
	h.state(func(u *UI) { total = u.m.total })
	if total != 3 || h.selectedSeq() != 18 {
		t.Errorf("filtered live: total %d selected %d; want 3 and 18", total, h.selectedSeq())
	}
	// Moving up leaves follow mode.
	h.press(tcell.KeyUp)
	write(20, 1, "b/y")
	h.poll(ctx)
	if got := h.selectedSeq(); got != 17 {
		t.Errorf("after Up, no follow: selected %d, want 17", got)
	}
	h.press(tcell.KeyEscape, '/', tcell.KeyEscape, 't')
	if !h.contains("all topics (21)") || !h.contains("b (4)") {
		t.Errorf("tree after live growth:\n%s", h.text())
	}
	if err := s.End(ctx, t0+1e9, "count", 0); err != nil {
		t.Fatal(err)
	}
	h.poll(ctx)
	if h.contains("LIVE") {
		t.Error("LIVE shown after the session ended")
	}
}

// TestExportAndWrite: e writes the filter's messages as JSON lines; w the
// selected payload; neither overwrites a file.
func TestExportAndWrite(t *testing.T) {
	dir := t.TempDir()
	h := start(t, fixture(t), Options{Dir: dir}, 110, 30)
	h.press('/', "bin/raw", tcell.KeyEnter, 'e', tcell.KeyCtrlU, filepath.Join(dir, "out.jsonl"), tcell.KeyEnter)
	data, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 40 {
		t.Fatalf("exported %d lines, want 40", len(lines))
	}
	var rec export.Record
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec.Topic != "bin/raw" || rec.Seq != 6 || rec.Payload != nil || rec.PayloadB64 == "" {
		t.Errorf("first record %+v, %v", rec, err)
	}
	if !h.contains("exported 40 messages") {
		t.Errorf("no export confirmation:\n%s", h.text())
	}
	h.press('e', tcell.KeyCtrlU, filepath.Join(dir, "out.jsonl"), tcell.KeyEnter)
	if !h.contains("file exists") {
		t.Errorf("export over an existing file:\n%s", h.text())
	}
	h.press(tcell.KeyEscape)
	h.press('w', tcell.KeyEnter)
	got, err := os.ReadFile(filepath.Join(dir, "payload-6.bin"))
	if err != nil || !bytes.Equal(got, []byte{0, 1, 2, 0xff, 3, 0x80, 0x7f, '[', 'r', 'e', 'd', ']'}) {
		t.Errorf("written payload %v, %v", got, err)
	}
}

// fakePub records publishes.
type fakePub struct {
	mu  sync.Mutex
	got []string
}

func (f *fakePub) Publish(topic string, qos byte, retain bool, payload []byte) mqtt.Token {
	f.mu.Lock()
	f.got = append(f.got, topic+" "+string(payload))
	f.mu.Unlock()
	return replay.DoneToken(nil)
}

// TestPlay: p asks for the broker and the speed, then plays the filtered
// messages from the selected one through replay.
func TestPlay(t *testing.T) {
	pub := &fakePub{}
	var broker string
	connect := func(ctx context.Context, b string, _ int) (replay.Publisher, func(), error) {
		broker = b
		return pub, func() {}, nil
	}
	h := start(t, fixture(t), Options{Connect: connect, Broker: "mqtt://default:1883"}, 110, 30)
	h.press('/', "status/heartbeat", tcell.KeyEnter, tcell.KeyEnd, tcell.KeyUp, tcell.KeyUp) // the last three beats
	// target is not on this machine: play asks for a typed yes first.
	h.press('p', tcell.KeyCtrlU, "mqtt://target:1883", tcell.KeyEnter)
	if !h.contains("is not on this machine") {
		t.Errorf("no confirmation asked for a remote broker:\n%s", h.text())
	}
	h.press("no", tcell.KeyEnter) // refused: the question stays
	// Speed 0 is refused, like mqtape play --speed 0; the question stays.
	h.press(tcell.KeyCtrlU, "yes", tcell.KeyEnter, tcell.KeyCtrlU, "0", tcell.KeyEnter)
	if !h.contains(`speed "0": use a positive number`) {
		t.Errorf("speed 0 not refused:\n%s", h.text())
	}
	h.press(tcell.KeyCtrlU, "max", tcell.KeyEnter)
	deadline := time.Now().Add(10 * time.Second)
	for !h.contains("played 3 messages") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		h.settle()
	}
	pub.mu.Lock()
	got := strings.Join(pub.got, ", ")
	pub.mu.Unlock()
	if broker != "mqtt://target:1883" || got != "status/heartbeat beat 187, status/heartbeat beat 192, status/heartbeat beat 197" {
		t.Errorf("played to %q: %s\n%s", broker, got, h.text())
	}
	// Without a connector p explains itself.
	h2 := start(t, fixture(t), Options{}, 80, 20)
	h2.press('p')
	if !h2.contains("play: not available") {
		t.Errorf("p without a connector:\n%s", h2.text())
	}
}

// TestRealLoopKeysMouseAndQuit goes through tcell and tview's event loop:
// injected keys and a mouse click, and q ends Run.
func TestRealLoopKeysMouseAndQuit(t *testing.T) {
	h := start(t, fixture(t), Options{Mouse: true}, 100, 30)
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s:\n%s", what, h.text())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	h.screen.InjectKey(tcell.KeyEnd, 0, tcell.ModNone)
	eventually("End through the event loop", func() bool { return h.selectedSeq() == 223 })
	h.screen.InjectKey(tcell.KeyHome, 0, tcell.ModNone)
	eventually("Home", func() bool { return h.selectedSeq() == 1 })
	// Screen row 6 is the third message: two header lines, the border, the column titles.
	h.screen.InjectMouse(10, 6, tcell.Button1, tcell.ModNone)
	h.screen.InjectMouse(10, 6, tcell.ButtonNone, tcell.ModNone)
	eventually("click on the third row", func() bool { return h.selectedSeq() == 3 })
	h.screen.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		h.done <- nil
	case <-time.After(5 * time.Second):
		t.Fatal("q did not end Run")
	}
}

// TestGapsSwitchToCounting: when the topic count finds holes in the seqs
// (a recovered or cut capture), the unfiltered view stops assuming row r is
// seq lo+r and counts instead; navigation stays right.
func TestGapsSwitchToCounting(t *testing.T) {
	h := start(t, fixture(t), Options{}, 100, 30)
	h.press(':', "#100", tcell.KeyEnter)
	h.state(func(u *UI) { u.setTrie(u.tree.trie, u.hi, false) }) // as if a hole had been found
	h.settle()
	var mode modelMode
	var total int64
	h.state(func(u *UI) { mode, total = u.m.mode, u.m.total })
	if mode != modeAnchored || total != 223 || h.selectedSeq() != 100 {
		t.Fatalf("after finding gaps: mode %d, %d rows, selected %d", mode, total, h.selectedSeq())
	}
	h.press(tcell.KeyEnd)
	if got := h.selectedSeq(); got != 223 {
		t.Errorf("End: %d", got)
	}
	h.press(':', "#7", tcell.KeyEnter, tcell.KeyDown)
	if got := h.selectedSeq(); got != 8 {
		t.Errorf(":#7 Down: %d", got)
	}
}

// TestHeaderSingular: a capture of one message in one session says so in
// the singular (humanize.Count, as every verb does).
func TestHeaderSingular(t *testing.T) {
	h := start(t, writeCapture(t, []storage.Message{msg(time.Second, "a/b", 0, "x")}), Options{}, 100, 20)
	if !h.contains("1 session  1 message") || h.contains("1 messages") {
		t.Errorf("header:\n%s", h.text())
	}
}
