package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqtape/mqtape/mqtt"
)

// LostRange is a range of rows that could not be read.
type LostRange struct {
	Table string `json:"table"` // messages, sessions, topics, clients, events
	From  int64  `json:"from"`  // first key (seq for messages, id otherwise)
	To    int64  `json:"to"`    // last key; -1: to the end of the table
	Cause string `json:"cause"`
}

// RecoverReport says what Recover salvaged and what it lost.
type RecoverReport struct {
	In        string `json:"in"`
	Out       string `json:"out"`
	InVersion int    `json:"in_format_version"`
	// Copied into Out.
	Sessions int64 `json:"sessions"`
	Topics   int64 `json:"topics"`
	Messages int64 `json:"messages"`
	Events   int64 `json:"events"`
	Bytes    int64 `json:"payload_bytes"`
	// Lost lists the unreadable ranges of every table.
	Lost []LostRange `json:"lost"`
	// LostMessages counts the seq numbers in unreadable message ranges
	// (an upper bound when the capture had holes; a range running to the
	// end of the table is counted up to the highest seq the sessions
	// table knows) plus the messages dropped for NoTopic.
	LostMessages int64 `json:"lost_messages"`
	// NoTopic counts messages that were read but whose topic name was
	// unreadable: they are left out (a message without its topic cannot
	// be replayed or filtered).
	NoTopic int64 `json:"messages_without_topic"`
	// LostEvents counts events read but left out, and ids in unreadable
	// event ranges.
	LostEvents int64 `json:"lost_events"`
	// Recreated lists input sessions whose own row was unreadable but whose
	// messages or events were not: they are copied into a session with
	// source "recovered" and placeholder metadata.
	Recreated []int64 `json:"recreated_sessions"`
	// Renumbered maps input session ids to output ids where they differ.
	Renumbered map[int64]int64 `json:"renumbered_sessions,omitempty"`
	// Repaired lists the rows copied with a value changed because it broke
	// the format's invariants (a time going back, a QoS outside 0–2).
	Repaired []Repair `json:"repaired"`
	// Notes are other things worth knowing (e.g. a truncated file).
	Notes []string `json:"notes"`
}

// Repair is one kind of repair Recover made to the messages of a session.
type Repair struct {
	Session  int64  `json:"session"` // input session id
	What     string `json:"what"`
	Count    int64  `json:"count"`
	FirstSeq int64  `json:"first_seq"` // input seq of the first message repaired
}

// Complete reports whether nothing was found missing.
func (r *RecoverReport) Complete() bool {
	return len(r.Lost) == 0 && r.LostMessages == 0 && r.LostEvents == 0 && len(r.Recreated) == 0 && len(r.Repaired) == 0
}

// SourceRecovered is the session source of sessions Recover had to
// re-create because their row was unreadable.
const SourceRecovered = "recovered"

// Recover copies whatever can be read from the capture at in into a new
// capture at out: sessions, topics, messages (with their publisher client
// ids) and events. It reads in by key ranges and skips what it cannot
// read, so a damaged page costs the rows on it, not the rest. in is opened
// read-only and never modified; out must not exist. Messages get new,
// contiguous sequence numbers in out. The report says what was copied and
// what was lost; an error means out could not be written (what was written
// up to then is a valid capture) or in could not be read at all.
func Recover(ctx context.Context, in, out string) (*RecoverReport, error) {
	rep := &RecoverReport{In: in, Out: out, Lost: []LostRange{}, Recreated: []int64{}, Repaired: []Repair{}, Notes: []string{}}
	if _, err := os.Stat(out); err == nil {
		return rep, fmt.Errorf("recover into %q: the file exists (recover writes a new capture)", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("recover into %q: %w", out, err)
	}
	src, err := openDamaged(ctx, in)
	if err != nil {
		return rep, err
	}
	defer src.close()
	rep.InVersion = src.version
	if src.truncated != "" {
		// SQLite reads the missing tail of a cut page as zeros and may
		// return rows made of them: read a copy cut at a page boundary
		// instead, so the partial page is reported lost, not copied.
		rep.Notes = append(rep.Notes, src.truncated+"; the partial last page is not used")
		tmp, err := pageAlignedCopy(in, filepath.Dir(out))
		if err != nil {
			return rep, err
		}
		defer os.Remove(tmp)
		aligned, err := openDamaged(ctx, tmp)
		if err != nil {
			// Errors name the input, not the temporary copy.
			return rep, renamedError{err, strings.ReplaceAll(err.Error(), tmp, in)}
		}
		defer aligned.close()
		src = aligned
	}
	if err := schemaError(in, src.schemaProblems); err != nil {
		return rep, err
	}
	r := &recovery{ctx: ctx, src: src, rep: rep}
	if err := r.readMetadata(); err != nil {
		return rep, err
	}
	dst, err := OpenWrite(out)
	if err != nil {
		return rep, err
	}
	r.dst = dst
	dst.DeferIndexes()
	err = r.copy()
	if cerr := dst.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %q: %w", out, cerr)
	}
	if err != nil {
		return rep, fmt.Errorf("recover into %q (what was written so far is a valid capture): %w", out, err)
	}
	return rep, nil
}

