package storage

// Read queries for the inspector: a filter resolved once (Prepare) and then
// used many times to scan matching sequence numbers, fetch table rows by seq
// range or seq list (payload previews only, never whole payloads), count per
// topic and find neighbours. Everything here pages by seq (keyset) and runs in
// memory independent of the capture's size.

import (
	"context"
	"database/sql"
	"iter"
	"sort"
	"strconv"
	"strings"
)

// Prepared is a Query resolved against the capture: topic ids and time
// bounds are turned into SQL once. Re-prepare after the capture grows (a live
// recording) when time bounds matter. Safe for concurrent use.
type Prepared struct {
	c     *Capture
	cond  string // conditions on alias m, joined with AND; "" for none
	args  []any
	none  bool // selects nothing
	match func([]byte) bool
	// msgMatch is MessageMatch: with it every read goes through whole
	// messages (full).
	msgMatch func(*Message) bool
	// spread are the topic ids of a selection of several (not all) topics
	// when the capture has the topic index: its pages are read by
	// spreadRows (see there).
	spread []int64
	// set: the selection on the parts of a recording read in place.
	set *setPrepared
}

// spreadWindow is how many seqs spreadRows scans in seq order before it
// reads topic by topic (a variable so tests reach both ways).
var spreadWindow int64 = 16384

// Prepare resolves q's selection (its paging fields are ignored).
func (c *Capture) Prepare(ctx context.Context, q Query) (*Prepared, error) {
	if c.parts != nil {
		return c.parts.prepare(ctx, q)
	}
	p := &Prepared{c: c, match: q.PayloadMatch, msgMatch: q.MessageMatch}
	q.AfterSeq, q.BeforeSeq = 0, 0
	clause, args, ok, err := c.where(ctx, q)
	if err != nil {
		return nil, err
	}
	if !ok {
		p.none = true
		return p, nil
	}
	p.cond, p.args = strings.TrimPrefix(clause, " WHERE "), args
	return p, p.setSpread(ctx, q)
}

// setSpread notes the topic ids of a selection of several topics.
func (p *Prepared) setSpread(ctx context.Context, q Query) error {
	ids := q.TopicIDs
	if q.Match != nil {
		matched, all, err := p.c.matchingTopics(ctx, q.Match)
		if err != nil || all {
			return err
		}
		if ids == nil {
			ids = matched
		}
	}
	if len(ids) < 2 {
		return nil
	}
	indexed, err := p.c.HasTopicIndex(ctx)
	if indexed {
		p.spread = ids
	}
	return err
}

func joinInts(v []int64) string {
	var b strings.Builder
	for i, id := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	return b.String()
}

// Empty reports whether the selection can match nothing at all.
func (p *Prepared) Empty() bool { return p.none }

// whereRange returns the WHERE clause and arguments for seq in [from, through].
func (p *Prepared) whereRange(from, through int64) (string, []any) {
	w := " WHERE m.seq >= ? AND m.seq <= ?"
	if p.cond != "" {
		w += " AND " + p.cond
	}
	return w, append([]any{from, through}, p.args...)
}

