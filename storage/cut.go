package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
)

// CutOptions selects the slice a Cut copies and describes the sessions it
// writes.
type CutOptions struct {
	// Select is the slice: Session (0: every session), FromOffset or
	// FromTime, ToOffset or ToTime ([from, to)), and Match for topics.
	Select Query
	// Version and Host are stored in the sessions written.
	Version, Host string
	// Progress, when non-nil, counts the slice's messages as they are
	// copied (carried retained messages not included); it may be read
	// concurrently.
	Progress *atomic.Int64
}

// CutReport says what a Cut wrote.
type CutReport struct {
	// Messages written, the carried retained messages included. It is 0
	// when Cut fails before its last session was ended.
	Messages int64
	// Carried counts the retained messages carried to a slice's start.
	Carried int64
	// Sessions counts the sessions written (input sessions with messages
	// in the slice).
	Sessions int
}

// Cut copies the slice opts.Select of every session of in into new
// sessions of out (source "cut"), one per input session with messages in
// the slice. A new session starts at the slice's start: offsets count from
// it, absolute times stay as recorded. It carries the retained state valid
// at the slice's start (per selected topic the last retained message
// before it, unless an empty one cleared the topic) to that start as
// messages from the retained store, and copies the events inside the
// slice. in is only read; its path names it in each session's "cut" event.
func Cut(ctx context.Context, in, out *Capture, opts CutOptions) (CutReport, error) {
	if in.parts != nil {
		return CutReport{}, errNotForParts("cut")
	}
	var rep CutReport
	sessions, err := in.Sessions(ctx)
	if err != nil {
		return rep, err
	}
	// Every event at once: reading them per session scanned the events
	// table once per session.
	all, err := in.Events(ctx, opts.Select.Session)
	if err != nil {
		return rep, err
	}
	events := map[int64][]Event{}
	for _, e := range all {
		events[e.Session] = append(events[e.Session], e)
	}
	w := NewSessionWriter(out, SessionInfo{})
	for _, s := range sessions {
		if opts.Select.Session != 0 && s.ID != opts.Select.Session {
			continue
		}
		carried, wrote, err := cutSession(ctx, in, w, s, events[s.ID], opts)
		if err != nil {
			return rep, err
		}
		if wrote {
			rep.Carried += int64(carried)
			rep.Sessions++
		}
	}
	err = w.EndSession(ctx, "cut")
	rep.Messages = w.Messages
	if err == nil {
		err = carryDecoders(ctx, []*Capture{in}, out)
	}
	return rep, err
}

// sliceStart is the offset in session s at which the slice q starts.
func sliceStart(q Query, s SessionInfo) int64 {
	switch {
	case q.FromOffset != nil:
		return *q.FromOffset
	case q.FromTime != nil:
		return max(*q.FromTime-s.StartedNS, 0)
	}
	return 0
}

// cutSession writes the slice of input session s as a new session of w,
// unless the slice has no message in s (wrote false). It returns the
// number of retained messages carried to the slice's start.
func cutSession(ctx context.Context, in *Capture, w *SessionWriter, s SessionInfo, events []Event, opts CutOptions) (carried int, wrote bool, err error) {
	from := sliceStart(opts.Select, s)
	sel := opts.Select
	sel.Session, sel.FromOffset, sel.FromTime = s.ID, &from, nil
	if from == 0 {
		sel.FromOffset = nil // the whole session from its start: no search
	}
	n, err := in.Count(ctx, sel)
	if err != nil || n == 0 {
		return 0, false, err
	}
	var state []Message
	if from > 0 {
		if state, err = retainedAt(ctx, in, s.ID, opts.Select.Match, from); err != nil {
			return 0, false, err
		}
	}
	start := s.StartedNS + from
	if err := startCutSession(ctx, w, in.Path(), s, from, len(state), opts); err != nil {
		return 0, false, err
	}
	for _, m := range state {
		m.TimeNS, m.OffsetNS, m.Retain, m.FromStore, m.Dup, m.PacketID = start, 0, true, true, false, 0
		if err := w.AddFrom(ctx, m, in); err != nil {
			return 0, false, err
		}
	}
	if err := copySlice(ctx, in, w, sel, from, start, n, opts.Progress); err != nil {
		return 0, false, err
	}
	if err := copySliceEvents(ctx, w, events, from, sel.ToOffset, sel.ToTime); err != nil {
		return 0, false, err
	}
	return len(state), true, nil
}

