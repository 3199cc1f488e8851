// Package inspector is mqtape's terminal UI for browsing, filtering and
// decoding a capture: a header, a topic tree, a virtual message table over
// millions of rows, a detail pane, a filter line, statistics and charts, live
// tail of a capture being recorded, and actions (export, write, play).
//
// It never loads a capture into memory: the table reads pages of row
// summaries by keyset queries (see model), payloads are read one at a time
// for the detail pane, and scans run off the UI goroutine and hand their
// results over with Application.QueueUpdateDraw.
package inspector

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

// Options configure an inspector.
type Options struct {
	// Location is the zone absolute times are shown and read in; nil: local.
	Location *time.Location
	// Poll is how often a capture is checked for new messages (live tail);
	// 0 means every second, negative never.
	Poll time.Duration
	// Mouse enables mouse support.
	Mouse bool
	// Follow starts in follow mode (the selection stays on the newest message).
	Follow bool
	// Dir is where e and w propose to write files; "" is the working directory.
	Dir string
	// Connect connects to a broker for p (play); nil disables p.
	Connect Connector
	// Broker is the broker p proposes.
	Broker string
	// Protocol is the MQTT protocol level p connects with (4: 3.1.1, 5),
	// 0 for the level the played messages were recorded with.
	Protocol int
	// Filter is the query to start with (the / line's language).
	Filter string
	// Decode decodes payloads for the detail pane, the payload column,
	// the / filter and the plots; nil: as recorded.
	Decode DecodeFunc
	// MayDecode tells whether Decode may decode a message on a topic, so
	// that the payload column reads only those payloads whole; nil: any.
	MayDecode func(topic string) bool
}

// UI is an inspector on one open capture.
type UI struct {
	app  *tview.Application
	c    *storage.Capture
	opts Options
	loc  *time.Location

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	busy   atomic.Int64 // background jobs not yet handed over

	// Facts about the capture (UI goroutine).
	sessions   []storage.SessionInfo
	topics     []storage.Topic
	topicNames map[string]bool
	lo, hi     int64 // seq bounds
	firstNS    int64
	lastNS     int64
	gapless    bool // seqs lo..hi have no gaps (checked by the topic count)
	// topicCounts are messages per topic id up to trieHorizon.
	topicCounts map[int64]int64
	// rank ranks the rows of topic filters (nil until the topic count is
	// done; see rankIndex).
	rank *rankIndex
	// rankDone is closed once the topic count has ended and rank is set
	// (or stays nil after an error): a topic filter applied before then
	// waits for it rather than counting the capture.
	rankDone chan struct{}
	multiDay bool

	// View state (UI goroutine).
	filter      Filter
	m           *model
	gen         int64 // increments with every installed model
	filterJob   context.CancelFunc
	counting    string // what is being computed for the next model, "" when idle
	relTime     bool
	follow      bool
	view        viewMode
	diff        bool
	status      string
	statusErr   bool
	treeShown   bool
	statsShown  bool
	trieHorizon int64 // seq up to which the tree's counts go
	trieReady   bool  // the tree has counts
	promptDone  func(text string) error
	promptEsc   func()
	promptSeq   int // counts ask calls, so a done func may open the next prompt
	completer   func(text string) []string
	// completionsShown: the filter line's completion list is (probably) open.
	completionsShown bool
	helpShown        bool
	pendingFilter    *Filter // Options.Filter, applied when Run starts
	started          bool    // background work started (first frame)
	detailSeq        int64
	job              string // a running action (export, play), for the status line
	jobCancel        context.CancelFunc

	liveMu sync.Mutex
	live   liveSnap

	// Widgets.
	root     *tview.Pages
	header   *tview.TextView
	table    *tview.Table
	detail   *tview.TextView
	tree     *topicTree
	browse   *tview.Flex
	body     *tview.Pages
	stats    *statsView
	statusTV *tview.TextView
	keybar   *tview.TextView
	prompt   *tview.InputField
	bottom   *tview.Pages
	help     *tview.TextView

	keys []binding
}

