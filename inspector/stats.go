package inspector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/where"
)

// statsView is the s page: a message-rate chart of the current view, the
// per-topic statistics, and a plot of a numeric field (of the decoded
// value, else the JSON payload) over time.
type statsView struct {
	root  *tview.Flex
	rate  *tview.TextView
	table *tview.Table
	plot  *tview.TextView

	rateGen   int64 // view generation the rate chart was computed for (-1: none)
	totals    *storage.Totals
	perTopic  []storage.TopicStats
	topicsFor int64 // capture horizon the per-topic stats cover
	statsGen  int64 // view generation (filter) they were computed for
	plotTopic string
	fields    []string
	field     int
	running   int // jobs in flight
}

const (
	rateHeight   = 6
	plotHeight   = 8
	maxPlotted   = 500_000 // messages read for one field plot
	maxStatsRows = 2000    // topics listed in the statistics table
)

func newStatsView() *statsView {
	s := &statsView{rateGen: -1}
	s.rate = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	s.rate.SetBorder(true).SetTitle(" message rate ")
	s.table = tview.NewTable().SetFixed(1, 0).SetSelectable(true, false)
	s.table.SetBorder(true).SetTitle(" topics ")
	s.plot = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	s.plot.SetBorder(true).SetTitle(" field plot (n / N: next / previous field) ")
	s.root = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(s.rate, rateHeight+4, 0, false).
		AddItem(s.table, 0, 1, true).
		AddItem(s.plot, plotHeight+4, 0, false)
	return s
}

func (s *statsView) invalidate() { s.rateGen = -1 }

func (s *statsView) focusNext(app *tview.Application) { app.SetFocus(s.table) }

// toggleStats shows or hides the statistics and starts what they need.
func (u *UI) toggleStats() {
	u.statsShown = !u.statsShown
	if !u.statsShown {
		u.body.SwitchToPage("browse")
		u.restoreFocus()
		return
	}
	u.body.SwitchToPage("stats")
	u.app.SetFocus(u.stats.table)
	u.loadStats()
}

// chartWidth is the width available to charts, in characters.
func (u *UI) chartWidth() int {
	_, _, w, _ := u.root.GetRect()
	return max(20, w-14)
}

func (u *UI) loadStats() {
	s := u.stats
	if s.rateGen != u.gen || u.m.horizon != s.topicsFor {
		u.loadRate()
	}
	if s.totals == nil || s.topicsFor != u.m.horizon || s.statsGen != u.gen {
		u.loadTopicStats()
	} else {
		u.fillTopicTable()
	}
	if sel := u.selected(); sel != nil && sel.Topic != s.plotTopic {
		u.pickPlotTopic(sel)
	}
}

// loadRate computes messages per time bucket for the current view.
func (u *UI) loadRate() {
	s := u.stats
	m, gen, width := u.m, u.gen, u.chartWidth()
	from, to := u.firstNS, u.lastNS+1
	if f := u.filter; f.From != nil && f.From.Absolute {
		from = max(from, f.From.Time.UnixNano())
	}
	if f := u.filter; f.To != nil && f.To.Absolute {
		to = min(to, f.To.Time.UnixNano())
	}
	if m.total == 0 || to <= from {
		s.rate.SetText("[gray]no messages[-]")
		s.rateGen = gen
		return
	}
	s.rate.SetText("[aqua]counting messages per time slice…[-]")
	s.running++
	u.spawn(func(ctx context.Context) {
		counts, err := rateSeries(ctx, m, from, to, width)
		u.post(func() {
			s.running--
			if err != nil {
				s.rate.SetText("[red]" + tview.Escape(err.Error()) + "[-]")
				return
			}
			s.rateGen = gen
			s.rate.SetText(u.rateText(counts, from, to, width))
		})
	})
}

// rateSeries counts the model's messages in width equal time slices of
// [from, to): slice edges are found by binary search on time, so each slice
// is one count (a subtraction when the view is contiguous).
func rateSeries(ctx context.Context, m *model, from, to int64, width int) ([]float64, error) {
	edges := make([]int64, width+1)
	for i := range edges {
		t := from + int64(float64(to-from)*float64(i)/float64(width))
		seq, err := m.c.SeqAtTime(ctx, t)
		if err != nil {
			return nil, err
		}
		if seq == 0 || seq > m.horizon {
			seq = m.horizon + 1
		}
		edges[i] = seq
	}
	out := make([]float64, width)
	for i := range width {
		a, b := edges[i], edges[i+1]-1
		if b < a {
			continue
		}
		if m.mode == modeContiguous {
			out[i] = float64(b - a + 1)
			continue
		}
		n, err := m.q.count(ctx, a, b)
		if err != nil {
			return nil, err
		}
		out[i] = float64(n)
	}
	return out, nil
}