// damaged is a capture opened for reading whatever can be read.
type damaged struct {
	path      string
	db        *sql.DB
	uri       string // how db opened path (openReadDB)
	version   int
	clients   bool   // has the clients table (format 2)
	codec     *codec // decompresses payloads (format 4)
	truncated string // set when the file is shorter than its header says
	// schemaProblems lists the schema objects the file defines or changed:
	// the tables are not read then (they could run the file's own SQL).
	// Missing tables are damage, met by the readers.
	schemaProblems []string
}

// openDamaged opens a capture read-only without refusing damage: only a
// file that is not an SQLite capture at all (or of a newer format) is
// refused.
func openDamaged(ctx context.Context, path string) (*damaged, error) {
	d := &damaged{path: path}
	if err := sniff(path, false); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		// A checkpoint that could not finish (the disk filled up, the
		// recorder was killed) leaves the file shorter than its header
		// says while the write-ahead log holds the pages: SQLite replays
		// it, so only a file without one is truncated.
		if fi, werr := os.Stat(path + "-wal"); werr != nil || fi.Size() == 0 {
			d.truncated = strings.TrimPrefix(err.Error(), fmt.Sprintf("open capture %q: ", path))
		}
	}
	db, uri, err := openReadDB(ctx, path, "_pragma=writable_schema(1)")
	if err != nil {
		return nil, err
	}
	d.db, d.uri = db, uri
	d.codec = newCodec(db)
	c := &Capture{path: path}
	var appID, version int
	if err := db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		d.close()
		return nil, c.wrap("read header", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		d.close()
		return nil, c.wrap("read header", err)
	}
	switch {
	case appID != ApplicationID:
		d.close()
		return nil, fmt.Errorf("open capture %q: %w (application_id %d)", path, ErrNotCapture, appID)
	case version > FormatVersion:
		d.close()
		return nil, fmt.Errorf("open capture %q: %w (file has version %d, this mqtape reads up to %d; upgrade mqtape)",
			path, ErrNewerVersion, version, FormatVersion)
	}
	d.version = version
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='clients'").Scan(&n); err != nil {
		d.close()
		return nil, c.wrap("read schema", err)
	}
	d.clients = n > 0
	// An unreadable schema is damage, left for the walkers to meet; a
	// readable one must be mqtape's before anything reads a table.
	if objs, err := readSchema(ctx, db); err == nil && version >= 1 {
		if d.schemaProblems, _, err = schemaProblems(version, objs); err != nil {
			d.close()
			return nil, c.wrap("check schema", err)
		}
	}
	return d, nil
}

// close closes the file.
func (d *damaged) close() error {
	d.codec.close()
	return d.db.Close()
}

// renamedError is err with its text changed (e.g. a temporary file's name
// replaced by the file the user named); errors.Is still sees err.
type renamedError struct {
	err error
	msg string
}

func (e renamedError) Error() string { return e.msg }
func (e renamedError) Unwrap() error { return e.err }

// pageAlignedCopy copies the whole pages of the file at path into a new
// temporary file in dir and returns its name.
func pageAlignedCopy(path, dir string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open capture %q: %w", path, err)
	}
	defer f.Close()
	hdr := make([]byte, 100)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return "", fmt.Errorf("read capture %q: %w", path, err)
	}
	pageSize := headerPageSize(hdr)
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("read capture %q: %w", path, err)
	}
	if fi.Size() < pageSize {
		return "", fmt.Errorf("open capture %q: %w: only %d bytes are left, less than its first page (%d bytes): nothing can be read",
			path, ErrCorrupt, fi.Size(), pageSize)
	}
	tmp, err := os.CreateTemp(dir, ".mqtape-recover-*.db")
	if err != nil {
		return "", fmt.Errorf("recover: temporary copy: %w", err)
	}
	n := fi.Size() / pageSize * pageSize
	if _, err := io.Copy(tmp, io.NewSectionReader(f, 0, n)); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", fmt.Errorf("recover: temporary copy: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("recover: temporary copy: %w", err)
	}
	return tmp.Name(), nil
}