// New reads the capture's header facts and builds the UI on app. It queries
// only what the first screen needs; counts and statistics load in the
// background once Run starts.
func New(app *tview.Application, c *storage.Capture, opts Options) (*UI, error) {
	u := &UI{app: app, c: c, opts: opts, loc: opts.Location, follow: opts.Follow, rankDone: make(chan struct{})}
	if u.loc == nil {
		u.loc = time.Local
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	if err := u.loadFacts(u.ctx); err != nil {
		u.cancel()
		return nil, err
	}
	p, err := c.Prepare(u.ctx, storage.Query{})
	if err != nil {
		u.cancel()
		return nil, err
	}
	u.gapless = true // assumed until the topic count says otherwise
	u.m = newContiguousModel(c, p, u.lo, u.hi)
	u.decodeColumn(u.m)
	u.keys = bindings()
	u.build()
	u.publishSnap()
	if opts.Filter != "" {
		f, err := parseFilter(opts.Filter, u.filterEnv())
		if err != nil {
			u.cancel()
			return nil, err
		}
		u.pendingFilter = &f
	}
	if u.follow {
		u.end()
	} else {
		u.selectRow(0, false)
	}
	u.refresh()
	return u, nil
}

// loadFacts reads sessions, topics, bounds and the time span.
func (u *UI) loadFacts(ctx context.Context) error {
	var err error
	if u.sessions, err = u.c.Sessions(ctx); err != nil {
		return err
	}
	if err = u.setTopics(ctx); err != nil {
		return err
	}
	if u.lo, u.hi, err = u.c.SeqBounds(ctx); err != nil {
		return err
	}
	if u.hi > 0 {
		first, err := u.c.Get(ctx, u.lo)
		if err != nil {
			return err
		}
		last, err := u.c.Get(ctx, u.hi)
		if err != nil {
			return err
		}
		u.firstNS, u.lastNS = first.TimeNS, last.TimeNS
	}
	u.updateMultiDay()
	return nil
}

func (u *UI) updateMultiDay() {
	a, b := time.Unix(0, u.firstNS).In(u.loc), time.Unix(0, u.lastNS).In(u.loc)
	u.multiDay = a.YearDay() != b.YearDay() || a.Year() != b.Year()
}

func (u *UI) setTopics(ctx context.Context) error {
	topics, err := u.c.Topics(ctx)
	if err != nil {
		return err
	}
	u.topics = topics
	u.topicNames = make(map[string]bool, len(topics))
	for _, t := range topics {
		u.topicNames[t.Name] = true
	}
	return nil
}

// Start runs an inspector for c on the terminal until q, Ctrl-C or ctx
// ends. Errors in opts (a bad filter) and a missing terminal are returned
// before the terminal is touched.
func Start(ctx context.Context, c *storage.Capture, opts Options) error {
	u, err := New(tview.NewApplication(), c, opts)
	if err != nil {
		return err
	}
	if err := u.Run(ctx); err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	return nil
}

// Run shows the UI until q, Ctrl-C or ctx ends, then restores the terminal.
func (u *UI) Run(ctx context.Context) error {
	// Background work starts with the first frame (see build): results are
	// handed over through the running event loop, which a failed terminal
	// never starts.
	stop := context.AfterFunc(ctx, func() { u.cancel(); u.app.Stop() })
	defer stop()
	err := u.app.Run()
	u.shutdown()
	return err
}

// startBackground starts the topic count and the live-tail poller.
func (u *UI) startBackground() {
	u.countTopics()
	if f := u.pendingFilter; f != nil {
		u.pendingFilter = nil
		if err := u.applyFilter(f.Text); err != nil {
			u.fail(err)
		}
	}
	if u.opts.Poll >= 0 {
		every := u.opts.Poll
		if every == 0 {
			every = time.Second
		}
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			u.poll(u.ctx, every)
		}()
	}
}

