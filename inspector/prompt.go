package inspector

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/mqtape/mqtape/filter"
	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

// ask opens the prompt line. done gets the text on Enter: an error keeps
// the prompt open and shows it; nil closes it. esc runs on Esc (nil: just
// close).
func (u *UI) ask(label, text string, done func(string) error, esc func()) {
	// Only text and label here: ask may run inside the prompt's own done
	// func, where the InputField holds its autocomplete lock.
	u.prompt.SetLabel(label + " ").SetText(text)
	u.completer = nil
	u.promptDone, u.promptEsc = done, esc
	u.promptSeq++
	u.bottom.SwitchToPage("prompt")
	u.app.SetFocus(u.prompt)
}

func (u *UI) closePrompt() {
	u.promptDone, u.promptEsc, u.completer = nil, nil, nil
	u.bottom.SwitchToPage("keys")
	u.restoreFocus()
}

// promptKey is the prompt's done func. Enter and Esc normally arrive via
// promptCapture instead; this handles what reaches the field itself (Esc
// after a completion list closed on its own).
func (u *UI) promptKey(key tcell.Key) {
	switch key {
	case tcell.KeyEnter:
		u.submitPrompt()
	case tcell.KeyEscape:
		u.cancelPrompt()
	}
}

// promptCapture takes Enter and Esc before the input field sees them, so
// Enter always applies the line (Tab or the arrows pick a completion) and
// the handlers may reopen the prompt: inside the field's own callbacks its
// autocomplete lock is held.
func (u *UI) promptCapture(ev *tcell.EventKey) *tcell.EventKey {
	switch ev.Key() {
	case tcell.KeyEnter:
		u.submitPrompt()
		u.closeCompletions()
		return nil
	case tcell.KeyEscape:
		if u.completionsShown {
			u.completionsShown = false
			return ev // the field closes its completion list
		}
		u.cancelPrompt()
		u.closeCompletions()
		return nil
	}
	return ev
}

// closeCompletions drops a completion list left open (never call it from
// the field's own callbacks).
func (u *UI) closeCompletions() {
	if u.app.GetFocus() == u.prompt {
		return // still editing: an error kept the line open
	}
	u.completionsShown = false
	u.prompt.Autocomplete() // closePrompt removed the completer: no entries, no list
}

func (u *UI) submitPrompt() {
	if u.promptDone == nil {
		u.closePrompt()
		return
	}
	done, seq := u.promptDone, u.promptSeq
	if err := done(u.prompt.GetText()); err != nil {
		u.fail(err)
		return
	}
	if u.promptSeq == seq { // done did not open the next prompt
		u.closePrompt()
	}
}

func (u *UI) cancelPrompt() {
	esc := u.promptEsc
	u.closePrompt()
	if esc != nil {
		esc()
	}
}

func (u *UI) filterEnv() filterEnv {
	env := filterEnv{IsTopic: func(s string) bool { return u.topicNames[s] }, Start: time.Unix(0, u.firstNS), Loc: u.loc}
	if dec := u.opts.Decode; dec != nil {
		ctx := u.ctx
		env.Values = func(m *storage.Message) []byte { return queryValue(ctx, dec, m) }
	}
	return env
}

// openFilter opens the / line with the current filter.
func (u *UI) openFilter() {
	u.say("%s", "filter: topics (a/+/b, x/#), payload~REGEX, TEXT, qos>=1, retained, 1m..2m; ? for help")
	u.ask("/", u.filter.Text, u.applyFilter, func() {
		if !u.filter.Empty() {
			if err := u.applyFilter(""); err != nil {
				u.fail(err)
			}
			u.say("filter cleared")
		} else {
			u.status = ""
		}
	})
	u.completer = u.completeTopic
}