// openReadDB opens a capture file read-only (extra: more URI parameters),
// leaving no file behind.
//
// Without a write-ahead log beside it no writer has the file open (a
// recorder's connection keeps its -wal while it runs) and the file holds
// everything committed: it is opened immutable, so SQLite creates no -wal
// or -shm beside it, takes no locks and needs no write access to the
// directory. With a -wal (a recorder writing, or one that was killed
// before it could checkpoint) it is opened read-only the usual way, so
// what the log holds is read too; the reader leaves the -wal and -shm as
// it found them. A capture opened immutable does not see a recording
// started into it later. uri is how SQLite was told to open it ("mode=ro",
// maybe with "&immutable=1"): the URI parameters that open it the same
// way elsewhere (fileURI).
func openReadDB(ctx context.Context, path, extra string) (db *sql.DB, uri string, err error) {
	params := "mode=ro"
	if extra != "" {
		params += "&" + extra
	}
	if _, err := os.Lstat(path + "-wal"); errors.Is(err, fs.ErrNotExist) {
		db, err := openDB(path, params+"&immutable=1")
		return db, "mode=ro&immutable=1", err
	}
	db, err = openDB(path, params)
	if err != nil {
		return nil, "", err
	}
	// In a directory nobody may write to (a read-only mount) SQLite cannot
	// create the -shm it needs and refuses to open the file. When no log
	// holds data, no writer can exist: open it immutable then.
	var n int
	err = db.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "unable to open") || walHasData(path) {
		return db, "mode=ro", nil // other errors are for the caller to meet and word
	}
	db.Close()
	db, err = openDB(path, params+"&immutable=1")
	return db, "mode=ro&immutable=1", err
}

// recovery is one run of Recover.
type recovery struct {
	ctx context.Context
	src *damaged
	dst *Capture
	rep *RecoverReport

	sessions []SessionInfo
	topics   map[int64]string
	clients  map[int64]string
	maxSeq   int64     // highest seq the sessions table knows
	ranges   []seqSpan // the seq ranges the sessions table gives
	out      map[int64]*Session

	lastNS     map[*Session]int64 // latest message time written per output session
	topicsUsed map[int64]bool     // ids of the topics of the copied messages
}

func (r *recovery) lost(table string, from, to int64, cause error) {
	msg := cause.Error()
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	r.rep.Lost = append(r.rep.Lost, LostRange{Table: table, From: from, To: to, Cause: msg})
}

// maxKey returns the highest key of a table when it can be read, else 0.
func maxKey(ctx context.Context, q querier, table, key string) int64 {
	var n sql.NullInt64
	if err := q.QueryRowContext(ctx, "SELECT max("+key+") FROM "+table).Scan(&n); err != nil {
		return 0
	}
	return n.Int64
}

// readMetadata reads the sessions, topics and publisher client ids.
func (r *recovery) readMetadata() error {
	ctx, db := r.ctx, r.src.db
	w := &walker{q: db, cols: 16, maxKey: maxKey(ctx, db, "sessions", "id"),
		query: `SELECT id, source, broker, client_id, protocol, clean_session, filters, started_ns, last_ns, ended_ns,
			stop_reason, first_seq, last_seq, dropped, mqtape_version, host FROM sessions WHERE id >= ? ORDER BY id LIMIT ?`,
		row: func(id int64, v []any) error {
			s := SessionInfo{ID: id, Source: asString(v[1]), Broker: asString(v[2]), ClientID: asString(v[3]),
				Protocol: int(asInt(v[4])), CleanSession: asInt(v[5]) != 0, StartedNS: asInt(v[7]), LastNS: asInt(v[8]),
				EndedNS: asInt(v[9]), StopReason: asString(v[10]), Dropped: asInt(v[13]), Version: asString(v[14]),
				Host: asString(v[15])}
			if err := json.Unmarshal([]byte(asString(v[6])), &s.Filters); err != nil {
				r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("session %d: unreadable filters (%v); copied without them", id, err))
				s.Filters = nil
			}
			r.maxSeq = max(r.maxSeq, asInt(v[12]))
			if v[11] != nil && v[12] != nil {
				r.ranges = append(r.ranges, seqSpan{asInt(v[11]), asInt(v[12]) + 1})
			}
			r.sessions = append(r.sessions, s)
			return nil
		},
		gap: func(from, to int64, cause error) { r.lost("sessions", from, to, cause) },
	}
	if err := w.run(ctx); err != nil {
		return err
	}
	r.topics = make(map[int64]string)
	w = &walker{q: db, cols: 2, maxKey: maxKey(ctx, db, "topics", "id"),
		query: "SELECT id, name FROM topics WHERE id >= ? ORDER BY id LIMIT ?",
		row: func(id int64, v []any) error {
			if name, ok := v[1].(string); ok {
				r.topics[id] = name
			} else if b, ok := v[1].([]byte); ok {
				r.topics[id] = string(b)
			}
			return nil
		},
		gap: func(from, to int64, cause error) { r.lost("topics", from, to, cause) },
	}
	if err := w.run(ctx); err != nil {
		return err
	}
	r.clients = make(map[int64]string)
	if r.src.clients {
		w = &walker{q: db, cols: 2, maxKey: maxKey(ctx, db, "clients", "id"),
			query: "SELECT id, client_id FROM clients WHERE id >= ? ORDER BY id LIMIT ?",
			row: func(id int64, v []any) error {
				r.clients[id] = asString(v[1])
				return nil
			},
			gap: func(from, to int64, cause error) { r.lost("clients", from, to, cause) },
		}
		if err := w.run(ctx); err != nil {
			return err
		}
	}
	return nil
}