// shutdown stops background work. Jobs blocked handing a result to a
// stopped application are abandoned (they cannot be unblocked).
func (u *UI) shutdown() {
	u.cancel()
	done := make(chan struct{})
	go func() { u.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

func (u *UI) quit() {
	u.cancel()
	u.app.Stop()
}

// spawn runs fn off the UI goroutine; fn hands results over with u.post.
func (u *UI) spawn(fn func(ctx context.Context)) {
	u.spawnCtx(u.ctx, fn)
}

func (u *UI) spawnCtx(ctx context.Context, fn func(ctx context.Context)) {
	u.busy.Add(1)
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		defer u.busy.Add(-1)
		fn(ctx)
	}()
}

// post runs f on the UI goroutine and redraws, unless the UI is closing.
func (u *UI) post(f func()) {
	if u.ctx.Err() != nil {
		return
	}
	u.app.QueueUpdateDraw(func() {
		if u.ctx.Err() == nil {
			f()
		}
	})
}

// build makes the widgets and the layout.
func (u *UI) build() {
	u.header = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	u.table = tview.NewTable().SetFixed(1, 0).SetSelectable(true, false).SetContent(&tableContent{u: u})
	u.table.SetBorder(true).SetTitle(" messages ")
	u.table.SetSelectionChangedFunc(func(row, _ int) { u.onSelect(row) })
	u.table.SetSelectedStyle(tcell.StyleDefault.Background(tcell.ColorNavy).Foreground(tcell.ColorWhite))
	u.detail = tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetScrollable(true)
	u.detail.SetBorder(true).SetTitle(" detail ")
	u.tree = newTopicTree()
	u.tree.view.SetSelectedFunc(func(*tview.TreeNode) { u.treeChoose() })
	right := tview.NewFlex().SetDirection(tview.FlexRow).AddItem(u.table, 0, 3, true).AddItem(u.detail, 0, 2, false)
	u.browse = tview.NewFlex().AddItem(right, 0, 1, true)
	u.stats = newStatsView()
	u.body = tview.NewPages().AddPage("browse", u.browse, true, true).AddPage("stats", u.stats.root, true, false)
	u.statusTV = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	u.keybar = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	u.prompt = tview.NewInputField().SetFieldBackgroundColor(tcell.ColorDarkSlateGray)
	u.prompt.SetDoneFunc(u.promptKey)
	u.prompt.SetAutocompleteFunc(func(text string) []string {
		if u.completer == nil {
			return nil
		}
		return u.completer(text)
	})
	u.bottom = tview.NewPages().AddPage("keys", u.keybar, true, true).AddPage("prompt", u.prompt, true, false)
	main := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.header, 2, 0, false).
		AddItem(u.body, 0, 1, true).
		AddItem(u.statusTV, 1, 0, false).
		AddItem(u.bottom, 1, 0, false)
	u.help = tview.NewTextView().SetDynamicColors(true).SetScrollable(true).SetWrap(true).SetWordWrap(true)
	u.help.SetBorder(true).SetTitle(" help: ? or Esc closes ")
	helpBox := tview.NewFlex().
		AddItem(nil, 2, 0, false).
		AddItem(tview.NewFlex().SetDirection(tview.FlexRow).
			AddItem(nil, 1, 0, false).AddItem(u.help, 0, 1, true).AddItem(nil, 1, 0, false), 0, 1, true).
		AddItem(nil, 2, 0, false)
	u.root = tview.NewPages().AddPage("main", main, true, true).AddPage("help", helpBox, true, false)
	u.keybar.SetText(u.keyBarText())
	u.help.SetText(u.helpText())
	u.app.SetRoot(u.root, true).SetFocus(u.table)
	u.app.SetInputCapture(u.onKey)
	u.app.SetBeforeDrawFunc(func(tcell.Screen) bool {
		if !u.started {
			u.started = true
			u.startBackground()
		}
		u.refresh()
		return false
	})
	u.app.EnableMouse(u.opts.Mouse)
}

// refresh redraws the header and status line from the state.
func (u *UI) refresh() {
	u.header.SetText(u.headerText())
	u.statusTV.SetText(u.statusText())
}

