package storage

import (
	"cmp"
	"container/heap"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
)

// MergeOptions describes the session a Merge writes.
type MergeOptions struct {
	// Version and Host are stored in the session written.
	Version, Host string
	// Progress, when non-nil, counts the messages as they are written; it
	// may be read concurrently.
	Progress *atomic.Int64
	// InPlace (OpenSet only): the parts of one split recording are read
	// where they are instead of merged into a temporary capture.
	InPlace bool
}

// MergeReport says what a Merge wrote.
type MergeReport struct {
	// Messages written; 0 when the inputs have none (nothing is written
	// then) or when Merge fails.
	Messages int64
	// Sessions counts the input sessions merged (those with messages).
	Sessions int
	// RetainedDuplicates counts the retained-store messages left out
	// because an identical one (topic, QoS, payload, properties) was
	// written already: every recorder of a shared subscription gets the
	// broker's retained store.
	RetainedDuplicates int64
}

// Merge writes the messages of every session of every input into one new
// session of out (source "merge"), ordered by receive time (ts_ns); ties
// go to the input given first (then the earlier session of that input),
// and within one input session its own order (seq) is always kept. Each
// input session is read in seq order (its times never decrease), so this
// k-way merge holds one message per input session in memory. A
// retained-store message identical to one already written (topic, QoS,
// payload, properties) is left out: recorders of one shared subscription
// each get the broker's retained store. The session is the union of the inputs': the earliest start
// (offsets count from it), the highest protocol, every broker, client id
// and filter once, the sum of the drop counts. Every input session's
// events are kept, in time order, each input session named by a "merged"
// event carrying its input's path. The parts of a split recording given
// together count each message once: the retained rows carried into a part
// (PartLink.Carried) are left out when its previous part is an input too.
// The inputs are only read.
func Merge(ctx context.Context, ins []*Capture, out *Capture, opts MergeOptions) (MergeReport, error) {
	for _, c := range ins {
		if c.parts != nil {
			return MergeReport{}, errNotForParts("merge")
		}
	}
	p := newMergePlan(opts)
	defer p.stop()
	skips, err := carriedSkips(ctx, ins)
	if err != nil {
		return MergeReport{}, err
	}
	for i, c := range ins {
		if err := p.addCapture(ctx, c, skips[i]); err != nil {
			return MergeReport{}, err
		}
	}
	if len(p.heads) == 0 {
		return MergeReport{}, nil
	}
	n, err := p.write(ctx, out, opts.Progress)
	if err == nil {
		err = carryDecoders(ctx, ins, out)
	}
	if err != nil {
		return MergeReport{}, err
	}
	return MergeReport{Messages: n, Sessions: p.order, RetainedDuplicates: p.dupes}, nil
}

// mergeHead is the next message of one chain of input sessions.
type mergeHead struct {
	m     Message
	order int // input session order, for ties
	next  func() (Message, error, bool)
	stop  func()
	// rest are the sessions of the same input read after this one: each
	// starts after the one before it ends, so one cursor reads them in
	// turn (a cursor per input session took a connection each).
	rest []mergeInput
	c    *Capture
}

// mergeInput is an input session with messages, the times of its first
// and last message and its order among the inputs.
type mergeInput struct {
	id          int64
	order       int
	first, last int64
	skip        int64 // seq through which the carried retained rows of a part go (0: none)
}

// startNext moves h on to its next session; false when it has none left.
func (h *mergeHead) startNext(ctx context.Context) (bool, error) {
	for len(h.rest) > 0 {
		in := h.rest[0]
		h.rest = h.rest[1:]
		h.stop()
		// A huge payload is left out of the read; AddFrom copies it.
		h.next, h.stop = iter.Pull2(h.c.Messages(ctx, Query{Session: in.id, AfterSeq: in.skip, MaxPayload: bigPayload}))
		h.order = in.order
		m, err, ok := h.next()
		if err != nil {
			return false, err
		}
		if ok {
			h.m = m
			return true, nil
		}
	}
	return false, nil
}

type mergeHeap []*mergeHead

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].m.TimeNS != h[j].m.TimeNS {
		return h[i].m.TimeNS < h[j].m.TimeNS
	}
	if h[i].order != h[j].order {
		return h[i].order < h[j].order
	}
	return h[i].m.Seq < h[j].m.Seq
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*mergeHead)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergePlan gathers the input sessions of a merge: their first messages,
// the union of their descriptions and their events.
type mergePlan struct {
	heads   mergeHeap
	order   int // input sessions with messages so far
	info    SessionInfo
	events  []Event
	brokers []string
	clients []string
	filters map[string]bool
	dropped int64
	stored  map[[32]byte]bool // retained-store messages written (storeKey)
	dupes   int64
}

func newMergePlan(opts MergeOptions) *mergePlan {
	return &mergePlan{
		info:    SessionInfo{Source: "merge", Version: opts.Version, Host: opts.Host, StartedNS: -1},
		filters: map[string]bool{},
		stored:  map[[32]byte]bool{},
	}
}

// storeKey identifies a retained-store message of c by what a subscriber
// gets: topic, QoS, payload and properties (not the subscription
// identifiers). A payload the read left out is hashed as SQLite holds it.
func storeKey(ctx context.Context, c *Capture, m *Message) ([32]byte, error) {
	h := sha256.New()
	h.Write([]byte(m.Topic)) // a topic name has no NUL
	h.Write([]byte{0, m.QoS})
	payload := func(p []byte) error {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
		h.Write(p)
		return nil
	}
	var k [32]byte
	if m.PayloadOmitted {
		if err := c.Payload(ctx, m.Seq, payload); err != nil {
			return k, err
		}
	} else {
		payload(m.Payload)
	}
	if q := m.Props.OfMessage(); q != nil {
		b, _ := json.Marshal(q)
		h.Write(b)
	}
	h.Sum(k[:0])
	return k, nil
}

