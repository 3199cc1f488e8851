package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/mqtape/mqtape/mqtt"
)

// Query selects messages: the one selection type of the capture API, for
// the readers (Messages, Page, Count), Prepare (the inspector), Cut and
// replay, turned into SQL by one builder (where). The zero Query selects
// every message in seq order.
type Query struct {
	// Match selects topics (e.g. a topic.Set's Match); nil selects all.
	Match func(topic string) bool
	// TopicIDs restricts to these topic ids (from Topics); nil selects
	// every topic, an empty non-nil slice none.
	TopicIDs []int64
	// Session restricts to one session; 0 means all.
	Session int64
	// FromOffset/ToOffset select offset_ns in [from, to) within each session.
	FromOffset, ToOffset *int64
	// FromTime/ToTime select ts_ns (Unix ns) in [from, to).
	FromTime, ToTime *int64
	// QoS restricts to these QoS levels; nil means any, empty none.
	QoS []byte
	// FromStore: nil any; true only messages sent from the broker's
	// retained store, false only live ones.
	FromStore *bool
	// PayloadContains: every one of these byte strings occurs in the
	// payload (tested inside SQLite).
	PayloadContains [][]byte
	// PayloadMatch, when set, is checked in Go on the whole payload (e.g. a
	// regular expression); it makes every read look at payloads.
	PayloadMatch func(payload []byte) bool
	// MessageMatch, when set, is checked in Go on the whole message (its
	// topic, properties and payload: e.g. a query on decoded values); like
	// PayloadMatch it makes every read look at payloads.
	MessageMatch func(m *Message) bool
	// AfterSeq/BeforeSeq page by seq (keyset): seq > AfterSeq, and seq <
	// BeforeSeq when BeforeSeq > 0. Desc returns newest first; Limit caps
	// the number of messages (0: no limit). Prepare ignores these four.
	AfterSeq, BeforeSeq int64
	Desc                bool
	Limit               int
	// MaxPayload, when > 0, leaves out payloads longer than this many
	// bytes: Messages yields such a message with PayloadOmitted set and a
	// nil Payload, to be read on its own with Capture.Payload. A reader
	// that must not hold several huge payloads at once uses it. Get and
	// Prepare ignore it, and so does a read with a PayloadMatch or MessageMatch (which
	// need every payload).
	MaxPayload int
}

// messageColumns are the columns of a whole message, its payload as
// published (decompressed when stored compressed).
func (c *Capture) messageColumns() string {
	return "m.seq, m.session, m.ts_ns, m.offset_ns, t.name, m.qos, m.retain, m.from_store, m.dup, m.packet_id, " +
		c.payloadSQL("m.")
}

// messagesFrom is the FROM clause of every message read. The topic is
// joined LEFT so that a message whose topic row is missing (a damaged
// capture) is an error when read, not silently left out.
const messagesFrom = " FROM messages m LEFT JOIN topics t ON t.id = m.topic_id"

// messagesNotIndexed and messagesByTopic are messagesFrom reading messages
// in seq order (the rowid) or through the topic index.
const (
	messagesNotIndexed = " FROM messages m NOT INDEXED LEFT JOIN topics t ON t.id = m.topic_id"
	messagesByTopic    = " FROM messages m INDEXED BY " + topicIndex + " LEFT JOIN topics t ON t.id = m.topic_id"
)

// clientColumn is the extra columns Messages and Get read after
// messageColumns: the publisher's client id (format version 2 and later)
// and the MQTT 5 properties (version 3 and later).
func (c *Capture) clientColumn() string {
	client, props := "''", "NULL"
	if c.version >= 2 {
		client = "coalesce((SELECT client_id FROM clients WHERE id = m.client_ref), '')"
	}
	if c.version >= 3 {
		props = "m.props"
	}
	return ", " + client + ", " + props
}

// omittedPayload is the payload column and the extra column of a read
// with Query.MaxPayload (see scanFull).
func (c *Capture) omittedPayload(maxPayload int) (payload, extra string) {
	n := strconv.Itoa(maxPayload)
	// length() of a blob column reads its size only (so does sizeSQL of a
	// compressed one), and the CASE does not load a payload it leaves out.
	size := c.sizeSQL("m.")
	return "CASE WHEN " + size + " > " + n + " THEN NULL ELSE " + c.payloadSQL("m.") + " END", ", " + size + " > " + n
}