// session returns the output session for an input session id, creating a
// placeholder when the input's session row was unreadable.
func (r *recovery) session(id, startNS int64) (*Session, error) {
	if s, ok := r.out[id]; ok {
		return s, nil
	}
	info := SessionInfo{ID: id, Source: SourceRecovered, Broker: "", ClientID: "", Protocol: 4, StartedNS: startNS,
		Version: "", Host: ""}
	s, err := r.dst.BeginSession(r.ctx, info)
	if err != nil {
		return nil, err
	}
	r.out[id] = s
	r.sessions = append(r.sessions, info)
	r.rep.Recreated = append(r.rep.Recreated, id)
	r.rep.Sessions++
	if s.ID() != id {
		r.rep.Renumbered[id] = s.ID()
	}
	return s, nil
}

// copy writes sessions, messages and events into the output.
func (r *recovery) copy() error {
	r.out = make(map[int64]*Session)
	r.rep.Renumbered = make(map[int64]int64)
	r.lastNS = make(map[*Session]int64)
	r.topicsUsed = make(map[int64]bool)
	if err := r.beginSessions(); err != nil {
		return err
	}
	if err := r.copyMessages(); err != nil {
		return err
	}
	if err := r.copyEvents(); err != nil {
		return err
	}
	if err := r.endSessions(); err != nil {
		return err
	}
	if err := r.dst.BuildIndexes(r.ctx); err != nil {
		return err
	}
	r.rep.Topics = int64(len(r.topicsUsed))
	if len(r.rep.Renumbered) == 0 {
		r.rep.Renumbered = nil
	}
	return nil
}

// beginSessions opens an output session for each readable input session.
func (r *recovery) beginSessions() error {
	for _, info := range r.sessions {
		s, err := r.dst.BeginSession(r.ctx, info)
		if err != nil {
			return err
		}
		r.out[info.ID] = s
		r.rep.Sessions++
		if s.ID() != info.ID {
			r.rep.Renumbered[info.ID] = s.ID()
		}
	}
	return nil
}

// copyMessages copies the messages in seq order, in batches of one session.
func (r *recovery) copyMessages() error {
	db := r.src.db
	// A huge payload is left out of the read (NULL) and copied inside
	// SQLite (copyBig); the last column is every payload's size.
	size := sizeExpr(r.src.version, "")
	cols := messageCols(fmt.Sprintf("seq, session, ts_ns, offset_ns, topic_id, qos, retain, from_store, dup, packet_id, "+
		"CASE WHEN %s > %d THEN NULL ELSE payload END", size, bigPayload), 11, r.src.clients, r.src.version)
	cols.list += ", " + size
	cols.size = cols.n
	cols.n++
	m := &messageCopier{r: r, cols: cols, seqMax: max(r.maxSeq, maxKey(r.ctx, db, "messages", "seq")),
		lastOff: make(map[*Session]int64), repairs: make(map[repairKey]*Repair)}
	w := &walker{q: db, cols: cols.n, maxKey: m.seqMax,
		query: "SELECT " + cols.list + " FROM messages WHERE seq >= ? ORDER BY seq LIMIT ?",
		row:   m.row, gap: m.gap}
	if err := w.run(r.ctx); err != nil {
		return err
	}
	if m.next != math.MaxInt64 {
		m.missing(m.seqMax + 1) // the end of the table
	}
	if err := m.flush(); err != nil {
		return err
	}
	r.rep.LostMessages += r.rep.NoTopic
	for _, k := range m.order {
		r.rep.Repaired = append(r.rep.Repaired, *m.repairs[k])
	}
	if m.badProps > 0 {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%d messages copied without their MQTT 5 properties: unreadable", m.badProps))
	}
	if r.rep.NoTopic > 0 {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%d messages left out: their topic name was unreadable", r.rep.NoTopic))
	}
	if m.badPayloads > 0 {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%d messages left out: their payload could not be read "+
			"(the first: %v)", m.badPayloads, m.firstBadPayload))
	}
	return nil
}

