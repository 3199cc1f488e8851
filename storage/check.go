package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Finding is one thing Check found: a problem (the capture is damaged) or a
// note (worth knowing, not damage).
type Finding struct {
	// Check names what was checked: file, sqlite, header, schema,
	// sessions, messages, order, holes, events (problems); unclosed,
	// dropped, index, wal, spool (notes).
	Check   string `json:"check"`
	Session int64  `json:"session,omitempty"`
	Seq     int64  `json:"seq,omitempty"`
	Detail  string `json:"detail"`
}

// CheckReport is the verdict of Check.
type CheckReport struct {
	Path          string `json:"file"`
	FormatVersion int    `json:"format_version"`
	// SQLiteCheck is the SQLite check that ran: quick_check or
	// integrity_check (full).
	SQLiteCheck string `json:"sqlite_check"`
	Sessions    int64  `json:"sessions"`
	Topics      int64  `json:"topics"`
	Messages    int64  `json:"messages"`
	Events      int64  `json:"events"`
	FirstSeq    int64  `json:"first_seq"`
	LastSeq     int64  `json:"last_seq"`
	// Problems are damage: broken SQLite structure or broken mqtape
	// invariants. Each kind is listed up to findingsPerCheck times, then
	// summarised.
	Problems []Finding `json:"problems"`
	// Notes are not damage: sessions that were not closed cleanly (still
	// recording, or the recorder was killed), drops, a missing topic index,
	// a write-ahead log that holds data.
	Notes []Finding `json:"notes"`

	counts map[string]int
}

// OK reports whether no problem was found.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 }

// findingsPerCheck caps how many findings of one kind are listed.
const findingsPerCheck = 20

func (r *CheckReport) problem(f Finding) {
	r.counts[f.Check]++
	if r.counts[f.Check] <= findingsPerCheck {
		r.Problems = append(r.Problems, f)
	}
}

func (r *CheckReport) note(f Finding) { r.Notes = append(r.Notes, f) }

// CheckOptions choose how thorough Check is.
type CheckOptions struct {
	// Full runs SQLite's integrity_check (also verifies every index against
	// its table) instead of quick_check.
	Full bool
}

// Check verifies a capture without modifying it: SQLite's own structural
// check, then mqtape's invariants: the format marker and version, the
// tables, every message's session, topic and publisher exist, seq has no
// holes within a session and offset_ns and ts_ns never decrease within a
// session, each session's first_seq/last_seq match its messages, and every
// event's session exists. Sessions not closed cleanly, drops and a missing
// topic index are notes, not problems.
//
// An error means no verdict was possible: the file is missing, not an
// mqtape capture, or of a newer format (ErrNotFound, ErrNotCapture,
// ErrNewerVersion). Damage is reported in CheckReport.Problems.
func Check(ctx context.Context, path string, opts CheckOptions) (*CheckReport, error) {
	rep := &CheckReport{Path: path, SQLiteCheck: "quick_check", Problems: []Finding{}, Notes: []Finding{},
		counts: make(map[string]int)}
	if opts.Full {
		rep.SQLiteCheck = "integrity_check"
	}
	src, err := openDamaged(ctx, path)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			// The header itself is unreadable.
			rep.problem(Finding{Check: "header", Detail: err.Error()})
			return rep, nil
		}
		return nil, err
	}
	defer src.close()
	rep.FormatVersion = src.version
	checkFile(ctx, rep, src)

	// One read transaction: one consistent snapshot, also of a capture
	// that is being recorded.
	tx, err := src.db.BeginTx(ctx, nil)
	if err != nil {
		rep.problem(Finding{Check: "sqlite", Detail: err.Error()})
		return rep, nil
	}
	defer tx.Rollback()

	ck := &checker{ctx: ctx, q: tx, rep: rep, codec: src.codec}
	// The schema first: SQLite's own check evaluates CHECK constraints
	// and index expressions, so a schema that is not mqtape's is listed
	// and nothing else runs.
	sound, foreign := ck.schema(src)
	if !foreign {
		ck.sqlite()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !sound {
		ck.summarise()
		return rep, nil
	}
	if err := ck.sessions(); err != nil {
		return nil, err
	}
	if err := ck.names(); err != nil {
		return nil, err
	}
	if err := ck.messages(src.clients); err != nil {
		return nil, err
	}
	if err := ck.events(); err != nil {
		return nil, err
	}
	ck.compare()
	ck.summarise()
	return rep, nil
}