// scanFull scans messageColumns plus clientColumn; with omitted, one more
// column: whether the payload was left out (Query.MaxPayload).
func scanFull(s scanner, omitted ...*bool) (Message, error) {
	var m Message
	var qos, pid int64
	var topic, props sql.NullString
	dest := []any{&m.Seq, &m.Session, &m.TimeNS, &m.OffsetNS, &topic, &qos, &m.Retain, &m.FromStore, &m.Dup, &pid, &m.Payload, &m.ClientID, &props}
	for _, o := range omitted {
		dest = append(dest, o)
	}
	err := s.Scan(dest...)
	if len(omitted) > 0 && *omitted[0] {
		m.PayloadOmitted, m.Payload = true, nil
	}
	m.QoS, m.PacketID, m.Topic = byte(qos), uint16(pid), topic.String
	if err == nil && !topic.Valid {
		return m, fmt.Errorf("%w: message seq %d refers to topic id that does not exist", ErrCorrupt, m.Seq)
	}
	if err == nil {
		err = checkQoS(m.Seq, qos)
	}
	if m.Payload == nil && !m.PayloadOmitted {
		m.Payload = []byte{}
	}
	if err == nil {
		m.Props, err = parseProps(m.Seq, props)
	}
	return m, err
}

// parseProps reads a message's stored MQTT 5 properties (NULL: none).
func parseProps(seq int64, props sql.NullString) (*mqtt.Properties, error) {
	if !props.Valid || props.String == "" {
		return nil, nil
	}
	p := new(mqtt.Properties)
	if err := json.Unmarshal([]byte(props.String), p); err != nil {
		return nil, fmt.Errorf("%w: message seq %d: MQTT 5 properties are not valid JSON (%v)", ErrCorrupt, seq, err)
	}
	return p, nil
}

// inGo is what of q is checked in Go on a whole message (nil: nothing):
// PayloadMatch and MessageMatch.
func (q Query) inGo() func(m *Message) bool {
	switch {
	case q.MessageMatch == nil && q.PayloadMatch == nil:
		return nil
	case q.MessageMatch == nil:
		return func(m *Message) bool { return q.PayloadMatch(m.Payload) }
	case q.PayloadMatch == nil:
		return q.MessageMatch
	}
	return func(m *Message) bool { return q.PayloadMatch(m.Payload) && q.MessageMatch(m) }
}

// checkQoS refuses a QoS outside 0–2 (what check reports): play would
// send it, and the broker drop the connection.
func checkQoS(seq, qos int64) error {
	if qos < 0 || qos > 2 {
		return fmt.Errorf("%w: message seq %d has QoS %d", ErrCorrupt, seq, qos)
	}
	return nil
}