// messageCopier is the state of copyMessages: the batch being filled.
type messageCopier struct {
	r        *recovery
	cols     msgCols
	seqMax   int64 // highest seq that may exist
	badProps int   // messages copied without their unreadable properties
	// badPayloads counts messages left out because their compressed
	// payload is damaged (firstBadPayload says why for the first).
	badPayloads     int64
	firstBadPayload error

	batch      []Message
	batchSess  *Session
	batchBytes int64

	next int64 // the seq after the last row read or range reported lost

	lastOff map[*Session]int64    // latest offset written per output session
	repairs map[repairKey]*Repair // per input session and kind
	order   []repairKey           // repairs in the order first met
}

type repairKey struct {
	session int64
	what    string
}

// Kinds of repair.
const (
	repairBack = "time or offset went back: raised to the previous message's"
	repairQoS  = "QoS outside 0–2: set to 0"
	repairSkew = "time and offset disagreed: the one that jumped recomputed from the other"
)

// repair counts one message of input session sess repaired as what.
func (m *messageCopier) repair(sess, seq int64, what string) {
	k := repairKey{sess, what}
	if r := m.repairs[k]; r != nil {
		r.Count++
		return
	}
	m.repairs[k] = &Repair{Session: sess, What: what, Count: 1, FirstSeq: seq}
	m.order = append(m.order, k)
}

// fix repairs what breaks the format's invariants in msg, the next message
// of output session s (input session sess, seq seq): a QoS outside 0–2, a
// time or offset earlier than the previous message's.
func (m *messageCopier) fix(s *Session, sess, seq int64, msg *Message, qos int64) {
	if qos < 0 || qos > 2 {
		msg.QoS = 0
		m.repair(sess, seq, repairQoS)
	}
	lastTS, seen := m.r.lastNS[s]
	lastOff := m.lastOff[s]
	if !seen {
		lastTS, lastOff = s.startedNS, 0
	}
	m.fixSkew(sess, seq, msg, lastTS, lastOff)
	if seen && (msg.TimeNS < lastTS || msg.OffsetNS < lastOff) {
		msg.TimeNS, msg.OffsetNS = max(msg.TimeNS, lastTS), max(msg.OffsetNS, lastOff)
		m.repair(sess, seq, repairBack)
	}
	m.lastOff[s] = msg.OffsetNS
}

// skewLimit is how far a message's wall-clock time may move against its
// monotonic offset from the previous message's before recover takes one
// of the two as damaged: clocks drift by milliseconds, and a flipped high
// bit moves a time by days or years.
const skewLimit = int64(time.Hour)

// fixSkew repairs a message whose time and offset disagree by more than
// skewLimit (measured against the previous message of its session, or the
// session's start): the one that jumps less from the previous message is
// kept and the other recomputed from it. Raising every later message to one
// damaged time in the future (what the "went back" repair alone would do)
// would move a whole recording by that much.
func (m *messageCopier) fixSkew(sess, seq int64, msg *Message, lastTS, lastOff int64) {
	drift := lastTS - lastOff // wall clock minus monotonic offset
	if d := msg.TimeNS - msg.OffsetNS - drift; d <= skewLimit && d >= -skewLimit {
		return
	}
	jumpT, jumpO := msg.TimeNS-lastTS, msg.OffsetNS-lastOff
	switch {
	case jumpO >= 0 && (jumpT < 0 || jumpO <= jumpT):
		msg.TimeNS = msg.OffsetNS + drift
	case jumpT >= 0:
		msg.OffsetNS = msg.TimeNS - drift
	default:
		return // both went back: the "went back" repair raises them
	}
	m.repair(sess, seq, repairSkew)
}