// checker holds what Check learns while it reads.
type checker struct {
	ctx context.Context
	q   querier
	rep *CheckReport

	sessionList []checkSession
	session     map[int64]*checkSession
	topics      map[int64]bool
	clients     map[int64]bool
	seen        map[int64]*seqAcc // per session, from the messages
	index       bool
	codec       *codec // decompresses payloads to check them (format 4)
}

type checkSession struct {
	id                  int64
	firstSeq, lastSeq   *int64
	endedNS, lastNS     int64
	dropped, startedNS  int64
	stopReason, filters string
}

type seqAcc struct {
	first, last, count int64
	lastOff, lastTS    int64
}

// checkFile adds what the file itself shows: truncation, a missing format
// version, a schema only a damage-tolerant reader reads; and, as notes, a
// write-ahead log or spool files beside it.
func checkFile(ctx context.Context, rep *CheckReport, src *damaged) {
	path := src.path
	if src.truncated != "" {
		rep.problem(Finding{Check: "file", Detail: src.truncated})
	}
	if src.version == 0 {
		rep.problem(Finding{Check: "header", Detail: "no format version (PRAGMA user_version is 0)"})
	}
	// openDamaged reads past a malformed schema (to salvage what it can);
	// a reader that does not would refuse the file.
	if strict, _, err := openReadDB(ctx, path, ""); err == nil {
		var n int
		if err := strict.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
			rep.problem(Finding{Check: "schema", Detail: "unreadable: " + err.Error()})
		}
		strict.Close()
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 0 {
		rep.note(Finding{Check: "wal", Detail: fmt.Sprintf("%s-wal holds %d bytes not yet checkpointed into the file "+
			"(a recorder is running or was killed): copy %s, %s-wal and %s-shm together",
			path, fi.Size(), path, path, path)})
	}
	if files, err := SpoolFiles(path); err == nil && len(files) > 0 {
		rep.note(Finding{Check: "spool", Detail: fmt.Sprintf("%d spool files beside the capture (%s…) hold QoS 1/2 messages "+
			"a recorder received and acknowledged before they were committed: a recorder is running, or was killed and "+
			"the next `mqtape record -o %s` adds them", len(files), filepath.Base(files[0]), path)})
	}
}

// sqlite runs SQLite's own check and reports each line it finds.
func (c *checker) sqlite() {
	rows, err := c.q.QueryContext(c.ctx, fmt.Sprintf("PRAGMA %s(%d)", c.rep.SQLiteCheck, findingsPerCheck+1))
	if err != nil {
		c.rep.problem(Finding{Check: "sqlite", Detail: err.Error()})
		return
	}
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			break
		}
		lines = append(lines, s)
	}
	if err := rows.Err(); err != nil {
		lines = append(lines, err.Error())
	}
	rows.Close()
	if len(lines) == 1 && lines[0] == "ok" {
		return
	}
	for _, l := range lines {
		for _, part := range strings.Split(l, "\n") {
			if part != "" && part != "*** in database main ***" {
				c.rep.problem(Finding{Check: "sqlite", Detail: part})
			}
		}
	}
}

// schema lists every schema object that is not mqtape's and every one that
// is missing. sound is false when the tables cannot be read safely or at
// all; foreign is true when the file defines objects of its own (or
// changed mqtape's), which nothing may run.
func (c *checker) schema(src *damaged) (sound, foreign bool) {
	objs, err := readSchema(c.ctx, c.q)
	if err != nil {
		c.rep.problem(Finding{Check: "schema", Detail: "unreadable: " + err.Error()})
		return false, false
	}
	if src.version < 1 {
		return false, false // reported by checkFile
	}
	others, missing, err := schemaProblems(src.version, objs)
	if err != nil {
		c.rep.problem(Finding{Check: "schema", Detail: err.Error()})
		return false, false
	}
	for _, p := range append(others, missing...) {
		c.rep.problem(Finding{Check: "schema", Detail: p})
	}
	for _, o := range objs {
		c.index = c.index || (o.Type == "index" && o.Name == topicIndex)
	}
	return len(others)+len(missing) == 0, len(others) > 0
}