// Seqs streams the seq numbers of matching messages in [from, through],
// ascending. Unless the selection has a PayloadMatch it reads no payloads
// (PayloadContains is tested inside SQLite).
func (p *Prepared) Seqs(ctx context.Context, from, through int64) iter.Seq2[int64, error] {
	if p.set != nil {
		return p.set.seqs(ctx, from, through)
	}
	return func(yield func(int64, error) bool) {
		if p.none || from > through {
			return
		}
		if p.msgMatch != nil {
			for m, err := range p.full(ctx, from, through, false) {
				if !yield(m.Seq, err) || err != nil {
					return
				}
			}
			return
		}
		where, args := p.whereRange(from, through)
		cols := "m.seq"
		if p.match != nil {
			cols += ", " + p.c.payloadSQL("m.")
		}
		rows, err := p.c.r.QueryContext(ctx, "SELECT "+cols+" FROM messages m"+where+" ORDER BY m.seq", args...)
		if err != nil {
			yield(0, p.c.wrap("scan messages", err))
			return
		}
		defer rows.Close()
		var payload sql.RawBytes
		for rows.Next() {
			var seq int64
			dest := []any{&seq}
			if p.match != nil {
				dest = append(dest, &payload)
			}
			if err := rows.Scan(dest...); err != nil {
				yield(0, p.c.wrap("scan messages", err))
				return
			}
			if p.match != nil && !p.match(payload) {
				continue
			}
			if !yield(seq, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(0, p.c.wrap("scan messages", err))
		}
	}
}

// Count returns how many messages in [from, through] match.
func (p *Prepared) Count(ctx context.Context, from, through int64) (int64, error) {
	if p.set != nil {
		return p.set.count(ctx, from, through)
	}
	if p.none || from > through {
		return 0, nil
	}
	if p.match != nil || p.msgMatch != nil {
		var n int64
		for _, err := range p.Seqs(ctx, from, through) {
			if err != nil {
				return 0, err
			}
			n++
		}
		return n, nil
	}
	where, args := p.whereRange(from, through)
	var n int64
	err := p.c.r.QueryRowContext(ctx, "SELECT count(*) FROM messages m"+where, args...).Scan(&n)
	return n, p.c.wrap("count messages", err)
}

// Row is a message as the inspector's table shows it: metadata, the payload
// size and only the first bytes of the payload.
type Row struct {
	Seq       int64
	Session   int64
	TimeNS    int64
	OffsetNS  int64
	Topic     string
	QoS       byte
	Retain    bool
	FromStore bool
	Dup       bool
	Size      int
	Preview   []byte // at most the preview length asked for
}

// rowColumns are a Row's columns but its preview: the payload's size as
// published.
func (c *Capture) rowColumns() string {
	return "m.seq, m.session, m.ts_ns, m.offset_ns, t.name, m.qos, m.retain, m.from_store, m.dup, " + c.sizeSQL("m.")
}

// Rows returns up to limit matching rows with seq in [from, through],
// ascending, each with at most preview payload bytes.
func (p *Prepared) Rows(ctx context.Context, from, through int64, limit, preview int) ([]Row, error) {
	if p.set != nil {
		return p.set.rows(ctx, from, through, limit, preview, false)
	}
	return p.rows(ctx, from, through, limit, preview, false)
}

// RowsBefore returns up to limit matching rows with seq in [from, through],
// descending (the newest first).
func (p *Prepared) RowsBefore(ctx context.Context, from, through int64, limit, preview int) ([]Row, error) {
	if p.set != nil {
		return p.set.rows(ctx, from, through, limit, preview, true)
	}
	return p.rows(ctx, from, through, limit, preview, true)
}

func (p *Prepared) rows(ctx context.Context, from, through int64, limit, preview int, desc bool) ([]Row, error) {
	if p.none || from > through || limit <= 0 {
		return nil, nil
	}
	if p.msgMatch != nil {
		var out []Row
		for m, err := range p.full(ctx, from, through, desc) {
			if err != nil {
				return nil, err
			}
			out = append(out, Row{Seq: m.Seq, Session: m.Session, TimeNS: m.TimeNS, OffsetNS: m.OffsetNS, Topic: m.Topic,
				QoS: m.QoS, Retain: m.Retain, FromStore: m.FromStore, Dup: m.Dup, Size: len(m.Payload),
				Preview: m.Payload[:min(len(m.Payload), preview)]})
			if len(out) == limit {
				break
			}
		}
		return out, nil
	}
	if p.spread != nil && p.match == nil {
		return p.spreadRows(ctx, from, through, limit, preview, desc)
	}
	return p.rowsFrom(ctx, messagesFrom, "", nil, from, through, limit, preview, desc)
}

// rowsFrom is rows reading FROM from (messagesFrom, perhaps with an index
// clause) with one more condition and its arguments.
func (p *Prepared) rowsFrom(ctx context.Context, from string, cond string, condArgs []any, a, z int64, limit, preview int, desc bool) ([]Row, error) {
	where, args := p.whereRange(a, z)
	if cond != "" {
		where += " AND " + cond
		args = append(args, condArgs...)
	}
	payload := "substr(" + p.c.payloadSQL("m.") + ", 1, " + strconv.Itoa(max(preview, 1)) + ")"
	if p.match != nil {
		payload = p.c.payloadSQL("m.")
	}
	query := "SELECT " + p.c.rowColumns() + ", " + payload + from + where + " ORDER BY m.seq"
	if desc {
		query += " DESC"
	}
	if p.match == nil {
		query += " LIMIT " + strconv.Itoa(limit)
	}
	return p.c.scanRows(ctx, query, args, limit, preview, p.match)
}

// spreadRows pages a selection of several topics. Given "topic_id IN (…)
// ORDER BY seq LIMIT n", SQLite reads every match in the range through the
// topic index and sorts them before it returns the first: seconds on a big
// capture. Instead the first spreadWindow seqs are scanned in seq order
// (enough for a selection that matches more than a few percent of the
// messages), and the rest of the range, when needed, topic by topic through
// the index, each in seq order with the limit, merged in Go.
func (p *Prepared) spreadRows(ctx context.Context, from, through int64, limit, preview int, desc bool) ([]Row, error) {
	a, z := from, min(through, from+spreadWindow-1)
	if desc {
		a, z = max(from, through-spreadWindow+1), through
	}
	out, err := p.rowsFrom(ctx, messagesNotIndexed, "", nil, a, z, limit, preview, desc)
	if err != nil || len(out) == limit || (a == from && z == through) {
		return out, err
	}
	if desc {
		through = a - 1
	} else {
		from = z + 1
	}
	var rest []Row
	for _, id := range p.spread {
		rs, err := p.rowsFrom(ctx, messagesByTopic, "m.topic_id = ?", []any{id}, from, through, limit-len(out), preview, desc)
		if err != nil && ctx.Err() == nil {
			// The index may have been dropped since (a recording started).
			rs, err = p.rowsFrom(ctx, messagesFrom, "", nil, from, through, limit-len(out), preview, desc)
			return append(out, rs...), err
		}
		if err != nil {
			return nil, err
		}
		rest = append(rest, rs...)
	}
	sort.Slice(rest, func(i, j int) bool { return (rest[i].Seq < rest[j].Seq) != desc })
	return append(out, rest[:min(len(rest), limit-len(out))]...), nil
}

// RowsBySeq returns the rows with these seq numbers (in ascending seq order;
// missing ones are skipped), each with at most preview payload bytes.
func (c *Capture) RowsBySeq(ctx context.Context, seqs []int64, preview int) ([]Row, error) {
	if c.parts != nil {
		return c.parts.rowsBySeq(ctx, seqs, preview)
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	query := "SELECT " + c.rowColumns() + ", substr(" + c.payloadSQL("m.") + ", 1, " + strconv.Itoa(max(preview, 1)) +
		")" + messagesFrom + " WHERE m.seq IN (" + joinInts(seqs) + ") ORDER BY m.seq"
	return c.scanRows(ctx, query, nil, len(seqs), preview, nil)
}

// MessagesBySeq streams the whole messages with these seq numbers, in
// ascending seq order (missing ones are skipped): one query.
func (c *Capture) MessagesBySeq(ctx context.Context, seqs []int64) iter.Seq2[Message, error] {
	if c.parts != nil {
		return c.parts.messagesBySeq(ctx, seqs)
	}
	return func(yield func(Message, error) bool) {
		if len(seqs) == 0 {
			return
		}
		rows, err := c.r.QueryContext(ctx, "SELECT "+c.messageColumns()+c.clientColumn()+messagesFrom+
			" WHERE m.seq IN ("+joinInts(seqs)+") ORDER BY m.seq")
		if err != nil {
			yield(Message{}, c.wrap("read messages", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanFull(rows)
			if err != nil {
				yield(Message{}, c.wrap("read messages", err))
				return
			}
			if !yield(m, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(Message{}, c.wrap("read messages", err))
		}
	}
}

func (c *Capture) scanRows(ctx context.Context, query string, args []any, limit, preview int, match func([]byte) bool) ([]Row, error) {
	rows, err := c.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, c.wrap("read messages", err)
	}
	defer rows.Close()
	var out []Row
	var payload sql.RawBytes
	for len(out) < limit && rows.Next() {
		var r Row
		var qos int64
		if err := rows.Scan(&r.Seq, &r.Session, &r.TimeNS, &r.OffsetNS, &r.Topic, &qos, &r.Retain, &r.FromStore, &r.Dup,
			&r.Size, &payload); err != nil {
			return nil, c.wrap("read messages", err)
		}
		if match != nil && !match(payload) {
			continue
		}
		if err := checkQoS(r.Seq, qos); err != nil {
			return nil, c.wrap("read messages", err)
		}
		r.QoS = byte(qos)
		r.Preview = append([]byte{}, payload[:min(len(payload), preview)]...)
		out = append(out, r)
	}
	return out, c.wrap("read messages", rows.Err())
}

// Messages streams whole matching messages with seq > after, ascending; with
// desc, those with seq < after (every one when after is 0), descending.
func (p *Prepared) Messages(ctx context.Context, after int64, desc bool) iter.Seq2[Message, error] {
	if p.set != nil {
		return p.set.messages(ctx, after, desc)
	}
	return func(yield func(Message, error) bool) {
		if p.none {
			return
		}
		var conds []string
		var args []any
		switch {
		case !desc:
			conds, args = append(conds, "m.seq > ?"), append(args, after)
		case after > 0:
			conds, args = append(conds, "m.seq < ?"), append(args, after)
		}
		if p.cond != "" {
			conds = append(conds, p.cond)
		}
		args = append(args, p.args...)
		w := ""
		if len(conds) > 0 {
			w = " WHERE " + strings.Join(conds, " AND ")
		}
		p.stream(ctx, w, args, desc, yield)
	}
}

// stream yields the whole messages of a WHERE clause that pass the checks
// in Go, in seq order (descending with desc).
func (p *Prepared) stream(ctx context.Context, where string, args []any, desc bool, yield func(Message, error) bool) {
	query := "SELECT " + p.c.messageColumns() + p.c.clientColumn() + messagesFrom + where + " ORDER BY m.seq"
	if desc {
		query += " DESC"
	}
	rows, err := p.c.r.QueryContext(ctx, query, args...)
	if err != nil {
		yield(Message{}, p.c.wrap("read messages", err))
		return
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanFull(rows)
		if err != nil {
			yield(Message{}, p.c.wrap("read messages", err))
			return
		}
		if p.matches(&m) && !yield(m, nil) {
			return
		}
	}
	if err := rows.Err(); err != nil {
		yield(Message{}, p.c.wrap("read messages", err))
	}
}

// matches applies the checks in Go to a whole message.
func (p *Prepared) matches(m *Message) bool {
	return (p.match == nil || p.match(m.Payload)) && (p.msgMatch == nil || p.msgMatch(m))
}

// full streams the whole matching messages with seq in [from, through],
// ascending or descending: the reads of a selection with a MessageMatch.
func (p *Prepared) full(ctx context.Context, from, through int64, desc bool) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		where, args := p.whereRange(from, through)
		p.stream(ctx, where, args, desc, yield)
	}
}

// SeqBounds returns the lowest and highest seq (0, 0 for an empty capture).
func (c *Capture) SeqBounds(ctx context.Context) (lo, hi int64, err error) {
	if c.parts != nil {
		return c.parts.seqBounds(ctx)
	}
	var a, b sql.NullInt64
	err = c.r.QueryRowContext(ctx, "SELECT (SELECT min(seq) FROM messages), (SELECT max(seq) FROM messages)").Scan(&a, &b)
	return a.Int64, b.Int64, c.wrap("read messages", err)
}

// TopicCounts returns how many messages each topic id has among seq in
// [from, through]. With the topic index it reads only the index (a few times
// faster than the table for a whole capture); without it (while a session
// records) it reads the table's seq range, so counting only what was added
// since the last call stays cheap.
func (c *Capture) TopicCounts(ctx context.Context, from, through int64) (map[int64]int64, error) {
	if c.parts != nil {
		out := make(map[int64]int64)
		return out, c.parts.topicCounts(ctx, from, through, out)
	}
	const q = " WHERE seq >= ? AND seq <= ? GROUP BY topic_id"
	indexed, err := c.HasTopicIndex(ctx)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if indexed {
		rows, err = c.r.QueryContext(ctx, "SELECT topic_id, count(*) FROM messages INDEXED BY "+topicIndex+q, from, through)
	}
	if !indexed || err != nil { // the index may have been dropped since (a recording started)
		rows, err = c.r.QueryContext(ctx, "SELECT topic_id, count(*) FROM messages"+q, from, through)
	}
	if err != nil {
		return nil, c.wrap("count topics", err)
	}
	defer rows.Close()
	out := make(map[int64]int64)
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, c.wrap("count topics", err)
		}
		out[id] = n
	}
	return out, c.wrap("count topics", rows.Err())
}