// completeTopic proposes topic levels for the last term of the filter line.
func (u *UI) completeTopic(text string) (out []string) {
	defer func() { u.completionsShown = len(out) > 0 }()
	i := strings.LastIndexAny(text, " \t")
	head, last := text[:i+1], text[i+1:]
	if last == "" || strings.ContainsAny(last, ":~=<>\"") || strings.HasPrefix(last, "!") {
		return nil
	}
	seen := map[string]bool{}
	for _, t := range u.topics {
		if !strings.HasPrefix(t.Name, last) {
			continue
		}
		// Complete up to the end of the next level.
		rest := t.Name[len(last):]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			rest = rest[:j+1]
		}
		cand := head + last + rest
		if !seen[cand] {
			seen[cand] = true
			out = append(out, cand)
		}
		if len(out) >= 12 {
			break
		}
	}
	sort.Strings(out)
	if len(out) == 1 && out[0] == text {
		return nil
	}
	return out
}

// applyFilter parses a query and, when valid, counts its matches in the
// background and then shows them, keeping the selection on the same message
// or the next one that matches.
func (u *UI) applyFilter(text string) error {
	f, err := parseFilter(text, u.filterEnv())
	if err != nil {
		return err
	}
	q, err := u.prepare(u.ctx, &f)
	if err != nil {
		return err
	}
	if u.filterJob != nil {
		u.filterJob()
	}
	ctx, cancel := context.WithCancel(u.ctx)
	u.filterJob = cancel
	u.filter = f
	u.counting = "counting"
	if f.HasPayload() {
		u.counting = "searching payloads"
	}
	keep := int64(0)
	if sel := u.selected(); sel != nil {
		keep = sel.Seq
	}
	v := viewJob{c: u.c, q: q, payload: f.HasPayload(), empty: f.Empty(), horizon: u.m.horizon, lo: u.lo,
		gapless: u.gapless, keep: keep}
	wait := u.waitRank(&f)
	u.spawnCtx(ctx, func(ctx context.Context) {
		m, row, err := wait(ctx, v)
		if ctx.Err() != nil {
			return // superseded
		}
		u.post(func() {
			if ctx.Err() != nil {
				return
			}
			u.counting = ""
			u.filterJob = nil
			if err != nil {
				u.fail(fmt.Errorf("filter: %w", err))
				return
			}
			u.install(m, row)
			if u.status == "" || !u.statusErr {
				u.say("%s", humanize.Count(m.total, "match", "matches"))
			}
		})
	})
	return nil
}

// viewJob is what a filter job needs to build its model (off the UI
// goroutine).
type viewJob struct {
	c              *storage.Capture
	q              query
	payload, empty bool
	horizon, lo    int64
	gapless        bool
	keep           int64 // the selected seq to stay on (0: none)
}

// build counts the model and the row of the first match at or after keep.
func (v viewJob) build(ctx context.Context) (m *model, row int64, err error) {
	if v.empty && v.gapless {
		m = newContiguousModel(v.c, v.q.p, v.lo, v.horizon)
	} else if m, err = buildModel(ctx, v.c, v.q, v.payload, v.horizon); err != nil {
		return nil, 0, err
	}
	if v.keep <= 0 {
		return m, 0, nil
	}
	row, at, ok := m.locate(v.keep)
	if ok {
		return m, row, nil
	}
	row, at, found, err := countRow(ctx, v.q, v.horizon, v.keep)
	if !found {
		return m, m.total - 1, err
	}
	m.addAnchor(anchor{row, at})
	return m, row, err
}

// waitRank returns how a filter job builds its model. A topic filter
// applied while the topic count runs (inspect --filter, or typed at once)
// counts as before and, at the same time, waits for the rank index: the
// first to finish wins, so a small topic shows at once and a wildcard over
// most of the capture is ranked, never counted, once the index is in.
func (u *UI) waitRank(f *Filter) func(ctx context.Context, v viewJob) (*model, int64, error) {
	done := u.rankDone
	plain := func(ctx context.Context, v viewJob) (*model, int64, error) { return v.build(ctx) }
	select {
	case <-done:
		return plain
	default:
	}
	if !f.TopicOnly() {
		return plain
	}
	ids := f.Query(u.topics).TopicIDs
	return func(ctx context.Context, v viewJob) (*model, int64, error) {
		type result struct {
			m   *model
			row int64
			err error
		}
		counted := make(chan result, 1)
		countCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			m, row, err := v.build(countCtx)
			counted <- result{m, row, err}
		}()
		select {
		case r := <-counted:
			return r.m, r.row, r.err
		case <-ctx.Done():
			<-counted // stopped by ctx too
			return nil, 0, ctx.Err()
		case <-done:
		}
		// u.rank was set before done was closed and never changes after.
		if u.rank == nil {
			r := <-counted
			return r.m, r.row, r.err
		}
		cancel()
		<-counted // stopped: nothing reads the capture behind the UI's back
		v.q.rank = &ranked{r: u.rank, ids: ids}
		return v.build(ctx)
	}
}