// row copies one readable message; one whose topic name is unreadable is
// left out.
func (m *messageCopier) row(seq int64, v []any) error {
	m.missing(seq)
	m.next = seq + 1
	tid := asInt(v[4])
	name, ok := m.r.topics[tid]
	if !ok {
		m.r.rep.NoTopic++
		return nil
	}
	msg := m.message(v, name)
	big := asInt(v[m.cols.size]) > bigPayload
	if z := m.cols.zip; z > 0 && v[z] != nil && !big {
		p, err := m.r.src.codec.decode(asInt(v[z]), asInt(v[z+1]), seq, msg.Payload)
		if err != nil {
			if m.badPayloads++; m.firstBadPayload == nil {
				m.firstBadPayload = err
			}
			m.r.rep.LostMessages++
			return nil
		}
		msg.Payload = p
	}
	sess := asInt(v[1])
	s, err := m.r.session(sess, msg.TimeNS-msg.OffsetNS)
	if err != nil {
		return err
	}
	if big {
		return m.copyBig(s, sess, seq, tid, msg, asInt(v[5]), asInt(v[m.cols.size]))
	}
	m.fix(s, sess, seq, &msg, asInt(v[5]))
	if err := m.add(s, msg); err != nil {
		return err
	}
	m.r.topicsUsed[tid] = true
	return nil
}

// copyBig writes message seq of input session sess (output session s),
// whose payload of size bytes the read left out, after the batch: its
// payload is copied inside SQLite. One whose payload cannot be read is
// left out and counted with the damaged payloads.
func (m *messageCopier) copyBig(s *Session, sess, seq, tid int64, msg Message, qos, size int64) error {
	if err := m.flush(); err != nil {
		return err
	}
	lastOff := m.lastOff[s]
	lastNS, seen := m.r.lastNS[s]
	m.fix(s, sess, seq, &msg, qos)
	m.r.lastNS[s] = max(lastNS, msg.TimeNS)
	ref := payloadRef{uri: fileURI(m.r.src.path, m.r.src.uri), name: m.r.rep.In, expr: payloadExpr(m.r.src.version, m.r.src.codec, "m."), seq: seq}
	err := s.copyPayload(m.r.ctx, &msg, ref, m.r.lastNS[s])
	if errors.Is(err, ErrCorrupt) {
		m.lastOff[s] = lastOff
		if m.r.lastNS[s] = lastNS; !seen {
			delete(m.r.lastNS, s)
		}
		if m.badPayloads++; m.firstBadPayload == nil {
			m.firstBadPayload = err
		}
		m.r.rep.LostMessages++
		return nil
	}
	if err != nil {
		return err
	}
	m.r.rep.Messages++
	m.r.rep.Bytes += size
	m.r.topicsUsed[tid] = true
	return nil
}

// message builds a message from a row; unreadable properties are left out.
func (m *messageCopier) message(v []any, topic string) Message {
	msg := Message{TimeNS: asInt(v[2]), OffsetNS: asInt(v[3]), Topic: topic, QoS: byte(asInt(v[5])),
		Retain: asInt(v[6]) != 0, FromStore: asInt(v[7]) != 0, Dup: asInt(v[8]) != 0,
		PacketID: uint16(asInt(v[9])), Payload: asBytes(v[10])}
	if m.cols.client > 0 && v[m.cols.client] != nil {
		msg.ClientID = m.r.clients[asInt(v[m.cols.client])]
	}
	if m.cols.props > 0 && v[m.cols.props] != nil {
		if js := asString(v[m.cols.props]); js != "" {
			msg.Props = new(mqtt.Properties)
			if err := json.Unmarshal([]byte(js), msg.Props); err != nil {
				msg.Props = nil
				m.badProps++
			}
		}
	}
	return msg
}

// add appends a message of session s to the batch, first writing the batch
// when it holds another session's messages or is full.
func (m *messageCopier) add(s *Session, msg Message) error {
	if s != m.batchSess || len(m.batch) >= 4096 || m.batchBytes >= 16<<20 {
		if err := m.flush(); err != nil {
			return err
		}
		m.batchSess = s
	}
	m.r.lastNS[s] = max(m.r.lastNS[s], msg.TimeNS)
	m.batch = append(m.batch, msg)
	m.batchBytes += int64(len(msg.Payload))
	m.r.rep.Bytes += int64(len(msg.Payload))
	return nil
}

// flush writes the batch.
func (m *messageCopier) flush() error {
	if len(m.batch) == 0 {
		return nil
	}
	if err := m.batchSess.Write(m.r.ctx, m.batch, nil, m.r.lastNS[m.batchSess]); err != nil {
		return err
	}
	m.r.rep.Messages += int64(len(m.batch))
	clear(m.batch)
	m.batch, m.batchBytes = m.batch[:0], 0
	return nil
}

