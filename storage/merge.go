package storage

import (
	"cmp"
	"container/heap"
	"context"
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
}

// MergeReport says what a Merge wrote.
type MergeReport struct {
	// Messages written; 0 when the inputs have none (nothing is written
	// then) or when Merge fails.
	Messages int64
	// Sessions counts the input sessions merged (those with messages).
	Sessions int
}

// Merge writes the messages of every session of every input into one new
// session of out (source "merge"), ordered by ts_ns; ties keep the inputs'
// order, then seq. Each input session is read in seq order (its times
// never decrease), so this k-way merge holds one message per input session
// in memory. The session is the union of the inputs': the earliest start
// (offsets count from it), the highest protocol, every broker, client id
// and filter once, the sum of the drop counts. Every input session's
// events are kept, in time order, each input session named by a "merged"
// event carrying its input's path. The inputs are only read.
func Merge(ctx context.Context, ins []*Capture, out *Capture, opts MergeOptions) (MergeReport, error) {
	p := newMergePlan(opts)
	defer p.stop()
	for _, c := range ins {
		if err := p.addCapture(ctx, c); err != nil {
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
	return MergeReport{Messages: n, Sessions: p.order}, nil
}

// mergeHead is the next message of one input session.
type mergeHead struct {
	m     Message
	order int // input session order, for ties
	next  func() (Message, error, bool)
	stop  func()
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
}

func newMergePlan(opts MergeOptions) *mergePlan {
	return &mergePlan{
		info:    SessionInfo{Source: "merge", Version: opts.Version, Host: opts.Host, StartedNS: -1},
		filters: map[string]bool{},
	}
}

// stop releases the input sessions still being read.
func (p *mergePlan) stop() {
	for _, x := range p.heads {
		x.stop()
	}
}

// addCapture adds every session of c that has messages.
func (p *mergePlan) addCapture(ctx context.Context, c *Capture) error {
	sessions, err := c.Sessions(ctx)
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if err := p.addSession(ctx, c, s); err != nil {
			return err
		}
	}
	return nil
}

// addSession starts reading session s of c, unless it has no messages, and
// adds its description and events to the merged session's.
func (p *mergePlan) addSession(ctx context.Context, c *Capture, s SessionInfo) error {
	next, stop := iter.Pull2(c.Messages(ctx, Query{Session: s.ID}))
	m, err, ok := next()
	if err != nil {
		stop()
		return err
	}
	if !ok {
		stop()
		return nil // no messages
	}
	heap.Push(&p.heads, &mergeHead{m: m, order: p.order, next: next, stop: stop})
	p.order++
	p.addInfo(s)
	evs, err := c.Events(ctx, s.ID)
	if err != nil {
		return err
	}
	detail, _ := json.Marshal(map[string]any{"input": c.Path(), "session": s.ID, "source": s.Source,
		"broker": s.Broker, "client_id": s.ClientID})
	p.events = append(p.events, Event{TimeNS: s.StartedNS, Kind: "merged", Detail: string(detail)})
	p.events = append(p.events, evs...)
	return nil
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
	if err := w.Add(ctx, m); err != nil {
		return err
	}
	if progress != nil {
		progress.Add(1)
	}
	nm, err, ok := top.next()
	if err != nil {
		return err
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