// stop releases the input sessions still being read.
func (p *mergePlan) stop() {
	for _, x := range p.heads {
		x.stop()
	}
}

// addCapture adds every session of c that has messages, in chains of
// sessions that follow each other in time.
//
// skip gives, per session, the seq through which its rows are left out:
// the retained state carried into a part whose previous part is an input
// too (carriedSkips).
func (p *mergePlan) addCapture(ctx context.Context, c *Capture, skip map[int64]int64) error {
	sessions, err := c.Sessions(ctx)
	if err != nil {
		return err
	}
	events, err := c.Events(ctx, 0)
	if err != nil {
		return err
	}
	bySession := map[int64][]Event{}
	for _, e := range events {
		bySession[e.Session] = append(bySession[e.Session], e)
	}
	var inputs []mergeInput
	for _, s := range sessions {
		first, last, ok, err := c.sessionTimes(ctx, s.ID)
		if err != nil {
			return err
		}
		if !ok {
			continue // no messages
		}
		inputs = append(inputs, mergeInput{id: s.ID, order: p.order, first: first, last: last, skip: skip[s.ID]})
		p.order++
		p.addInfo(s)
		p.events = append(p.events, mergedEvent(c, s))
		p.events = append(p.events, bySession[s.ID]...)
	}
	for _, chain := range chains(inputs) {
		h := &mergeHead{c: c, rest: chain, stop: func() {}}
		ok, err := h.startNext(ctx)
		if err != nil {
			h.stop()
			return err
		}
		if ok {
			heap.Push(&p.heads, h)
		}
	}
	return nil
}

// chains groups input sessions into chains in which each session starts
// after the one before it ends (at the same time only when it also comes
// later in input order), so that reading a chain's sessions one after
// another yields the k-way merge's order. Sessions recorded one after
// another make one chain.
func chains(inputs []mergeInput) [][]mergeInput {
	sorted := slices.Clone(inputs)
	slices.SortFunc(sorted, func(a, b mergeInput) int {
		return cmp.Or(cmp.Compare(a.first, b.first), cmp.Compare(a.order, b.order))
	})
	var out [][]mergeInput
	for _, in := range sorted {
		placed := false
		for i, ch := range out {
			tail := ch[len(ch)-1]
			if tail.last < in.first || (tail.last == in.first && tail.order < in.order) {
				out[i] = append(ch, in)
				placed = true
				break
			}
		}
		if !placed {
			out = append(out, []mergeInput{in})
		}
	}
	return out
}

// addInfo joins s's description to the merged session's.
func (p *mergePlan) addInfo(s SessionInfo) {
	if p.info.StartedNS < 0 || s.StartedNS < p.info.StartedNS {
		p.info.StartedNS = s.StartedNS
	}
	p.info.Protocol = max(p.info.Protocol, s.Protocol)
	p.brokers = appendUnique(p.brokers, s.Broker)
	p.clients = appendUnique(p.clients, s.ClientID)
	p.info.Broker, p.info.ClientID = strings.Join(p.brokers, " "), strings.Join(p.clients, " ")
	for _, f := range s.Filters {
		if !p.filters[f.Filter] {
			p.filters[f.Filter] = true
			p.info.Filters = append(p.info.Filters, f)
		}
	}
	p.dropped += s.Dropped
}

// appendUnique appends s to list unless it is empty or already there.
func appendUnique(list []string, s string) []string {
	if s != "" && !slices.Contains(list, s) {
		list = append(list, s)
	}
	return list
}

// write writes the merged session into out: its events in time order
// (stable), then the messages, always the earliest head next.
func (p *mergePlan) write(ctx context.Context, out *Capture, progress *atomic.Int64) (int64, error) {
	w := NewSessionWriter(out, p.info)
	w.Dropped = p.dropped
	if err := w.StartSession(ctx, p.info.StartedNS, "merge", nil); err != nil {
		return 0, err
	}
	slices.SortStableFunc(p.events, func(a, b Event) int { return cmp.Compare(a.TimeNS, b.TimeNS) })
	for _, e := range p.events {
		e.OffsetNS = max(e.TimeNS-p.info.StartedNS, 0)
		if err := w.Event(ctx, e); err != nil {
			return 0, err
		}
	}
	for len(p.heads) > 0 {
		if err := p.writeNext(ctx, w, progress); err != nil {
			return 0, err
		}
	}
	if err := w.EndSession(ctx, "merge"); err != nil {
		return 0, err
	}
	return w.Messages, nil
}

// writeNext writes the earliest head's message and moves that input
// session on to its next message (or drops it when it has no more).
func (p *mergePlan) writeNext(ctx context.Context, w *SessionWriter, progress *atomic.Int64) error {
	top := p.heads[0]
	m := top.m
	m.OffsetNS = max(m.TimeNS-p.info.StartedNS, 0)
	dup := false
	if m.FromStore {
		k, err := storeKey(ctx, top.c, &m)
		if err != nil {
			return err
		}
		dup = p.stored[k]
		p.stored[k] = true
	}
	if dup {
		p.dupes++
	} else if err := w.AddFrom(ctx, m, top.c); err != nil {
		return err
	}
	if progress != nil && !dup {
		progress.Add(1)
	}
	nm, err, ok := top.next()
	if err != nil {
		return err
	}
	if !ok {
		if ok, err = top.startNext(ctx); err != nil {
			return err
		}
		nm = top.m
	}
	if ok {
		top.m = nm
		heap.Fix(&p.heads, 0)
	} else {
		top.stop()
		heap.Pop(&p.heads)
	}
	return nil
}