func (u *UI) rateText(counts []float64, from, to int64, width int) string {
	slice := time.Duration(float64(to-from) / float64(width))
	peak := 0.0
	for _, c := range counts {
		peak = max(peak, c)
	}
	perSec := func(n float64) string {
		return strconv.FormatFloat(n/max(slice.Seconds(), 1e-9), 'f', 1, 64)
	}
	var b strings.Builder
	scope := "all messages"
	if !u.filter.Empty() {
		scope = "messages matching the filter"
	}
	// The average rate is in the topics table's first row (AVG/s, one
	// definition with info's); the chart shows the busiest column.
	fmt.Fprintf(&b, "[gray]%s; one column = %s; busiest column %s msg/s[-]\n", scope, fmtSpan(slice), perSec(peak))
	for _, line := range blockChart(counts, rateHeight) {
		b.WriteString("[green]" + line + "[-]\n")
	}
	a, z := time.Unix(0, from).In(u.loc).Format("15:04:05"), time.Unix(0, to).In(u.loc).Format("15:04:05")
	fmt.Fprintf(&b, "%s%s%s", a, strings.Repeat(" ", max(1, width-len(a)-len(z))), z)
	return b.String()
}

// loadTopicStats runs storage's statistics pass over the messages the view
// shows: the filter's selection up to the view's horizon (reads every
// selected row's metadata; a second or so per million messages).
func (u *UI) loadTopicStats() {
	s := u.stats
	horizon, gen := u.m.horizon, u.gen
	q := u.filter.Query(u.topics)
	q.BeforeSeq = horizon + 1
	s.table.Clear()
	if !u.fillTopicCounts() {
		s.table.SetCell(0, 0, tview.NewTableCell("computing per-topic statistics (reads the whole capture)…").SetTextColor(tcell.ColorAqua))
	}
	s.running++
	u.spawn(func(ctx context.Context) {
		tot, per, err := u.c.StatsOf(ctx, q)
		u.post(func() {
			s.running--
			if gen != u.gen {
				return // the view changed; its own pass is running
			}
			if err != nil {
				s.table.Clear().SetCell(0, 0, tview.NewTableCell(tview.Escape(err.Error())).SetTextColor(tcell.ColorRed))
				return
			}
			sort.SliceStable(per, func(i, j int) bool { return per[i].Count > per[j].Count })
			s.totals, s.perTopic, s.topicsFor, s.statsGen = &tot, per, horizon, gen
			u.fillTopicTable()
		})
	})
}

// fillTopicCounts shows the per-topic counts the topic tree already has
// while the statistics pass runs (the other columns fill in when it ends),
// when they cover the view: no filter or a topic-only one, no growth since.
func (u *UI) fillTopicCounts() bool {
	f := u.filter
	if u.topicCounts == nil || u.trieHorizon != u.m.horizon || !(f.Empty() || f.TopicOnly()) {
		return false
	}
	var tot storage.Totals
	var per []storage.TopicStats
	for _, t := range u.topics {
		if n := u.topicCounts[t.ID]; n > 0 && (f.Empty() || f.MatchTopic(t.Name)) {
			per = append(per, storage.TopicStats{Topic: t.Name, Count: n})
			tot.Messages += n
		}
	}
	tot.Topics = len(per)
	sort.SliceStable(per, func(i, j int) bool { return per[i].Count > per[j].Count })
	u.drawTopicTable(&tot, per, true)
	return true
}

func (u *UI) fillTopicTable() {
	if u.stats.totals != nil {
		u.drawTopicTable(u.stats.totals, u.stats.perTopic, false)
	}
}