// startCutSession begins the session of w that holds the slice of input
// session s starting at offset from, with its "cut" event.
func startCutSession(ctx context.Context, w *SessionWriter, name string, s SessionInfo, from int64, carried int, opts CutOptions) error {
	info := s
	info.Source, info.Version, info.EndedNS, info.LastNS, info.StopReason = "cut", opts.Version, 0, 0, ""
	info.Host = opts.Host
	// End the previous session first: it is closed with w.Dropped, which
	// is this session's from here on.
	if err := w.EndSession(ctx, "cut"); err != nil {
		return err
	}
	w.Dropped = 0
	if from == 0 {
		w.Dropped = s.Dropped
	}
	start := s.StartedNS + from
	if err := w.StartSession(ctx, start, "cut", &info); err != nil {
		return err
	}
	detail, _ := json.Marshal(map[string]any{"input": name, "session": s.ID, "from_offset_ns": from, "carried_retained": carried})
	return w.Event(ctx, Event{TimeNS: start, Kind: "cut", Detail: string(detail)})
}

// copySlice copies the messages sel selects (want of them, counted
// before) into w's open session, their offsets rebased on from and their
// times no earlier than start. A damaged input that yields fewer messages
// than counted, or a slice of every topic with a hole in its seq numbers,
// is an error (ErrCorrupt), not a silently short copy.
func copySlice(ctx context.Context, in *Capture, w *SessionWriter, sel Query, from, start, want int64, progress *atomic.Int64) error {
	whole := sel.Match == nil && sel.TopicIDs == nil && sel.QoS == nil && sel.FromStore == nil &&
		len(sel.PayloadContains) == 0 && sel.inGo() == nil
	var got, prev int64
	sel.MaxPayload = bigPayload // copied inside SQLite (AddFrom)
	for m, err := range in.Messages(ctx, sel) {
		if err != nil {
			return err
		}
		if whole && prev != 0 && m.Seq != prev+1 {
			return in.wrap("cut", fmt.Errorf("%w: session %d: seq %s missing", ErrCorrupt, sel.Session, keyRange(prev+1, m.Seq-1)))
		}
		got, prev = got+1, m.Seq
		m.OffsetNS -= from
		m.TimeNS = max(m.TimeNS, start)
		if err := w.AddFrom(ctx, m, in); err != nil {
			return err
		}
		if progress != nil {
			progress.Add(1)
		}
	}
	if got != want {
		return in.wrap("cut", fmt.Errorf("%w: session %d: %d of the slice's %d messages could be read", ErrCorrupt, sel.Session, got, want))
	}
	return nil
}

// retainedAt returns the retained state of a session's selected topics just
// before offset from: per topic the last message sent from the retained
// store or recorded with retain=1, unless an empty one cleared it. A huge
// payload is left out (Query.MaxPayload): Cut copies it with AddFrom.
func retainedAt(ctx context.Context, c *Capture, session int64, match func(string) bool, from int64) ([]Message, error) {
	var state RetainedState
	q := Query{Session: session, Match: match, ToOffset: &from, MaxPayload: bigPayload}
	for m, err := range c.Messages(ctx, q) {
		if err != nil {
			return nil, err
		}
		state.Observe(&m)
	}
	return state.Messages(), nil
}

// copySliceEvents copies the events of a session in [from, to) (offsets,
// or absolute toTime) into w's open session, their offsets rebased on from.
func copySliceEvents(ctx context.Context, w *SessionWriter, events []Event, from int64, to, toTime *int64) error {
	for _, e := range events {
		if e.OffsetNS < from || (to != nil && e.OffsetNS >= *to) || (toTime != nil && e.TimeNS >= *toTime) {
			continue
		}
		e.OffsetNS -= from
		if err := w.Event(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
