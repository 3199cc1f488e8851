package inspector

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

// statsRows returns the statistics table as lines of cells joined by "|".
func (h *harness) statsRows() []string {
	h.t.Helper()
	var rows []string
	h.state(func(u *UI) {
		t := u.stats.table
		for r := range t.GetRowCount() {
			var cells []string
			for c := range t.GetColumnCount() {
				if cell := t.GetCell(r, c); cell != nil {
					cells = append(cells, cell.Text)
				}
			}
			rows = append(rows, strings.TrimRight(strings.Join(cells, "|"), "|"))
		}
	})
	return rows
}

// TestStatsFollowFilter: the statistics page describes what the filter
// selects, its first row included, and AVG/s is info's: messages per second
// of recording, so a topic with one message in a 20 s session has 0.05/s.
func TestStatsFollowFilter(t *testing.T) {
	var msgs []storage.Message
	for i := range 10 {
		msgs = append(msgs, msg(time.Duration(i)*time.Second, "plant/a", 1, `{"v":1}`))
	}
	for i := range 4 {
		msgs = append(msgs, msg(time.Duration(i)*time.Second+time.Second/2, "plant/b", 0, `{"v":2}`))
	}
	msgs = append(msgs, msg(12*time.Second, "once", 0, "x"))
	slices.SortStableFunc(msgs, func(a, b storage.Message) int { return cmp.Compare(a.OffsetNS, b.OffsetNS) })
	for i := range msgs {
		msgs[i].TimeNS = t0 + msgs[i].OffsetNS
	}
	path := t.TempDir() + "/stats.db"
	capturetest.Write(t, path, capturetest.Session{Info: storage.SessionInfo{StartedNS: t0}, Messages: msgs, EndNS: t0 + int64(20*time.Second)})
	h := start(t, path, Options{}, 120, 40)

	h.press('s')
	want := []string{
		"TOPIC|COUNT|BYTES|AVG/s|PEAK/s|FIRST|LAST",
		"all 3 topics|15|99|0.75|2|10:00:00.000|10:00:12.000",
		"plant/a|10|70|0.50|1|10:00:00.000|10:00:09.000",
		"plant/b|4|28|0.20|1|10:00:00.500|10:00:03.500",
		"once|1|1|0.05|1|10:00:12.000|10:00:12.000",
	}
	if got := h.statsRows(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("unfiltered statistics:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A topic filter, then one on QoS and time: the first row and the topics
	// are what the filter selects; the 5 s window is the time base.
	for _, tt := range []struct {
		filter string
		want   []string
	}{
		{"plant/#", []string{
			"the filter's 2 topics|14|98|0.70|2|10:00:00.000|10:00:09.000",
			"plant/a|10|70|0.50|1|10:00:00.000|10:00:09.000",
			"plant/b|4|28|0.20|1|10:00:00.500|10:00:03.500"}},
		{"qos>=1 2s..7s", []string{
			"the filter's 1 topic|5|35|1.00|1|10:00:02.000|10:00:06.000",
			"plant/a|5|35|1.00|1|10:00:02.000|10:00:06.000"}},
		{"nothing/here", []string{"no messages match the filter"}},
	} {
		h.press('s', '/', tcell.KeyCtrlU, tt.filter, tcell.KeyEnter, 's')
		got := h.statsRows()[1:]
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("filter %q:\n%s\nwant\n%s", tt.filter, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

// TestStatsShowCountsFirst: the statistics page shows the topic tree's
// per-topic counts at once (no filter, or a topic filter) and fills in the
// other columns when the pass over the capture ends (seconds on 10 million
// messages). The first state is read on the UI goroutine right after s, so
// the pass cannot have handed over yet.
func TestStatsShowCountsFirst(t *testing.T) {
	h := start(t, fixture(t), Options{}, 120, 40)
	for _, filter := range []string{"", "status/#"} {
		if filter != "" {
			h.press('/', tcell.KeyCtrlU, filter, tcell.KeyEnter)
		}
		var first []string
		var title string
		h.state(func(u *UI) {
			u.toggleStats()
			title = u.stats.table.GetTitle()
			tb := u.stats.table
			for r := range tb.GetRowCount() {
				var cells []string
				for c := range tb.GetColumnCount() {
					cells = append(cells, tb.GetCell(r, c).Text)
				}
				first = append(first, strings.Join(cells, "|"))
			}
		})
		h.settle()
		final := h.statsRows()
		if len(first) != len(final) || len(first) < 3 || !strings.Contains(title, "computing bytes, rates and times") {
			t.Fatalf("filter %q: first table (title %q):\n%s\nfinal:\n%s", filter, title, strings.Join(first, "\n"), strings.Join(final, "\n"))
		}
		for i := 1; i < len(first); i++ { // the topic and the count are final; the rest is "…"
			a, b := strings.Split(first[i], "|"), strings.Split(final[i], "|")
			if a[0] != b[0] || a[1] != b[1] || a[2] != "…" || a[6] != "…" {
				t.Errorf("filter %q row %d: first %q, final %q", filter, i, first[i], final[i])
			}
		}
		h.press('s')
	}
}