// drawTopicTable shows per-topic statistics; partial: only the counts are
// known yet, the other columns show "…".
func (u *UI) drawTopicTable(tot *storage.Totals, per []storage.TopicStats, partial bool) {
	s := u.stats
	t := s.table
	t.Clear()
	titles := []string{"TOPIC", "COUNT", "BYTES", "AVG/s", "PEAK/s", "FIRST", "LAST"}
	for i, h := range titles {
		c := tview.NewTableCell(h).SetSelectable(false).SetTextColor(tcell.ColorYellow).SetAttributes(tcell.AttrBold)
		if i > 0 && i < 5 {
			c.SetAlign(tview.AlignRight)
		}
		t.SetCell(0, i, c)
	}
	layout := "15:04:05.000"
	if u.multiDay {
		layout = "01-02 15:04:05"
	}
	row := 1
	add := func(name string, ts storage.TopicStats, color tcell.Color) {
		cells := []string{tview.Escape(sanitize(name)), humanize.GroupDigits(ts.Count), "…", "…", "…", "…", "…"}
		if !partial {
			cells = append(cells[:2], humanSize(int(ts.Bytes)), strconv.FormatFloat(tot.AvgRate(ts.Count), 'f', 2, 64),
				humanize.GroupDigits(ts.PeakRate), time.Unix(0, ts.FirstNS).In(u.loc).Format(layout),
				time.Unix(0, ts.LastNS).In(u.loc).Format(layout))
		}
		for i, v := range cells {
			c := tview.NewTableCell(v).SetTextColor(color)
			if i > 0 && i < 5 {
				c.SetAlign(tview.AlignRight)
			}
			if i == 0 {
				c.SetMaxWidth(60).SetExpansion(1)
			}
			t.SetCell(row, i, c)
		}
		row++
	}
	// The first row sums up what the filter selects, like every other row.
	first := "all " + humanize.Count(int64(tot.Topics), "topic", "topics")
	if !u.filter.Empty() {
		first = "the filter's " + humanize.Count(int64(tot.Topics), "topic", "topics")
	}
	if tot.Messages > 0 {
		add(first, storage.TopicStats{Count: tot.Messages, Bytes: tot.Bytes, FirstNS: tot.FirstNS, LastNS: tot.LastNS,
			PeakRate: tot.PeakRate}, tcell.ColorWhite)
	} else {
		t.SetCell(row, 0, tview.NewTableCell("no messages match the filter").SetTextColor(tcell.ColorGray))
	}
	shown := 0
	for _, ts := range per {
		if shown++; shown <= maxStatsRows {
			add(ts.Topic, ts, tcell.ColorAqua)
		}
	}
	if shown > maxStatsRows {
		t.SetCell(row, 0, tview.NewTableCell(fmt.Sprintf("… %s more topics (filter by topic to see them)",
			humanize.GroupDigits(int64(shown-maxStatsRows)))).SetTextColor(tcell.ColorGray))
	}
	title := " topics (by count) "
	if !u.filter.Empty() {
		title = fmt.Sprintf(" topics matching the filter: %d of %d ", shown, len(u.topics))
	}
	if partial {
		title += "— computing bytes, rates and times… "
	}
	t.SetTitle(title)
	t.ScrollToBeginning()
}

// pickPlotTopic chooses the numeric fields of a message's topic to plot.
func (u *UI) pickPlotTopic(sel *storage.Row) {
	s := u.stats
	m, err := u.c.Get(u.ctx, sel.Seq)
	if err != nil {
		s.plot.SetText("[red]" + tview.Escape(err.Error()) + "[-]")
		return
	}
	ctx, cancel := context.WithTimeout(u.ctx, decodeTimeout)
	defer cancel()
	s.plotTopic, s.fields, s.field = m.Topic, numericFields(queryValue(ctx, u.opts.Decode, &m)), 0
	if len(s.fields) == 0 {
		s.plot.SetText("[gray]the selected message (" + tview.Escape(sanitize(m.Topic)) +
			") has no numeric fields (JSON or decoded); select one that has, then press s again[-]")
		return
	}
	u.loadPlot()
}