// TopicBuckets counts messages per topic id in each bucket of 1<<shift seqs
// (bucket b holds seqs [b<<shift, (b+1)<<shift)) among seq in [from,
// through]: out[id][b-from>>shift] is topic id's count in bucket b. It is
// TopicCounts by bucket, at about the same cost: with the topic index each
// bucket is one query that seeks every topic's range of the index, so the
// whole pass reads each index entry once and no sorting happens. The
// inspector ranks rows of topic filters with it without counting them.
func (c *Capture) TopicBuckets(ctx context.Context, from, through int64, shift uint) (map[int64][]int64, error) {
	if c.parts != nil {
		return c.parts.topicBuckets(ctx, from, through, shift)
	}
	out := make(map[int64][]int64)
	if from > through {
		return out, nil
	}
	query, err := c.bucketQuery(ctx)
	if err != nil {
		return nil, err
	}
	first, last := from>>shift, through>>shift
	for b := first; b <= last; b++ {
		counts := make(map[int64]int64)
		err := c.countRange(ctx, &query, max(from, b<<shift), min(through, (b+1)<<shift-1), counts)
		if err != nil {
			return nil, err
		}
		addBucket(out, counts, b-first, last-first+1)
	}
	return out, nil
}

// addBucket puts one bucket's counts (by topic id) into TopicBuckets'
// result.
func addBucket(out map[int64][]int64, counts map[int64]int64, b, buckets int64) {
	for id, n := range counts {
		v := out[id]
		if v == nil {
			v = make([]int64, buckets)
			out[id] = v
		}
		v[b] = n
	}
}

