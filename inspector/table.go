package inspector

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/mqtape/mqtape/filter"
	"github.com/mqtape/mqtape/storage"
)

// Table columns.
const (
	colSeq = iota
	colTime
	colTopic
	colQoS
	colR
	colSize
	colPayload
	numCols
)

var colTitles = [numCols]string{"SEQ", "TIME", "TOPIC", "Q", "R", "SIZE", "PAYLOAD"}

// tableContent is the message table's virtual content: row 0 is the header,
// row i the model's row i-1, read from the model's page cache.
type tableContent struct {
	tview.TableContentReadOnly
	u *UI
}

func (t *tableContent) GetRowCount() int    { return int(t.u.m.total) + 1 }
func (t *tableContent) GetColumnCount() int { return numCols }

func (t *tableContent) GetCell(row, col int) *tview.TableCell {
	if col < 0 || col >= numCols {
		return nil
	}
	if row == 0 {
		c := tview.NewTableCell(colTitles[col]).SetSelectable(false).SetTextColor(tcell.ColorYellow).
			SetAttributes(tcell.AttrBold)
		if col == colSeq || col == colSize {
			c.SetAlign(tview.AlignRight)
		}
		if col == colTime && t.u.relTime {
			c.SetText("OFFSET")
		}
		if col == colPayload {
			c.SetExpansion(1)
		}
		return c
	}
	m := t.u.m.rowAt(t.u.ctx, int64(row-1))
	if m == nil {
		return tview.NewTableCell("")
	}
	if col == colPayload {
		if s, ok := t.u.m.decodedAt(t.u.ctx, int64(row-1)); ok {
			return tview.NewTableCell(tview.Escape(sanitize(s))).SetExpansion(1).SetTextColor(tcell.ColorLightGreen)
		}
	}
	return t.u.cell(m, col)
}

// cell renders one field of a row.
func (u *UI) cell(m *storage.Row, col int) *tview.TableCell {
	var c *tview.TableCell
	switch col {
	case colSeq:
		c = tview.NewTableCell(strconv.FormatInt(m.Seq, 10)).SetAlign(tview.AlignRight).SetTextColor(tcell.ColorGray)
	case colTime:
		c = tview.NewTableCell(u.fmtTime(m.TimeNS, m.OffsetNS))
	case colTopic:
		c = tview.NewTableCell(tview.Escape(sanitize(m.Topic))).SetMaxWidth(48).SetTextColor(tcell.ColorAqua)
	case colQoS:
		c = tview.NewTableCell(strconv.Itoa(int(m.QoS)))
	case colR:
		s := retainMark(m.Retain, m.FromStore)
		c = tview.NewTableCell(s).SetTextColor(tcell.ColorYellow)
	case colSize:
		c = tview.NewTableCell(humanSize(m.Size)).SetAlign(tview.AlignRight)
	default:
		c = tview.NewTableCell(tview.Escape(previewText(m.Preview, m.Size))).SetExpansion(1)
	}
	return c
}

// fmtTime formats a message time as the time column shows it.
func (u *UI) fmtTime(ts, offset int64) string {
	if u.relTime {
		return fmtOffset(time.Duration(offset))
	}
	layout := "15:04:05.000"
	if u.multiDay {
		layout = "01-02 15:04:05.000"
	}
	return time.Unix(0, ts).In(u.loc).Format(layout)
}

// selectedRow returns the model row selected in the table (-1 for none).
func (u *UI) selectedRow() int64 {
	row, _ := u.table.GetSelection()
	if u.m.total == 0 || row < 1 {
		return -1
	}
	return min(int64(row-1), u.m.total-1)
}

// selected returns the selected row's summary.
func (u *UI) selected() *storage.Row {
	r := u.selectedRow()
	if r < 0 {
		return nil
	}
	return u.m.rowAt(u.ctx, r)
}

// visibleRows is how many message rows fit in the table.
func (u *UI) visibleRows() int64 {
	_, _, _, h := u.table.GetInnerRect()
	return int64(max(1, h-1))
}

// selectRow selects model row r (clamped); center scrolls it to the middle
// when it is off screen.
func (u *UI) selectRow(r int64, center bool) {
	if u.m.total == 0 {
		u.table.Select(0, 0)
		return
	}
	r = min(max(r, 0), u.m.total-1)
	if center {
		off, _ := u.table.GetOffset()
		if h := u.visibleRows(); r < int64(off) || r >= int64(off)+h {
			u.table.SetOffset(int(max(0, r-h/2)), 0)
		}
	}
	if u.follow && r != u.m.total-1 {
		u.follow = false
	}
	u.table.Select(int(r)+1, 0)
}