// missing reports the messages the sessions table says exist between the
// last row read (or range reported) and seq (exclusive) that the walk did
// not meet: a damaged page pointer can make SQLite skip rows without an
// error.
func (m *messageCopier) missing(seq int64) {
	if m.next == 0 {
		m.next = 1
	}
	if seq <= m.next {
		return
	}
	var n int64
	if len(m.r.ranges) == 0 {
		n = seq - m.next
	}
	for _, sp := range m.r.ranges {
		n += max(0, min(sp.hi, seq)-max(sp.lo, m.next))
	}
	if n > 0 {
		m.r.rep.Lost = append(m.r.rep.Lost, LostRange{Table: "messages", From: m.next, To: seq - 1,
			Cause: "not found: the file's page links skip them (damaged)"})
		m.r.rep.LostMessages += n
	}
}

// gap reports an unreadable seq range; one running to the end of the table
// is counted up to seqMax.
func (m *messageCopier) gap(from, to int64, cause error) {
	m.missing(from)
	m.next = to + 1
	if to < 0 {
		m.next = math.MaxInt64
	}
	m.r.lost("messages", from, to, cause)
	end := to
	if end < 0 {
		end = m.seqMax
	}
	if end >= from {
		m.r.rep.LostMessages += end - from + 1
	}
}

// copyEvents copies the events, grouped by session.
func (r *recovery) copyEvents() error {
	ctx, db := r.ctx, r.src.db
	events := make(map[*Session][]Event)
	var order []*Session
	w := &walker{q: db, cols: 6, maxKey: maxKey(ctx, db, "events", "id"),
		query: "SELECT id, session, ts_ns, offset_ns, kind, detail FROM events WHERE id >= ? ORDER BY id LIMIT ?",
		row: func(id int64, v []any) error {
			e := Event{TimeNS: asInt(v[2]), OffsetNS: asInt(v[3]), Kind: asString(v[4]), Detail: asString(v[5])}
			s, err := r.session(asInt(v[1]), e.TimeNS-e.OffsetNS)
			if err != nil {
				return err
			}
			if _, ok := events[s]; !ok {
				order = append(order, s)
			}
			events[s] = append(events[s], e)
			return nil
		},
		gap: func(from, to int64, cause error) {
			r.lost("events", from, to, cause)
			if to >= from {
				r.rep.LostEvents += to - from + 1
			}
		},
	}
	if err := w.run(ctx); err != nil {
		return err
	}
	for _, s := range order {
		if err := s.Write(ctx, nil, events[s], r.lastNS[s]); err != nil {
			return err
		}
		r.rep.Events += int64(len(events[s]))
	}
	return nil
}

// endSessions closes the sessions as the input had them.
func (r *recovery) endSessions() error {
	ctx := r.ctx
	for _, info := range r.sessions {
		s := r.out[info.ID]
		last := max(info.LastNS, r.lastNS[s])
		if info.Closed() {
			if err := s.End(ctx, info.EndedNS, info.StopReason, info.Dropped); err != nil {
				return err
			}
			continue
		}
		if last != 0 {
			if err := s.Write(ctx, nil, nil, last); err != nil {
				return err
			}
		}
		if info.Dropped != 0 {
			if err := s.SetDropped(ctx, info.Dropped); err != nil {
				return err
			}
		}
	}
	return nil
}

// msgCols is the column list of a messages query.
type msgCols struct {
	list   string
	n      int // columns in list
	client int // index of client_ref, -1 without the clients table
	props  int // index of props, -1 before format 3
	zip    int // index of zstd_dict (then payload_size), -1 before format 4
	size   int // index of the payload's size as published (copyMessages)
}

// messageCols adds to a list of n columns the optional message columns of
// a capture of format version (clients: it has the clients table).
func messageCols(list string, n int, clients bool, version int) msgCols {
	c := msgCols{list: list, n: n, client: -1, props: -1, zip: -1}
	if clients {
		c.list += ", client_ref"
		c.client = c.n
		c.n++
	}
	if version >= 3 {
		c.list += ", props"
		c.props = c.n
		c.n++
	}
	if version >= compressionVersion {
		c.list += ", zstd_dict, payload_size"
		c.zip = c.n
		c.n += 2
	}
	return c
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	case bool:
		if x {
			return 1
		}
	}
	return 0
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func asBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	}
	return []byte{}
}