// prepare resolves a filter into a query, ranked by the rank index when
// the filter is by topic alone and the index is in.
func (u *UI) prepare(ctx context.Context, f *Filter) (query, error) {
	sel := f.Query(u.topics)
	p, err := u.c.Prepare(ctx, sel)
	if err != nil {
		return query{}, err
	}
	q := query{p: p}
	if f.TopicOnly() && u.rank != nil {
		q.rank = &ranked{r: u.rank, ids: sel.TopicIDs}
	}
	return q, nil
}

// install makes m the table's model and selects a row.
func (u *UI) install(m *model, row int64) {
	u.m = m
	u.decodeColumn(m)
	u.gen++
	u.publishSnap()
	u.table.SetOffset(0, 0)
	if u.follow {
		u.end()
		u.follow = true
	} else {
		u.selectRow(row, true)
	}
	u.stats.invalidate()
	if u.statsShown {
		u.loadStats()
	}
}

// openJump opens the : line.
func (u *UI) openJump() {
	u.say("jump: 1m30s (offset into the session), 10:05:30 (clock), 2026-11-26T10:05:00Z, +30s/-30s, #seq")
	u.ask(":", "", u.jump, nil)
}

var seqRE = regexp.MustCompile(`^#?([0-9]+)$`)

// jump resolves a jump target to a seq and selects the first message at or
// after it that the filter selects.
func (u *UI) jump(text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	cur := u.selected()
	var target func(ctx context.Context) (int64, error)
	describe := text
	switch {
	case seqRE.MatchString(text):
		n, err := strconv.ParseInt(seqRE.FindStringSubmatch(text)[1], 10, 64)
		if err != nil {
			return fmt.Errorf("jump %q: %v", text, err)
		}
		target = func(context.Context) (int64, error) { return n, nil }
		describe = "seq " + strconv.FormatInt(n, 10)
	case strings.HasPrefix(text, "+") || strings.HasPrefix(text, "-"):
		d, err := time.ParseDuration(strings.TrimPrefix(text, "+"))
		if err != nil {
			return fmt.Errorf("jump %q: use +30s or -1m for a time relative to the selected message", text)
		}
		if cur == nil {
			return errors.New("jump: no message selected")
		}
		ts := cur.TimeNS + int64(d)
		target = func(ctx context.Context) (int64, error) { return u.c.SeqAtTime(ctx, ts) }
	default:
		p, err := filter.ParsePoint(text, u.filterEnv())
		if err != nil {
			return fmt.Errorf("jump: %w", err)
		}
		if p.Absolute {
			ts := p.Time.UnixNano()
			target = func(ctx context.Context) (int64, error) { return u.c.SeqAtTime(ctx, ts) }
		} else {
			session := int64(0)
			if cur != nil {
				session = cur.Session
			}
			off := int64(p.Offset)
			target = func(ctx context.Context) (int64, error) { return u.c.SeqAtOffset(ctx, session, off) }
			describe = "+" + p.Offset.String() + " into the session"
		}
	}
	gen := u.gen
	u.counting = "jumping"
	u.spawn(func(ctx context.Context) {
		seq, err := target(ctx)
		u.post(func() {
			if err != nil {
				u.counting = ""
				u.fail(fmt.Errorf("jump: %w", err))
				return
			}
			u.jumpTo(seq, describe, gen)
		})
	})
	return nil
}