func (u *UI) moveBy(d int64) {
	r := u.selectedRow()
	u.selectRow(r+d, false)
}

func (u *UI) pageDown() { u.moveBy(u.visibleRows()) }
func (u *UI) pageUp()   { u.moveBy(-u.visibleRows()) }
func (u *UI) home()     { u.selectRow(0, false) }
func (u *UI) end()      { u.selectRow(u.m.total-1, false) }

// onSelect shows the selected message in the detail pane.
func (u *UI) onSelect(row int) {
	u.showDetail()
	u.statusTV.SetText(u.statusText())
}

// showDetail renders the selected message in the detail pane.
func (u *UI) showDetail() {
	sel := u.selected()
	if sel == nil {
		u.detailSeq = 0
		switch {
		case u.m.total > 0:
			u.detail.SetText("")
		case u.filter.Empty():
			u.detail.SetText("[gray]no messages[-]")
		default:
			u.detail.SetText("[gray]no messages match the filter[-]")
		}
		return
	}
	m, err := u.c.Get(u.ctx, sel.Seq)
	if err != nil {
		u.detail.SetText("[red]" + tview.Escape(err.Error()) + "[-]")
		return
	}
	var b strings.Builder
	t := time.Unix(0, m.TimeNS).In(u.loc)
	fmt.Fprintf(&b, "[yellow]seq[-] %d  [yellow]session[-] %d  [yellow]time[-] %s %s (%s)\n", m.Seq, m.Session,
		t.Format("2006-01-02 15:04:05.000000"), zoneName(t), fmtOffset(m.Offset()))
	fmt.Fprintf(&b, "[yellow]topic[-] [aqua]%s[-]\n", tview.Escape(sanitize(m.Topic)))
	fmt.Fprintf(&b, "[yellow]qos[-] %d  [yellow]retain[-] %v  [yellow]from store[-] %v  [yellow]dup[-] %v  [yellow]packet id[-] %d  [yellow]size[-] %d B",
		m.QoS, m.Retain, m.FromStore, m.Dup, m.PacketID, len(m.Payload))
	if m.ClientID != "" {
		fmt.Fprintf(&b, "\n[yellow]publisher[-] %s", tview.Escape(sanitize(m.ClientID)))
	}
	var props strings.Builder
	if m.Props != nil && !m.Props.IsEmpty() {
		props.WriteString("\n[yellow]MQTT 5 properties[-]")
		for _, l := range propertyLines(m.Props) {
			key, value, _ := strings.Cut(l, "\t")
			fmt.Fprintf(&props, "\n  [yellow]%s[-] %s", tview.Escape(key), tview.Escape(value))
		}
	}
	if u.diff {
		b.WriteString(props.String() + "\n")
		u.writeDiff(&b, &m)
	} else {
		text, label, decoded := u.decodedView(&m)
		if !decoded {
			var used viewMode
			text, used = renderPayload(m.Payload, u.view)
			label = used.String()
			if u.view == viewAuto {
				label += " (auto)"
			}
		}
		fmt.Fprintf(&b, "  [yellow]view[-] %s%s\n[gray]%s[-]\n", label, props.String(), strings.Repeat("─", 40))
		b.WriteString(tview.Escape(text))
	}
	u.detail.SetText(b.String())
	if m.Seq != u.detailSeq {
		u.detail.ScrollToBeginning()
	}
	u.detailSeq = m.Seq
}

func (u *UI) writeDiff(b *strings.Builder, m *storage.Message) {
	ctx, cancel := context.WithTimeout(u.ctx, 2*time.Second)
	defer cancel()
	prev, ok, err := u.c.PrevOnTopic(ctx, m.Seq, m.Topic)
	switch {
	case err != nil:
		fmt.Fprintf(b, "[red]%s[-]\n", tview.Escape(err.Error()))
		return
	case !ok:
		fmt.Fprintf(b, "[yellow]diff[-] no earlier message on this topic\n")
		return
	}
	fmt.Fprintf(b, "[yellow]diff[-] to seq %d, %s earlier  ([green]+[-] added  [red]-[-] removed  [aqua]~[-] changed)\n[gray]%s[-]\n",
		prev.Seq, fmtSpan(time.Duration(m.TimeNS-prev.TimeNS)), strings.Repeat("─", 40))
	for _, line := range strings.SplitAfter(diffPayloads(prev.Payload, m.Payload), "\n") {
		color := ""
		switch {
		case strings.HasPrefix(line, "+ "):
			color = "green"
		case strings.HasPrefix(line, "- "):
			color = "red"
		case strings.HasPrefix(line, "~ "):
			color = "aqua"
		}
		if color != "" {
			fmt.Fprintf(b, "[%s]%s[-]", color, tview.Escape(line))
		} else {
			b.WriteString(tview.Escape(line))
		}
	}
}

