package storage

import (
	"context"
	"fmt"
	"time"
)

// SessionWriter writes messages into new sessions of a capture in large
// batches, keeping the format's invariant: within a session, seq, offset_ns
// and ts_ns never decrease. A message whose time or offset would go
// backwards is clamped to the previous one (counted in Clamped) rather than
// reordered, so the input order is kept exactly. import, cut and merge write
// through it.
type SessionWriter struct {
	c *Capture

	sess    *Session
	startNS int64
	lastTS  int64
	lastOff int64
	msgs    []Message
	events  []Event
	size    int
	// props5: a message of the open session carries MQTT 5 properties.
	props5 bool

	// Info describes every session started (StartedNS is set per session);
	// it may be changed between sessions.
	Info SessionInfo
	// Messages counts the messages written (committed or pending).
	Messages int64
	// Clamped counts messages whose ts_ns or offset_ns was raised to keep
	// the session's order.
	Clamped int64
	// Sessions are the ids of the sessions written, in order.
	Sessions []int64
	// Dropped is stored as the drop count of the sessions ended.
	Dropped int64
}

// SessionWriter batch limits: one transaction per this many messages or
// payload bytes.
const (
	sessionBatchMessages = 4096
	sessionBatchBytes    = 8 << 20
)

// NewSessionWriter prepares a SessionWriter; info describes every session it
// starts (StartedNS is set per session).
// The capture builds its per-topic index when it is closed, once for all
// the sessions written (DeferIndexes).
func NewSessionWriter(c *Capture, info SessionInfo) *SessionWriter {
	c.DeferIndexes()
	return &SessionWriter{c: c, Info: info}
}

// InSession reports whether a session is open.
func (w *SessionWriter) InSession() bool { return w.sess != nil }

// LastTime is the time of the open session's last message (its start when
// it has none).
func (w *SessionWriter) LastTime() int64 { return w.lastTS }

// SessionStart is the open session's start (Unix ns).
func (w *SessionWriter) SessionStart() int64 { return w.startNS }

// StartSession ends the open session (if any, with reason) and begins a new
// one starting at startNS. info, when non-nil, replaces the session
// description.
func (w *SessionWriter) StartSession(ctx context.Context, startNS int64, reason string, info *SessionInfo) error {
	if err := w.EndSession(ctx, reason); err != nil {
		return err
	}
	if info != nil {
		w.Info = *info
	}
	si := w.Info
	si.StartedNS = startNS
	s, err := w.c.BeginSession(ctx, si)
	if err != nil {
		return err
	}
	w.sess, w.startNS, w.lastTS, w.lastOff, w.props5 = s, startNS, startNS, 0, false
	w.Sessions = append(w.Sessions, s.ID())
	return nil
}

// Add queues one message of the open session. m.OffsetNS is relative to the
// session start; m.Seq and m.Session are ignored.
func (w *SessionWriter) Add(ctx context.Context, m Message) error {
	if m.PayloadOmitted {
		return fmt.Errorf("write message: its payload was left out of the read (SessionWriter.AddFrom copies it)")
	}
	w.order(&m)
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	w.msgs = append(w.msgs, m)
	w.size += len(m.Payload) + len(m.Topic) + 64
	w.Messages++
	if len(w.msgs) >= sessionBatchMessages || w.size >= sessionBatchBytes {
		return w.Flush(ctx)
	}
	return nil
}

// AddFrom is Add for a message read from src: one whose payload the read
// left out (Query.MaxPayload, for a huge payload) gets it copied from
// message m.Seq of src inside SQLite, in a transaction of its own after
// what is queued, so that mqtape never holds it.
func (w *SessionWriter) AddFrom(ctx context.Context, m Message, src *Capture) error {
	if !m.PayloadOmitted {
		return w.Add(ctx, m)
	}
	if w.sess == nil {
		return fmt.Errorf("write message: no session is open")
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	ref := src.refTo(m.Seq)
	w.order(&m)
	w.Messages++
	return w.sess.copyPayload(ctx, &m, ref, time.Now().UnixNano())
}

// order keeps the open session's times and offsets from going back
// (counted in Clamped) and notes MQTT 5 properties.
func (w *SessionWriter) order(m *Message) {
	clamped := false
	if m.TimeNS < w.lastTS {
		m.TimeNS, clamped = w.lastTS, true
	}
	if m.OffsetNS < w.lastOff {
		m.OffsetNS, clamped = w.lastOff, true
	}
	if clamped {
		w.Clamped++
	}
	w.lastTS, w.lastOff = m.TimeNS, m.OffsetNS
	w.props5 = w.props5 || m.Props.OfMessage() != nil
}

// Event queues one event of the open session (e.OffsetNS relative to its
// start).
func (w *SessionWriter) Event(ctx context.Context, e Event) error {
	w.events = append(w.events, e)
	if len(w.events) >= sessionBatchMessages {
		return w.Flush(ctx)
	}
	return nil
}

// Flush commits what is queued.
func (w *SessionWriter) Flush(ctx context.Context) error {
	if w.sess == nil || (len(w.msgs) == 0 && len(w.events) == 0) {
		return nil
	}
	err := w.sess.Write(ctx, w.msgs, w.events, time.Now().UnixNano())
	clear(w.msgs) // release payloads
	w.msgs, w.events, w.size = w.msgs[:0], w.events[:0], 0
	return err
}

// EndSession flushes and closes the open session; its end time is its last
// message's time. A session whose messages carry MQTT 5 properties is
// stored as an MQTT 5 session (protocol 5), whatever Info said: an import
// learns the protocol from its messages, and play replays such a session
// as MQTT 5.
func (w *SessionWriter) EndSession(ctx context.Context, reason string) error {
	if w.sess == nil {
		return nil
	}
	if err := w.Flush(ctx); err != nil {
		return err
	}
	if w.props5 && w.Info.Protocol != 5 {
		if _, err := w.c.w.ExecContext(ctx, "UPDATE sessions SET protocol=5 WHERE id=?", w.sess.ID()); err != nil {
			return w.c.wrap("update session", err)
		}
	}
	err := w.sess.End(ctx, w.lastTS, reason, w.Dropped)
	w.sess = nil
	return err
}