// plainBucket is the query of countRange without the topic index.
const plainBucket = "SELECT topic_id, count(*) FROM messages WHERE seq >= ? AND seq <= ? GROUP BY topic_id"

// bucketQuery returns the query countRange counts a seq range with: with
// the topic index, one that seeks every topic's range of the index.
func (c *Capture) bucketQuery(ctx context.Context) (string, error) {
	topics, err := c.Topics(ctx)
	if err != nil {
		return "", err
	}
	ids := make([]int64, len(topics))
	for i, t := range topics {
		ids[i] = t.ID
	}
	indexed, err := c.HasTopicIndex(ctx)
	if err != nil || !indexed || len(ids) == 0 {
		return plainBucket, err
	}
	return "SELECT topic_id, count(*) FROM messages INDEXED BY " + topicIndex + " WHERE topic_id IN (" + joinInts(ids) +
		") AND seq >= ? AND seq <= ? GROUP BY topic_id", nil
}

// countRange counts the messages per topic id among seq [from, through]
// into counts with *query (bucketQuery), which becomes the plain one when
// the topic index has been dropped since (a recording started).
func (c *Capture) countRange(ctx context.Context, query *string, from, through int64, counts map[int64]int64) error {
	add := func(id, n int64) { counts[id] = n }
	err := c.countBucket(ctx, *query, from, through, add)
	if err != nil && *query != plainBucket && ctx.Err() == nil {
		*query = plainBucket
		clear(counts)
		err = c.countBucket(ctx, *query, from, through, add)
	}
	return err
}