func (c *checker) sessions() error {
	c.session = make(map[int64]*checkSession)
	w := &walker{q: c.q, cols: 9, maxKey: maxKey(c.ctx, c.q, "sessions", "id"),
		query: `SELECT id, first_seq, last_seq, ended_ns, last_ns, dropped, started_ns, stop_reason, filters
			FROM sessions WHERE id >= ? ORDER BY id LIMIT ?`,
		row: func(id int64, v []any) error {
			s := checkSession{id: id, endedNS: asInt(v[3]), lastNS: asInt(v[4]), dropped: asInt(v[5]),
				startedNS: asInt(v[6]), stopReason: asString(v[7]), filters: asString(v[8])}
			if v[1] != nil {
				n := asInt(v[1])
				s.firstSeq = &n
			}
			if v[2] != nil {
				n := asInt(v[2])
				s.lastSeq = &n
			}
			c.sessionList = append(c.sessionList, s)
			return nil
		},
		gap: func(from, to int64, cause error) {
			c.rep.problem(Finding{Check: "sessions", Detail: fmt.Sprintf("session rows %s unreadable: %v", keyRange(from, to), cause)})
		},
	}
	if err := w.run(c.ctx); err != nil {
		return err
	}
	for i := range c.sessionList {
		s := &c.sessionList[i]
		c.session[s.id] = s
		var f []Filter
		if err := json.Unmarshal([]byte(s.filters), &f); err != nil {
			c.rep.problem(Finding{Check: "sessions", Session: s.id, Detail: fmt.Sprintf("filters are not valid JSON: %v", err)})
		}
		if s.endedNS == 0 {
			last := "nothing committed"
			if s.lastNS != 0 {
				last = "last commit " + time.Unix(0, s.lastNS).UTC().Format(time.RFC3339Nano)
			}
			c.rep.note(Finding{Check: "unclosed", Session: s.id, Detail: fmt.Sprintf(
				"session %d was not closed cleanly (still recording, or the recorder was killed); %s", s.id, last)})
		}
		if s.dropped > 0 {
			c.rep.note(Finding{Check: "dropped", Session: s.id, Detail: fmt.Sprintf(
				"session %d: %d messages were received but not stored (see its queue_overflow events)", s.id, s.dropped)})
		}
	}
	c.rep.Sessions = int64(len(c.sessionList))
	return nil
}

// names reads the ids of topics and publisher client ids.
func (c *checker) names() error {
	c.topics = make(map[int64]bool)
	c.clients = make(map[int64]bool)
	for _, t := range []struct {
		table string
		into  map[int64]bool
	}{{"topics", c.topics}, {"clients", c.clients}} {
		if t.table == "clients" && c.rep.FormatVersion < 2 {
			continue
		}
		w := &walker{q: c.q, cols: 1, maxKey: maxKey(c.ctx, c.q, t.table, "id"),
			query: "SELECT id FROM " + t.table + " WHERE id >= ? ORDER BY id LIMIT ?",
			row: func(id int64, _ []any) error {
				t.into[id] = true
				return nil
			},
			gap: func(from, to int64, cause error) {
				c.rep.problem(Finding{Check: "messages", Detail: fmt.Sprintf("%s rows %s unreadable: %v", t.table, keyRange(from, to), cause)})
			},
		}
		if err := w.run(c.ctx); err != nil {
			return err
		}
	}
	c.rep.Topics = int64(len(c.topics))
	return nil
}

// messages makes one pass over the messages in seq order.
func (c *checker) messages(clients bool) error {
	c.seen = make(map[int64]*seqAcc)
	// The payload itself is read only when it is compressed, to check it
	// decompresses.
	cols := messageCols("seq, session, ts_ns, offset_ns, topic_id, qos, typeof(payload)", 7, clients, c.rep.FormatVersion)
	if cols.zip > 0 {
		cols = messageCols("seq, session, ts_ns, offset_ns, topic_id, qos, typeof(payload), "+
			"CASE WHEN zstd_dict IS NULL THEN NULL ELSE payload END", 8, clients, c.rep.FormatVersion)
	}
	m := &messageScan{c: c, cols: cols, missingSession: make(map[int64]int64), missingTopic: make(map[int64]int64),
		missingClient: make(map[int64]int64)}
	w := &walker{q: c.q, cols: cols.n, maxKey: max(c.maxSeq(), maxKey(c.ctx, c.q, "messages", "seq")),
		query: "SELECT " + cols.list + " FROM messages WHERE seq >= ? ORDER BY seq LIMIT ?",
		row:   m.row, gap: m.gap}
	if err := w.run(c.ctx); err != nil {
		return err
	}
	m.totals()
	if !c.index && c.rep.Messages > 0 {
		c.rep.note(Finding{Check: "index", Detail: "no per-topic index (a session is still recording or was not closed " +
			"cleanly); topic queries scan, and the next clean session end rebuilds it"})
	}
	return nil
}