// querier is what the damage-tolerant readers need: a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// walkChunk is how many rows one query of a walk reads.
const walkChunk = 1024

// walker reads a rowid table in key order and survives damage: when a read
// fails at key k it probes forward (k+1, k+2, k+4, ...) for the first key
// from which reading works again, narrows the unreadable range by
// bisection, reports it and goes on. One bad page costs the rows on that
// page, not the rest of the table.
type walker struct {
	q querier
	// query selects the key first, then the other columns:
	// "SELECT key, ... FROM t WHERE key >= ? ORDER BY key LIMIT ?".
	query string
	cols  int
	// maxKey bounds the probing (the largest key that may exist); 0 when
	// unknown.
	maxKey int64
	// row receives each readable row (values as the driver returns them:
	// int64, float64, string, []byte or nil); an error stops the walk.
	row func(key int64, vals []any) error
	// gap receives each unreadable key range [from, to]; to is -1 when the
	// range runs to the end of the table.
	gap func(from, to int64, cause error)
}

// errCallback carries an error from the row callback out of read.
type errCallback struct{ err error }

func (e errCallback) Error() string { return e.err.Error() }

// read runs the query from start, handing the rows to w.row when emit is
// set. It returns the key after the last row read, how many rows were
// read, and the error that ended the read early.
func (w *walker) read(ctx context.Context, start int64, limit int, emit bool) (next int64, n int, err error) {
	next = start
	rows, err := w.q.QueryContext(ctx, w.query, start, limit)
	if err != nil {
		return next, 0, err
	}
	defer rows.Close()
	vals := make([]any, w.cols)
	ptrs := make([]any, w.cols)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return next, n, err
		}
		key, ok := vals[0].(int64)
		if !ok {
			return next, n, fmt.Errorf("damaged row: key of type %T", vals[0])
		}
		if key < next {
			// Keys come in order; one that does not is read from a
			// damaged page (zeros past the end of a truncated file).
			return next, n, fmt.Errorf("damaged page: key %d out of order after %d", key, next-1)
		}
		n++
		next = key + 1
		if emit {
			if err := w.row(key, vals); err != nil {
				return next, n, errCallback{err}
			}
		}
	}
	return next, n, rows.Err()
}

// ok reports whether reading one row from start works.
func (w *walker) ok(ctx context.Context, start int64) bool {
	_, _, err := w.read(ctx, start, 1, false)
	return err == nil
}

// run walks the whole table.
func (w *walker) run(ctx context.Context) error {
	bound := int64(math.MaxInt64 / 2)
	if w.maxKey > 0 {
		bound = w.maxKey + 1
	}
	start := int64(math.MinInt64)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		next, n, err := w.read(ctx, start, walkChunk, true)
		start = next
		if err == nil {
			if n < walkChunk {
				return nil
			}
			continue
		}
		var cb errCallback
		if errors.As(err, &cb) {
			return cb.err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if start == math.MinInt64 {
			// The very first read failed; mqtape's keys start at 1.
			start = 1
			if w.ok(ctx, start) {
				continue
			}
		}
		// Reading from start fails: probe forward for where it works
		// again, then bisect back to lose as little as possible.
		bad, good := start, int64(-1)
		for step := int64(1); ; step *= 2 {
			p := bad + step
			if p > bound || p < bad {
				break
			}
			if w.ok(ctx, p) {
				good = p
				break
			}
			bad = p
		}
		if good < 0 {
			to := int64(-1)
			if w.maxKey >= start {
				to = w.maxKey
			}
			w.gap(start, to, err)
			return nil
		}
		for good-bad > 1 {
			mid := bad + (good-bad)/2
			if w.ok(ctx, mid) {
				good = mid
			} else {
				bad = mid
			}
		}
		w.gap(start, good-1, err)
		start = good
	}
}

// SaveCopy writes a consistent copy of an open capture, with everything
// committed (also what is still in the write-ahead log), to a new file at
// path with mode 0600. It is Recover's counterpart for a capture that is
// still open: mqtape record uses it when its file was deleted while it
// recorded, so what it recorded is not lost with the deleted file.
func (c *Capture) SaveCopy(ctx context.Context, path string) error {
	if c.parts != nil {
		return errNotForParts("save a copy of the capture")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("save a copy of the capture: %w", err)
	}
	f.Close()
	db := c.w
	if db == nil {
		db = c.r
	}
	// VACUUM INTO accepts an empty file as its target.
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		os.Remove(path)
		return c.wrap("save a copy to "+path, err)
	}
	return nil
}