func (c *Capture) countBucket(ctx context.Context, query string, from, through int64, add func(id, n int64)) error {
	rows, err := c.r.QueryContext(ctx, query, from, through)
	if err != nil {
		return c.wrap("count topics", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return c.wrap("count topics", err)
		}
		add(id, n)
	}
	return c.wrap("count topics", rows.Err())
}

// PrevOnTopic returns the last message before seq on the same topic.
func (c *Capture) PrevOnTopic(ctx context.Context, seq int64, topic string) (Message, bool, error) {
	if c.parts != nil {
		return c.parts.prevOnTopic(ctx, seq, topic)
	}
	row := c.r.QueryRowContext(ctx, "SELECT "+c.messageColumns()+c.clientColumn()+messagesFrom+
		" WHERE m.topic_id = (SELECT id FROM topics WHERE name = ?) AND m.seq < ? ORDER BY m.seq DESC LIMIT 1", topic, seq)
	m, err := scanFull(row)
	if err == sql.ErrNoRows {
		return Message{}, false, nil
	}
	if err != nil {
		return Message{}, false, c.wrap("read message", err)
	}
	return m, true, nil
}

// SeqAtTime returns the first seq whose receive time is at or after tsNS
// (Unix ns), or 0 when there is none. Binary search per session.
func (c *Capture) SeqAtTime(ctx context.Context, tsNS int64) (int64, error) {
	if c.parts != nil {
		return c.parts.seqAtTime(ctx, tsNS)
	}
	spans, err := c.sessionSpans(ctx, Query{FromTime: &tsNS})
	if err != nil || len(spans) == 0 {
		return 0, err
	}
	return spans[0].lo, nil
}

// SeqAtOffset returns the first seq of session (0: the first session with
// messages) whose offset is at or after offsetNS, or 0 when there is none.
func (c *Capture) SeqAtOffset(ctx context.Context, session, offsetNS int64) (int64, error) {
	if c.parts != nil {
		return c.parts.seqAtOffset(ctx, session, offsetNS)
	}
	spans, err := c.sessionSpans(ctx, Query{Session: session, FromOffset: &offsetNS})
	if err != nil || len(spans) == 0 {
		return 0, err
	}
	return spans[0].lo, nil
}