// numericFields lists the numeric fields of a value (decoded, else the
// JSON payload): a Sparkplug B payload's numeric metrics by name
// (metric:Temperature, as the / line names them) and the paths of the
// other numeric leaves (.celsius, .seq), metrics[…] aside.
func numericFields(value []byte) []string {
	if kindOf(value) != kindJSON {
		return nil
	}
	var out []string
	where.Metrics(jsonDoc(value), func(name string, v any) bool {
		if _, ok := where.Number(v); ok && !slices.Contains(out, where.MetricTerm(name)) {
			out = append(out, where.MetricTerm(name))
		}
		return true
	})
	paths, values, err := flatten(value)
	if err != nil {
		return out
	}
	for _, p := range paths {
		if len(out) > 0 && strings.HasPrefix(p, ".metrics[") {
			continue
		}
		if _, err := strconv.ParseFloat(values[p], 64); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// jsonDoc decodes JSON text as package where reads it (nil when it is
// not JSON).
func jsonDoc(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil
	}
	return doc
}

// nextField plots the next numeric field.
func (u *UI) nextField(d int) {
	s := u.stats
	if len(s.fields) == 0 {
		if sel := u.selected(); sel != nil {
			u.pickPlotTopic(sel)
		}
		return
	}
	s.field = (s.field + d + len(s.fields)) % len(s.fields)
	u.loadPlot()
}

// loadPlot reads the plotted topic's messages in the background and draws
// the chosen field's range per column.
func (u *UI) loadPlot() {
	s := u.stats
	tp, field := s.plotTopic, s.fields[s.field]
	cols := u.chartWidth() * 2
	var id int64
	for _, t := range u.topics {
		if t.Name == tp {
			id = t.ID
		}
	}
	s.plot.SetText(fmt.Sprintf("[aqua]reading %s for %s…[-]", tview.Escape(sanitize(tp)), tview.Escape(field)))
	s.running++
	u.spawn(func(ctx context.Context) {
		series, err := fieldSeries(ctx, u.c, u.opts.Decode, id, field, cols)
		u.post(func() {
			s.running--
			if tp != s.plotTopic || field != s.fields[s.field] {
				return // superseded
			}
			if err != nil {
				s.plot.SetText("[red]" + tview.Escape(err.Error()) + "[-]")
				return
			}
			s.plot.SetText(u.plotText(tp, field, series, cols))
		})
	})
}

// series is a numeric field bucketed into columns over a time range.
type series struct {
	lo, hi     []float64 // per column; NaN where no message falls
	ymin, ymax float64
	from, to   int64
	n          int  // values plotted
	capped     bool // stopped at maxPlotted messages
}

// fieldSeries reads the messages of one topic and buckets the numeric field
// at path (of each decoded value, else JSON payload) into cols columns
// between the topic's first and last message.
func fieldSeries(ctx context.Context, c *storage.Capture, dec DecodeFunc, topicID int64, path string, cols int) (series, error) {
	s := series{ymin: math.Inf(1), ymax: math.Inf(-1)}
	p, err := c.Prepare(ctx, storage.Query{TopicIDs: []int64{topicID}})
	if err != nil {
		return s, err
	}
	first, err := p.Rows(ctx, 0, math.MaxInt64, 1, 0)
	if err != nil || len(first) == 0 {
		return s, err
	}
	last, err := p.RowsBefore(ctx, 0, math.MaxInt64, 1, 0)
	if err != nil || len(last) == 0 {
		return s, err
	}
	s.from, s.to = first[0].TimeNS, last[0].TimeNS+1
	s.lo, s.hi = make([]float64, cols), make([]float64, cols)
	for i := range s.lo {
		s.lo[i], s.hi[i] = math.NaN(), math.NaN()
	}
	read := 0
	for m, err := range p.Messages(ctx, 0, false) {
		if err != nil {
			return s, err
		}
		if read++; read > maxPlotted {
			s.capped = true
			break
		}
		v, ok := numberAt(queryValue(ctx, dec, &m), path)
		if !ok {
			continue
		}
		col := int(float64(m.TimeNS-s.from) / float64(s.to-s.from) * float64(cols))
		col = min(max(col, 0), cols-1)
		if math.IsNaN(s.lo[col]) || v < s.lo[col] {
			s.lo[col] = v
		}
		if math.IsNaN(s.hi[col]) || v > s.hi[col] {
			s.hi[col] = v
		}
		s.ymin, s.ymax = min(s.ymin, v), max(s.ymax, v)
		s.n++
	}
	return s, nil
}

// numberAt returns the number at a field numericFields listed: a metric's
// value (metric:NAME) or a flattened path of a JSON value.
func numberAt(payload []byte, path string) (float64, bool) {
	if !looksJSON(payload) {
		return 0, false
	}
	if strings.HasPrefix(path, "metric:") {
		var v float64
		found := false
		where.Metrics(jsonDoc(payload), func(name string, value any) bool {
			if where.MetricTerm(name) == path {
				v, found = where.Number(value)
			}
			return !found
		})
		return v, found
	}
	_, values, err := flatten(payload)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(values[path], 64)
	return v, err == nil
}

func (u *UI) plotText(tp, field string, s series, cols int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[yellow]%s[-] [aqua]%s[-]  field %d of %d", tview.Escape(field), tview.Escape(sanitize(tp)),
		u.stats.field+1, len(u.stats.fields))
	if s.n == 0 {
		b.WriteString("\n[gray]no numeric values[-]")
		return b.String()
	}
	fmt.Fprintf(&b, "  [gray]%s values, min %s, max %s", humanize.GroupDigits(int64(s.n)), fmtNum(s.ymin), fmtNum(s.ymax))
	if s.capped {
		fmt.Fprintf(&b, " (first %s messages)", humanize.GroupDigits(maxPlotted))
	}
	b.WriteString("[-]\n")
	lines := brailleChart(s.lo, s.hi, s.ymin, s.ymax, plotHeight)
	labelW := max(len(fmtNum(s.ymax)), len(fmtNum(s.ymin)))
	for i, line := range lines {
		label := ""
		switch i {
		case 0:
			label = fmtNum(s.ymax)
		case len(lines) - 1:
			label = fmtNum(s.ymin)
		}
		fmt.Fprintf(&b, "[gray]%*s[-] [green]%s[-]\n", labelW, label, line)
	}
	a, z := time.Unix(0, s.from).In(u.loc).Format("15:04:05"), time.Unix(0, s.to).In(u.loc).Format("15:04:05")
	fmt.Fprintf(&b, "%*s %s%s%s", labelW, "", a, strings.Repeat(" ", max(1, cols/2-len(a)-len(z))), z)
	return b.String()
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