// where builds the WHERE clause. ok is false when no topic matches, in which
// case the query selects nothing.
func (c *Capture) where(ctx context.Context, q Query) (clause string, args []any, ok bool, err error) {
	var conds []string
	if q.Match != nil {
		ids, all, err := c.matchingTopics(ctx, q.Match)
		if err != nil {
			return "", nil, false, err
		}
		if len(ids) == 0 {
			return "", nil, false, nil
		}
		if !all {
			conds = append(conds, "m.topic_id IN ("+joinInts(ids)+")")
		}
	}
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if q.TopicIDs != nil {
		if len(q.TopicIDs) == 0 {
			return "", nil, false, nil
		}
		conds = append(conds, "m.topic_id IN ("+joinInts(q.TopicIDs)+")")
	}
	if q.QoS != nil {
		if len(q.QoS) == 0 {
			return "", nil, false, nil
		}
		levels := make([]int64, len(q.QoS))
		for i, l := range q.QoS {
			levels[i] = int64(l)
		}
		conds = append(conds, "m.qos IN ("+joinInts(levels)+")")
	}
	if q.Session != 0 {
		add("m.session = ?", q.Session)
	}
	if q.Session != 0 || timeBounded(q) {
		cond, ok, err := c.spanCondition(ctx, q)
		if err != nil || !ok {
			return "", nil, false, err
		}
		conds = append(conds, cond)
	}
	if q.AfterSeq != 0 {
		add("m.seq > ?", q.AfterSeq)
	}
	if q.BeforeSeq > 0 {
		add("m.seq < ?", q.BeforeSeq)
	}
	if q.FromStore != nil {
		if *q.FromStore {
			conds = append(conds, "m.from_store = 1")
		} else {
			conds = append(conds, "m.from_store = 0")
		}
	}
	for _, b := range q.PayloadContains {
		if len(b) > 0 {
			add("instr("+c.payloadSQL("m.")+", ?) > 0", b)
		}
	}
	if len(conds) == 0 {
		return "", args, true, nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args, true, nil
}

// matchingTopics returns the ids of the topics match accepts, and whether
// that is every topic.
func (c *Capture) matchingTopics(ctx context.Context, match func(string) bool) (ids []int64, all bool, err error) {
	topics, err := c.Topics(ctx)
	if err != nil {
		return nil, false, err
	}
	all = true
	for _, t := range topics {
		if match(t.Name) {
			ids = append(ids, t.ID)
		} else {
			all = false
		}
	}
	return ids, all, nil
}

// Messages streams the messages q selects, in seq order (or reverse with
// Desc), in constant memory. Stop iterating to release the query.
func (c *Capture) Messages(ctx context.Context, q Query) iter.Seq2[Message, error] {
	if c.parts != nil {
		return c.parts.messages(ctx, q)
	}
	return func(yield func(Message, error) bool) {
		where, args, ok, err := c.where(ctx, q)
		if err != nil {
			yield(Message{}, err)
			return
		}
		if !ok {
			return
		}
		cols, extra := c.messageColumns(), ""
		if q.MaxPayload > 0 && q.inGo() == nil {
			var payload string
			payload, extra = c.omittedPayload(q.MaxPayload)
			cols = strings.TrimSuffix(cols, c.payloadSQL("m.")) + payload
		}
		order := " ORDER BY m.seq"
		if q.Desc {
			order += " DESC"
		}
		match := q.inGo()
		var omitted []*bool
		if extra != "" {
			omitted = append(omitted, new(bool))
		}
		// pass reads one query's rows; it returns how many it yielded and
		// whether to go on.
		pass := func(from, where string, args []any, limit int) (int, bool) {
			query := "SELECT " + cols + c.clientColumn() + extra + from + where + order
			if limit > 0 && match == nil { // with a matcher, the limit counts matches (below)
				query += " LIMIT " + strconv.Itoa(limit)
			}
			rows, err := c.r.QueryContext(ctx, query, args...)
			if err != nil {
				yield(Message{}, c.wrap("read messages", err))
				return 0, false
			}
			defer rows.Close()
			yielded := 0
			for rows.Next() {
				m, err := scanFull(rows, omitted...)
				if err != nil {
					yield(Message{}, c.wrap("read messages", err))
					return yielded, false
				}
				if match != nil && !match(&m) {
					continue
				}
				if !yield(m, nil) {
					return yielded, false
				}
				if yielded++; limit > 0 && yielded == limit {
					return yielded, false
				}
			}
			if err := rows.Err(); err != nil {
				yield(Message{}, c.wrap("read messages", err))
				return yielded, false
			}
			return yielded, true
		}
		if q.Limit <= 0 || (q.TopicIDs == nil && q.Match == nil) {
			pass(messagesFrom, where, args, q.Limit)
			return
		}
		// A page of many topics: SQLite would read every message of them
		// through the topic index and sort them before the first row (0.6
		// s for 200k of 1M). The page is looked for first in the next
		// pageWindow messages in seq order, then through the index beyond.
		near, far, bound := c.pageWindow(q)
		n, more := pass(messagesNotIndexed, and(where, near), append(slices.Clone(args), bound...), q.Limit)
		if more && n < q.Limit {
			pass(messagesFrom, and(where, far), append(slices.Clone(args), bound...), q.Limit-n)
		}
	}
}

// pageWindow is how many messages in seq order a page of many topics is
// looked for in before the topic index is used (Messages).
const pageWindow = 16384

// pageWindow returns the conditions on seq of a page's window (near) and
// of what lies beyond it (far), and their argument.
func (c *Capture) pageWindow(q Query) (near, far string, arg []any) {
	switch {
	case !q.Desc:
		return "m.seq <= ?", "m.seq > ?", []any{q.AfterSeq + pageWindow}
	}
	// Backwards from before= (a web page's "from the end" asks with the
	// largest seq there is), or from the last message.
	end := "(SELECT max(seq) + 1 FROM messages)"
	var args []any
	if q.BeforeSeq > 0 {
		end, args = "min(?, "+end+")", []any{q.BeforeSeq}
	}
	w := strconv.Itoa(pageWindow)
	return "m.seq >= " + end + " - " + w, "m.seq < " + end + " - " + w, args
}

// and adds cond to a WHERE clause (which may be empty).
func and(where, cond string) string {
	if where == "" {
		return " WHERE " + cond
	}
	return where + " AND " + cond
}

// Page returns up to q.Limit messages (keyset paging with AfterSeq/BeforeSeq).
func (c *Capture) Page(ctx context.Context, q Query) ([]Message, error) {
	var out []Message
	for m, err := range c.Messages(ctx, q) {
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// Get returns the message with sequence number seq.
func (c *Capture) Get(ctx context.Context, seq int64) (Message, error) {
	if c.parts != nil {
		return c.parts.get(ctx, seq)
	}
	row := c.r.QueryRowContext(ctx, "SELECT "+c.messageColumns()+c.clientColumn()+
		messagesFrom+" WHERE m.seq = ?", seq)
	m, err := scanFull(row)
	if err != nil {
		return Message{}, c.wrap("read message", err)
	}
	return m, nil
}

// Payload calls fn with the payload of message seq, without the copy Get
// makes: p is SQLite's value, valid only during the call (fn must not keep
// it). With Query.MaxPayload, a huge payload is held once by mqtape instead
// of twice.
func (c *Capture) Payload(ctx context.Context, seq int64, fn func(p []byte) error) error {
	if c.parts != nil {
		return c.parts.payload(ctx, seq, fn)
	}
	rows, err := c.r.QueryContext(ctx, "SELECT "+c.payloadSQL("m.")+" FROM messages m WHERE m.seq = ?", seq)
	if err != nil {
		return c.wrap("read payload", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return c.wrap("read payload", err)
		}
		return c.wrap("read payload", fmt.Errorf("message seq %d: %w", seq, sql.ErrNoRows))
	}
	var p sql.RawBytes
	if err := rows.Scan(&p); err != nil {
		return c.wrap("read payload", err)
	}
	if p == nil {
		p = sql.RawBytes{}
	}
	if err := fn(p); err != nil {
		return err
	}
	return c.wrap("read payload", rows.Close())
}

// Count returns how many messages q selects (ignoring Limit).
func (c *Capture) Count(ctx context.Context, q Query) (int64, error) {
	if c.parts != nil {
		return c.parts.count(ctx, q)
	}
	if q.inGo() != nil {
		q.Limit = 0
		var n int64
		for _, err := range c.Messages(ctx, q) {
			if err != nil {
				return n, err
			}
			n++
		}
		return n, nil
	}
	where, args, ok, err := c.where(ctx, q)
	if err != nil || !ok {
		return 0, err
	}
	var n int64
	err = c.r.QueryRowContext(ctx, "SELECT count(*) FROM messages m"+where, args...).Scan(&n)
	return n, c.wrap("count messages", err)
}

type scanner interface{ Scan(...any) error }

// Topic is an interned topic name.
type Topic struct {
	ID   int64
	Name string
}

// Topics returns every topic in the capture, ordered by name.
func (c *Capture) Topics(ctx context.Context) ([]Topic, error) {
	if c.parts != nil {
		return c.parts.topicList(ctx)
	}
	return c.topicRows(ctx, "SELECT id, name FROM topics ORDER BY name")
}

// topicRows runs query, which selects topics' id and name.
func (c *Capture) topicRows(ctx context.Context, query string, args ...any) ([]Topic, error) {
	rows, err := c.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, c.wrap("read topics", err)
	}
	defer rows.Close()
	var out []Topic
	for rows.Next() {
		var t Topic
		if err := rows.Scan(&t.ID, &t.Name); err != nil {
			return nil, c.wrap("read topics", err)
		}
		out = append(out, t)
	}
	return out, c.wrap("read topics", rows.Err())
}

// Sessions returns every session, oldest first.
func (c *Capture) Sessions(ctx context.Context) ([]SessionInfo, error) {
	if c.parts != nil {
		return c.parts.sessions(ctx)
	}
	rows, err := c.r.QueryContext(ctx, `SELECT id, source, broker, client_id, protocol, clean_session, filters,
		started_ns, coalesce(last_ns, 0), coalesce(ended_ns, 0), coalesce(stop_reason, ''), dropped, mqtape_version, host
		FROM sessions ORDER BY id`)
	if err != nil {
		return nil, c.wrap("read sessions", err)
	}
	defer rows.Close()
	var out []SessionInfo
	for rows.Next() {
		var s SessionInfo
		var filters string
		if err := rows.Scan(&s.ID, &s.Source, &s.Broker, &s.ClientID, &s.Protocol, &s.CleanSession, &filters,
			&s.StartedNS, &s.LastNS, &s.EndedNS, &s.StopReason, &s.Dropped, &s.Version, &s.Host); err != nil {
			return nil, c.wrap("read sessions", err)
		}
		if err := json.Unmarshal([]byte(filters), &s.Filters); err != nil {
			return nil, c.wrap("read sessions", fmt.Errorf("%w: session %d: filters are not valid JSON (%v)", ErrCorrupt, s.ID, err))
		}
		out = append(out, s)
	}
	return out, c.wrap("read sessions", rows.Err())
}

// Events returns the events of a session (0: all sessions) in order.
func (c *Capture) Events(ctx context.Context, session int64) ([]Event, error) {
	if c.parts != nil {
		return c.parts.eventList(session), nil
	}
	query := "SELECT id, session, ts_ns, offset_ns, kind, detail FROM events"
	var args []any
	if session != 0 {
		query += " WHERE session = ?"
		args = append(args, session)
	}
	rows, err := c.r.QueryContext(ctx, query+" ORDER BY id", args...)
	if err != nil {
		return nil, c.wrap("read events", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.ID, &e.Session, &e.TimeNS, &e.OffsetNS, &e.Kind, &e.Detail); err != nil {
			return nil, c.wrap("read events", err)
		}
		out = append(out, e)
	}
	return out, c.wrap("read events", rows.Err())
}

// MaxSeq returns the highest sequence number (0 for an empty capture).
func (c *Capture) MaxSeq(ctx context.Context) (int64, error) {
	if c.parts != nil {
		seq, _, err := c.parts.last(ctx)
		return seq, err
	}
	var n sql.NullInt64
	err := c.r.QueryRowContext(ctx, "SELECT max(seq) FROM messages").Scan(&n)
	return n.Int64, c.wrap("read messages", err)
}

// seqSpan is a range of sequence numbers [lo, hi).
type seqSpan struct{ lo, hi int64 }

// timeBounded reports whether q has a time or offset bound.
func timeBounded(q Query) bool {
	return q.FromOffset != nil || q.ToOffset != nil || q.FromTime != nil || q.ToTime != nil
}

// maxSpans is how many sessions are narrowed by binary search to seq
// ranges listed one by one in the query; with more, one range covering them
// all is scanned and the time bounds are tested on each row. Either way the
// cost is linear in messages, not sessions × messages, and the query stays
// small (SQLite refuses expression trees deeper than 1000).
const maxSpans = 64

// spanCondition turns q's session and time bounds into a condition on seq
// (served by the primary key) plus, with time bounds, the same bounds on
// each row. ok is false when no message can match. Within a session seq,
// offset_ns and ts_ns never decrease (a format invariant mqtape check
// verifies), so both forms select the same rows.
func (c *Capture) spanCondition(ctx context.Context, q Query) (cond string, ok bool, err error) {
	sessions, err := c.sessionRanges(ctx, q.Session)
	if err != nil || len(sessions) == 0 {
		return "", false, err
	}
	var rowBounds []string
	for _, b := range []struct {
		col, op string
		v       *int64
	}{{"offset_ns", ">=", q.FromOffset}, {"offset_ns", "<", q.ToOffset}, {"ts_ns", ">=", q.FromTime}, {"ts_ns", "<", q.ToTime}} {
		if b.v != nil {
			rowBounds = append(rowBounds, fmt.Sprintf("m.%s %s %d", b.col, b.op, *b.v))
		}
	}
	var parts []string
	if len(sessions) > maxSpans {
		lo, hi := sessions[0].lo, sessions[0].hi
		for _, sp := range sessions {
			lo, hi = min(lo, sp.lo), max(hi, sp.hi)
		}
		parts = append(parts, fmt.Sprintf("m.seq >= %d AND m.seq < %d", lo, hi))
	} else {
		spans, err := c.timeSpans(ctx, q, sessions)
		if err != nil || len(spans) == 0 { // an error, or no message in the bounds
			return "", false, err
		}
		var or []string
		for _, sp := range spans {
			or = append(or, fmt.Sprintf("(m.seq >= %d AND m.seq < %d)", sp.lo, sp.hi))
		}
		parts = append(parts, "("+strings.Join(or, " OR ")+")")
	}
	return strings.Join(append(parts, rowBounds...), " AND "), true, nil
}

// sessionRanges returns the seq range of every session with messages (only
// of session when it is not 0), in session order.
func (c *Capture) sessionRanges(ctx context.Context, session int64) ([]seqSpan, error) {
	query := "SELECT first_seq, last_seq FROM sessions WHERE first_seq IS NOT NULL"
	var args []any
	if session != 0 {
		query += " AND id = ?"
		args = append(args, session)
	}
	rows, err := c.r.QueryContext(ctx, query+" ORDER BY id", args...)
	if err != nil {
		return nil, c.wrap("read sessions", err)
	}
	defer rows.Close()
	var out []seqSpan
	for rows.Next() {
		var sp seqSpan
		if err := rows.Scan(&sp.lo, &sp.hi); err != nil {
			return nil, c.wrap("read sessions", err)
		}
		sp.hi++
		out = append(out, sp)
	}
	return out, c.wrap("read sessions", rows.Err())
}

// sessionTimes returns the receive times of a session's first and last
// message; ok is false when it has none.
func (c *Capture) sessionTimes(ctx context.Context, session int64) (first, last int64, ok bool, err error) {
	var f, l sql.NullInt64
	err = c.r.QueryRowContext(ctx, `SELECT (SELECT ts_ns FROM messages WHERE seq = s.first_seq),
		(SELECT ts_ns FROM messages WHERE seq = s.last_seq) FROM sessions s WHERE id = ?`, session).Scan(&f, &l)
	if err == sql.ErrNoRows {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, c.wrap("read sessions", err)
	}
	return f.Int64, l.Int64, f.Valid && l.Valid, nil
}

// sessionSpans returns the seq range of q's time bounds in each session
// (only q.Session when set), in session order.
func (c *Capture) sessionSpans(ctx context.Context, q Query) ([]seqSpan, error) {
	sessions, err := c.sessionRanges(ctx, q.Session)
	if err != nil {
		return nil, err
	}
	return c.timeSpans(ctx, q, sessions)
}

// timeSpans narrows the seq ranges of sessions to q's time and offset
// bounds by binary search: within a session seq, offset_ns and ts_ns never
// decrease.
func (c *Capture) timeSpans(ctx context.Context, q Query, sessions []seqSpan) ([]seqSpan, error) {
	var spans []seqSpan
	for _, sp := range sessions {
		first, end := sp.lo, sp.hi
		for _, b := range []struct {
			col   string
			v     *int64
			lower bool
		}{{"offset_ns", q.FromOffset, true}, {"offset_ns", q.ToOffset, false}, {"ts_ns", q.FromTime, true}, {"ts_ns", q.ToTime, false}} {
			if b.v == nil {
				continue
			}
			at, err := c.searchSeq(ctx, b.col, *b.v, first, end)
			if err != nil {
				return nil, err
			}
			if b.lower {
				sp.lo = max(sp.lo, at)
			} else {
				sp.hi = min(sp.hi, at)
			}
		}
		if sp.lo < sp.hi {
			spans = append(spans, sp)
		}
	}
	return spans, nil
}

// searchSeq returns the first seq in [lo, hi) whose col is >= v, or hi.
func (c *Capture) searchSeq(ctx context.Context, col string, v, lo, hi int64) (int64, error) {
	stmt := "SELECT seq, " + col + " FROM messages WHERE seq >= ? ORDER BY seq LIMIT 1"
	for lo < hi {
		mid := lo + (hi-lo)/2
		var seq, got int64
		err := c.r.QueryRowContext(ctx, stmt, mid).Scan(&seq, &got)
		if err != nil && err != sql.ErrNoRows {
			return 0, c.wrap("search messages", err)
		}
		if err == sql.ErrNoRows || seq >= hi || got >= v {
			hi = mid
		} else {
			lo = seq + 1
		}
	}
	return lo, nil
}