func (u *UI) headerText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[::b]%s[::-]", tview.Escape(filepath.Base(u.c.Path())))
	ns := len(u.sessions)
	fmt.Fprintf(&b, "  %s  %s", humanize.Count(int64(ns), "session", "sessions"), humanize.Count(u.totalMessages(), "message", "messages"))
	if u.hi > 0 {
		a, z := time.Unix(0, u.firstNS).In(u.loc), time.Unix(0, u.lastNS).In(u.loc)
		endFmt := "15:04:05"
		if u.multiDay {
			endFmt = "2006-01-02 15:04:05"
		}
		fmt.Fprintf(&b, "  %s → %s %s (%s)", a.Format("2006-01-02 15:04:05"), z.Format(endFmt), zoneName(z),
			fmtSpan(time.Duration(u.lastNS-u.firstNS)))
	}
	switch u.recording() {
	case "live":
		b.WriteString("  [black:green] LIVE [-:-]")
	case "unclosed":
		b.WriteString("  [gray](last session not closed)[-]")
	}
	if u.follow {
		b.WriteString(" [black:yellow] FOLLOW [-:-]")
	}
	b.WriteString("\n")
	switch {
	case u.filter.Empty() && u.counting == "":
		b.WriteString("[gray]filter: none (/ to filter, t for topics)[-]")
	case u.filter.Empty():
		b.WriteString("filter: none")
	default:
		fmt.Fprintf(&b, "filter: [yellow]%s[-]", tview.Escape(u.filter.Describe(u.loc)))
		if u.filterJob == nil { // the table shows this filter
			fmt.Fprintf(&b, "  [::b]%s[::-] %s", humanize.GroupDigits(u.m.total), humanize.Plural(u.m.total, "match", "matches"))
		}
	}
	if u.counting != "" {
		fmt.Fprintf(&b, "  [aqua]%s…[-]", tview.Escape(u.counting))
	}
	return b.String()
}

func zoneName(t time.Time) string {
	name, _ := t.Zone()
	return name
}

// totalMessages is the capture's message count (the unfiltered view's when
// known exactly).
func (u *UI) totalMessages() int64 {
	if u.hi == 0 {
		return 0
	}
	if u.trieReady && !u.gapless {
		return u.tree.trie.root.total
	}
	return u.hi - u.lo + 1
}

// recording reports whether the newest session has not ended.
// A session that has not ended but has not flushed for this long was most
// likely cut short (the recorder was killed) rather than still recording.
const staleAfter = 30 * time.Second

// recording says whether the newest session is still being written:
// "live" when it flushed recently, "unclosed" when it has not ended but has
// been quiet for staleAfter (a recorder that was killed), "" otherwise.
func (u *UI) recording() string {
	if len(u.sessions) == 0 {
		return ""
	}
	s := u.sessions[len(u.sessions)-1]
	switch {
	case s.Closed():
		return ""
	case time.Since(time.Unix(0, s.EndNS())) < staleAfter:
		return "live"
	}
	return "unclosed"
}

func (u *UI) statusText() string {
	var b strings.Builder
	row, _ := u.table.GetSelection()
	if u.m.total > 0 {
		fmt.Fprintf(&b, "[gray]row %s/%s[-]  ", humanize.GroupDigits(int64(max(row, 1))), humanize.GroupDigits(u.m.total))
	} else {
		b.WriteString("[gray]no messages[-]  ")
	}
	if u.job != "" {
		fmt.Fprintf(&b, "[aqua]%s[-]  ", tview.Escape(u.job))
	}
	switch {
	case u.status == "":
	case u.statusErr:
		fmt.Fprintf(&b, "[red::b]%s[-::-]", tview.Escape(u.status))
	default:
		b.WriteString(tview.Escape(u.status))
	}
	return b.String()
}

// say shows a message in the status line.
func (u *UI) say(format string, a ...any) {
	u.status, u.statusErr = fmt.Sprintf(format, a...), false
}

// fail shows an error in the status line.
func (u *UI) fail(err error) {
	u.status, u.statusErr = err.Error(), true
}