// maxSeq returns the highest last_seq of the sessions.
func (c *checker) maxSeq() int64 {
	var n int64
	for _, s := range c.sessionList {
		if s.lastSeq != nil {
			n = max(n, *s.lastSeq)
		}
	}
	return n
}

// messageScan is the state of checker.messages.
type messageScan struct {
	c    *checker
	cols msgCols
	// Messages per id of a session, topic or client id that does not exist.
	missingSession, missingTopic, missingClient map[int64]int64
	// The previous message read; prevSeq is 0 after an unreadable range.
	prevSeq, prevSession int64
}

// row checks one readable message.
func (m *messageScan) row(seq int64, v []any) error {
	sess, ts, off := asInt(v[1]), asInt(v[2]), asInt(v[3])
	m.c.rep.Messages++
	if m.c.rep.FirstSeq == 0 {
		m.c.rep.FirstSeq = seq
	}
	m.c.rep.LastSeq = seq
	m.fields(seq, sess, v)
	m.holes(seq, sess)
	m.track(seq, sess, ts, off)
	return nil
}

// fields checks what a message refers to and holds.
func (m *messageScan) fields(seq, sess int64, v []any) {
	tid, qos := asInt(v[4]), asInt(v[5])
	if _, ok := m.c.session[sess]; !ok {
		m.missing(m.missingSession, sess, sess, seq,
			fmt.Sprintf("message seq %d belongs to session %d, which does not exist", seq, sess))
	}
	if !m.c.topics[tid] {
		m.missing(m.missingTopic, tid, sess, seq, fmt.Sprintf("message seq %d has topic id %d, which does not exist", seq, tid))
	}
	if p := m.cols.props; p > 0 && v[p] != nil {
		if js := asString(v[p]); !json.Valid([]byte(js)) {
			m.problem(sess, seq, fmt.Sprintf("message seq %d: MQTT 5 properties are not valid JSON", seq))
		}
	}
	if cl := m.cols.client; cl > 0 && v[cl] != nil && !m.c.clients[asInt(v[cl])] {
		ref := asInt(v[cl])
		m.missing(m.missingClient, ref, sess, seq, fmt.Sprintf("message seq %d has client_ref %d, which does not exist", seq, ref))
	}
	if qos < 0 || qos > 2 {
		m.problem(sess, seq, fmt.Sprintf("message seq %d has QoS %d", seq, qos))
	}
	if typ := asString(v[6]); typ != "blob" {
		m.problem(sess, seq, fmt.Sprintf("message seq %d has a payload of type %s, not blob", seq, typ))
	}
	if z := m.cols.zip; z > 0 && v[z] != nil {
		if _, err := m.c.codec.decode(asInt(v[z]), asInt(v[z+1]), seq, asBytes(v[7])); err != nil {
			m.problem(sess, seq, err.Error())
		}
	}
}

// problem reports a finding about one message.
func (m *messageScan) problem(sess, seq int64, detail string) {
	m.c.rep.problem(Finding{Check: "messages", Session: sess, Seq: seq, Detail: detail})
}

// missing counts a message of session sess referring to id, which does not
// exist; the first such message of each id is reported.
func (m *messageScan) missing(counts map[int64]int64, id, sess, seq int64, detail string) {
	if counts[id] == 0 {
		m.problem(sess, seq, detail)
	}
	counts[id]++
}

// holes reports seq numbers missing between two messages of a session.
func (m *messageScan) holes(seq, sess int64) {
	if m.prevSeq != 0 && sess == m.prevSession && seq > m.prevSeq+1 {
		m.c.rep.problem(Finding{Check: "holes", Session: sess, Seq: m.prevSeq + 1,
			Detail: fmt.Sprintf("session %d: seq %s missing", sess, keyRange(m.prevSeq+1, seq-1))})
	}
	m.prevSeq, m.prevSession = seq, sess
}