// jumpTo selects the first message at or after seq (0: none) that the view
// shows, counting its row in the background when the model needs that.
func (u *UI) jumpTo(seq int64, describe string, gen int64) {
	done := func(row, at int64, found bool, err error) {
		u.counting = ""
		switch {
		case err != nil:
			u.fail(fmt.Errorf("jump: %w", err))
		case gen != u.gen:
			u.fail(errors.New("jump: the view changed; jump again"))
		case !found:
			u.end()
			u.say("nothing at or after %s; showing the last message", describe)
		default:
			if u.m.mode == modeAnchored {
				u.m.addAnchor(anchor{row, at})
			}
			u.selectRow(row, true)
			u.say("%s", jumpedText(describe, seq, at))
		}
	}
	if seq <= 0 || gen != u.gen {
		done(0, 0, false, nil)
		return
	}
	if row, at, ok := u.m.locate(seq); ok {
		done(row, at, row < u.m.total, nil)
		return
	}
	q, horizon := u.m.q, u.m.horizon
	u.spawn(func(ctx context.Context) {
		row, at, found, err := countRow(ctx, q, horizon, seq)
		u.post(func() { done(row, at, found, err) })
	})
}

// jumpedText reports a jump to the message at seq at, asked for as describe
// (resolved to seq target): "jumped to seq 35", "jumped to 10:05:30: seq 812",
// or, when the view does not show the seq asked for, the one it went to.
func jumpedText(describe string, target, at int64) string {
	asked := "seq " + strconv.FormatInt(target, 10)
	switch {
	case describe == asked && at == target:
		return "jumped to " + asked
	case describe == asked:
		return fmt.Sprintf("jumped to seq %d, the first at or after %s in the view", at, asked)
	}
	return fmt.Sprintf("jumped to %s: seq %d", describe, at)
}

// liveSnap is what the poller needs to know about the view (shared under
// UI.liveMu: the poller runs off the UI goroutine).
type liveSnap struct {
	gen         int64
	mode        modelMode
	horizon     int64
	filter      Filter
	trieHorizon int64
	trieReady   bool
}

// publishSnap shares the view state with the poller (UI goroutine).
func (u *UI) publishSnap() {
	u.liveMu.Lock()
	u.live = liveSnap{gen: u.gen, mode: u.m.mode, horizon: u.m.horizon, filter: u.filter, trieHorizon: u.trieHorizon,
		trieReady: u.trieReady}
	u.liveMu.Unlock()
}

func (u *UI) snapshot() liveSnap {
	u.liveMu.Lock()
	defer u.liveMu.Unlock()
	return u.live
}

// countTopics counts messages per topic for the tree and the rank index
// (reading only the topic index) and checks that the seqs have no gaps.
func (u *UI) countTopics() {
	lo, hi, topics := u.lo, u.hi, u.topics
	u.spawn(func(ctx context.Context) {
		if hi == 0 {
			u.post(func() {
				u.topicCounts = map[int64]int64{}
				u.setTrie(newTopicTrie(), 0, true)
				close(u.rankDone)
			})
			return
		}
		buckets, err := u.c.TopicBuckets(ctx, 0, hi, rankShift)
		if err != nil {
			u.post(func() { u.fail(err); close(u.rankDone) })
			return
		}
		rank := newRankIndex(buckets, hi, rankShift)
		counts := rank.totals()
		trie := newTopicTrie()
		var sum int64
		for _, t := range topics {
			trie.add(t.Name, counts[t.ID])
			sum += counts[t.ID]
		}
		u.post(func() {
			u.topicCounts, u.rank = counts, rank
			close(u.rankDone)
			u.setTrie(trie, hi, sum == hi-lo+1)
		})
	})
}

// setTrie installs topic counts up to horizon; gapless false switches the
// unfiltered view to counting.
func (u *UI) setTrie(trie *topicTrie, horizon int64, gapless bool) {
	u.tree.rebuild(trie, true)
	u.trieHorizon, u.trieReady = horizon, true
	if !gapless && u.gapless {
		u.gapless = false
		if u.filter.Empty() {
			if err := u.applyFilter(""); err != nil {
				u.fail(err)
			}
		}
	}
	if u.status == "counting topics…" {
		u.status = ""
	}
	u.publishSnap()
}