func (u *UI) cycleView() {
	u.view = (u.view + 1) % viewCount
	u.diff = false
	u.showDetail()
	u.say("payload view: %s", u.view)
}

func (u *UI) toggleDiff() {
	u.diff = !u.diff
	u.showDetail()
}

func (u *UI) toggleRelTime() {
	u.relTime = !u.relTime
	if u.relTime {
		u.say("times are offsets into each session")
	} else {
		u.say("times are clock times (%s)", u.loc)
	}
}

func (u *UI) toggleFollow() {
	u.follow = !u.follow
	if u.follow {
		u.end()
		u.follow = true
	}
}

func (u *UI) focusDetail() { u.app.SetFocus(u.detail) }

// focusNext cycles the focus through the visible panes.
func (u *UI) focusNext() {
	if u.statsShown {
		u.stats.focusNext(u.app)
		return
	}
	order := []tview.Primitive{u.table, u.detail}
	if u.treeShown {
		order = append(order, u.tree.view)
	}
	cur := u.app.GetFocus()
	for i, p := range order {
		if p == cur {
			u.app.SetFocus(order[(i+1)%len(order)])
			return
		}
	}
	u.app.SetFocus(u.table)
}

func (u *UI) toggleTree() {
	if u.statsShown {
		u.toggleStats() // back to the messages, where the tree lives
		if u.treeShown {
			u.app.SetFocus(u.tree.view)
			return
		}
	}
	u.treeShown = !u.treeShown
	if u.treeShown {
		u.browse.Clear().AddItem(u.tree.view, 0, 1, true).AddItem(u.browseRight(), 0, 3, false)
		u.app.SetFocus(u.tree.view)
		if !u.trieReady {
			u.say("counting topics…")
		}
	} else {
		u.browse.Clear().AddItem(u.browseRight(), 0, 1, true)
		u.app.SetFocus(u.table)
	}
}

// browseRight is the table-and-detail column.
func (u *UI) browseRight() tview.Primitive {
	return tview.NewFlex().SetDirection(tview.FlexRow).AddItem(u.table, 0, 3, true).AddItem(u.detail, 0, 2, false)
}

// treeChoose filters to the current tree node's subtree.
func (u *UI) treeChoose() {
	if err := u.applyFilter(u.replaceTopicTerms(u.filter.Text, u.tree.selectedFilter())); err != nil {
		u.fail(err)
	}
}

// replaceTopicTerms swaps the topic filters of a query for one ("" for none),
// keeping its other terms.
func (u *UI) replaceTopicTerms(query, topicFilter string) string {
	return filter.ReplaceTopicTerms(query, topicFilter, u.filterEnv())
}

func (u *UI) toggleHelp() {
	u.helpShown = !u.helpShown
	if u.helpShown {
		u.root.ShowPage("help")
		u.app.SetFocus(u.help)
	} else {
		u.root.HidePage("help")
		u.restoreFocus()
	}
}

func (u *UI) restoreFocus() {
	switch {
	case u.statsShown:
		u.app.SetFocus(u.stats.table)
	case u.treeShown && u.app.GetFocus() == u.tree.view:
	default:
		u.app.SetFocus(u.table)
	}
}

func (u *UI) escape() {
	if u.jobCancel != nil {
		u.jobCancel()
		u.say("cancelling %s…", u.job)
		return
	}
	u.status = ""
	if u.app.GetFocus() != u.table && !u.statsShown {
		u.app.SetFocus(u.table)
	}
}

// retainMark is the R column: "R" for a message the broker sent from its
// retained store, "r" for one published with the retain flag (seen live:
// serve captures and MQTT 5 captures show the publisher's flag).
func retainMark(retain, fromStore bool) string {
	switch {
	case fromStore:
		return "R"
	case retain:
		return "r"
	}
	return " "
}