// track adds a message to its session's seq range and reports one that
// goes back in time.
func (m *messageScan) track(seq, sess, ts, off int64) {
	a := m.c.seen[sess]
	if a == nil {
		m.c.seen[sess] = &seqAcc{first: seq, last: seq, count: 1, lastOff: off, lastTS: ts}
		return
	}
	if off < a.lastOff || ts < a.lastTS {
		m.c.rep.problem(Finding{Check: "order", Session: sess, Seq: seq, Detail: fmt.Sprintf(
			"session %d: seq %d goes back in time (offset_ns %d after %d, ts_ns %d after %d)",
			sess, seq, off, a.lastOff, ts, a.lastTS)})
	}
	a.last, a.lastOff, a.lastTS = seq, max(off, a.lastOff), max(ts, a.lastTS)
	a.count++
}

// gap reports an unreadable seq range.
func (m *messageScan) gap(from, to int64, cause error) {
	m.c.rep.problem(Finding{Check: "messages", Seq: from,
		Detail: fmt.Sprintf("messages seq %s unreadable: %v", keyRange(from, to), cause)})
	m.prevSeq = 0
}

// totals reports how many messages refer to each kind of missing row.
func (m *messageScan) totals() {
	for _, t := range []struct {
		what string
		n    map[int64]int64
	}{{"sessions", m.missingSession}, {"topics", m.missingTopic}, {"client ids", m.missingClient}} {
		if len(t.n) > 0 {
			var total int64
			for _, v := range t.n {
				total += v
			}
			m.c.rep.problem(Finding{Check: "messages", Detail: fmt.Sprintf("%d messages refer to %d %s that do not exist", total, len(t.n), t.what)})
		}
	}
}

func (c *checker) events() error {
	missing := make(map[int64]int64)
	w := &walker{q: c.q, cols: 2, maxKey: maxKey(c.ctx, c.q, "events", "id"),
		query: "SELECT id, session FROM events WHERE id >= ? ORDER BY id LIMIT ?",
		row: func(id int64, v []any) error {
			c.rep.Events++
			if s := asInt(v[1]); c.session[s] == nil {
				if missing[s] == 0 {
					c.rep.problem(Finding{Check: "events", Session: s,
						Detail: fmt.Sprintf("event %d belongs to session %d, which does not exist", id, s)})
				}
				missing[s]++
			}
			return nil
		},
		gap: func(from, to int64, cause error) {
			c.rep.problem(Finding{Check: "events", Detail: fmt.Sprintf("events %s unreadable: %v", keyRange(from, to), cause)})
		},
	}
	return w.run(c.ctx)
}

// compare checks each session's first_seq/last_seq against its messages.
func (c *checker) compare() {
	for _, s := range c.sessionList {
		a := c.seen[s.id]
		switch {
		case a == nil && (s.firstSeq != nil || s.lastSeq != nil):
			c.rep.problem(Finding{Check: "sessions", Session: s.id, Detail: fmt.Sprintf(
				"session %d: first_seq/last_seq are %s but it has no messages", s.id, seqPair(s.firstSeq, s.lastSeq))})
		case a != nil && (s.firstSeq == nil || s.lastSeq == nil || *s.firstSeq != a.first || *s.lastSeq != a.last):
			c.rep.problem(Finding{Check: "sessions", Session: s.id, Detail: fmt.Sprintf(
				"session %d: first_seq/last_seq are %s but its messages span %d–%d", s.id, seqPair(s.firstSeq, s.lastSeq), a.first, a.last)})
		}
	}
}

// summarise adds a line for each kind of problem listed only in part.
func (c *checker) summarise() {
	var kinds []string
	for k, n := range c.rep.counts {
		if n > findingsPerCheck {
			kinds = append(kinds, k)
		}
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		c.rep.Problems = append(c.rep.Problems, Finding{Check: k,
			Detail: fmt.Sprintf("… and %d more %s problems", c.rep.counts[k]-findingsPerCheck, k)})
	}
}

func keyRange(from, to int64) string {
	switch {
	case to < 0:
		return fmt.Sprintf("%d to the end", from)
	case to == from:
		return fmt.Sprint(from)
	}
	return fmt.Sprintf("%d–%d", from, to)
}

func seqPair(first, last *int64) string {
	f := func(p *int64) string {
		if p == nil {
			return "NULL"
		}
		return fmt.Sprint(*p)
	}
	return strings.Join([]string{f(first), f(last)}, "/")
}
