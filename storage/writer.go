package storage

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
)

// Session writes one recording session. It is not safe for concurrent use:
// one goroutine owns it (the recorder's writer).
type Session struct {
	c         *Capture
	id        int64
	startedNS int64
	topics    map[string]int64
	clients   map[string]int64
	// zip: payloads are stored compressed (the capture's SetCompression
	// when the session began).
	zip bool

	// Prepared once on the writer connection (see stmts): inserts[full][many]
	// and the per-batch session update.
	inserts  [2][2]*sql.Stmt
	progress *sql.Stmt
}

// ID returns the session id.
func (s *Session) ID() int64 { return s.id }

// BeginSession starts a new session in the capture.
func (c *Capture) BeginSession(ctx context.Context, info SessionInfo) (*Session, error) {
	if c.w == nil {
		return nil, ErrReadOnly
	}
	if err := c.migrate(ctx); err != nil {
		return nil, err
	}
	// A killed recorder's spool goes into its session before any other
	// session adds messages (every session's seq range must be its own).
	if !c.spoolDone {
		if _, err := c.RecoverSpool(ctx); err != nil {
			return nil, err
		}
	}
	c.spoolDone = false
	filters, err := json.Marshal(nonNil(info.Filters))
	if err != nil {
		return nil, err
	}
	s := &Session{c: c, startedNS: info.StartedNS, zip: c.zip != nil}
	err = c.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO sessions
			(source, broker, client_id, protocol, clean_session, filters, started_ns, mqtape_version, host)
			VALUES (?,?,?,?,?,?,?,?,?)`,
			info.Source, info.Broker, info.ClientID, info.Protocol, info.CleanSession, string(filters),
			info.StartedNS, info.Version, info.Host)
		if err != nil {
			return err
		}
		if s.id, err = res.LastInsertId(); err != nil {
			return err
		}
		// Inserting with the topic index in place costs half the insert
		// rate; End rebuilds it.
		_, err = tx.ExecContext(ctx, "DROP INDEX IF EXISTS "+topicIndex)
		return err
	})
	if err == nil {
		s.topics, s.clients, err = c.names(ctx)
	}
	if err != nil {
		return nil, c.wrap("begin session", err)
	}
	return s, nil
}

// names returns the ids of the topics and publisher client ids interned
// so far, read from the file once and then kept up to date by the
// sessions' writes: the capture has one writer, and reading them at every
// session's start cost a writer of many sessions (import, cut, merge)
// sessions × topics.
func (c *Capture) names(ctx context.Context) (topics, clients map[string]int64, err error) {
	if c.topicIDs != nil {
		return c.topicIDs, c.clientIDs, nil
	}
	topics, clients = make(map[string]int64), make(map[string]int64)
	for _, t := range []struct {
		query string
		into  map[string]int64
	}{{"SELECT id, name FROM topics", topics}, {"SELECT id, client_id FROM clients", clients}} {
		rows, err := c.w.QueryContext(ctx, t.query)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var id int64
			var name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, nil, err
			}
			t.into[name] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	c.topicIDs, c.clientIDs = topics, clients
	return topics, clients, nil
}

func nonNil(f []Filter) []Filter {
	if f == nil {
		return []Filter{}
	}
	return f
}

// SetFilters records the subscriptions and what the broker granted.
func (s *Session) SetFilters(ctx context.Context, filters []Filter) error {
	b, err := json.Marshal(nonNil(filters))
	if err != nil {
		return err
	}
	_, err = s.c.w.ExecContext(ctx, "UPDATE sessions SET filters=? WHERE id=?", string(b), s.id)
	return s.c.wrap("update session", err)
}

// Write stores msgs and events in one transaction and records nowNS as the
// session's last flush time. Message Seq fields are set from the file.
// Message.Session and Event.Session are ignored: everything goes to s.
func (s *Session) Write(ctx context.Context, msgs []Message, events []Event, nowNS int64) error {
	before := len(s.topics) + len(s.clients)
	// Prepared before the transaction: the writer has one connection.
	if err := s.stmts(ctx, msgs); err != nil {
		return s.c.wrap("write batch", err)
	}
	if s.zip {
		if err := s.c.zip.prepare(ctx, s.c, msgs); err != nil {
			return s.c.wrap("write batch", err)
		}
	}
	err := s.c.inTx(ctx, func(tx *sql.Tx) error {
		if s.zip {
			if err := s.c.zip.storeDict(ctx, tx, s.id); err != nil {
				return err
			}
		}
		if len(msgs) > 0 {
			if err := s.writeMessages(ctx, tx, msgs); err != nil {
				return err
			}
		}
		for _, e := range events {
			if _, err := tx.ExecContext(ctx,
				"INSERT INTO events (session, ts_ns, offset_ns, kind, detail) VALUES (?,?,?,?,?)",
				s.id, e.TimeNS, e.OffsetNS, e.Kind, e.Detail); err != nil {
				return err
			}
		}
		// One statement keeps the session's seq range and last flush time.
		var first, last any // NULL: unchanged
		if len(msgs) > 0 {
			first, last = msgs[0].Seq, msgs[len(msgs)-1].Seq
		}
		_, err := tx.StmtContext(ctx, s.progress).ExecContext(ctx, first, last, nowNS, s.id)
		return err
	})
	if s.zip {
		s.c.zip.commit(err == nil)
	}
	if err != nil {
		s.forgetNames(ctx, before)
	}
	return s.c.wrap("write batch", err)
}

// forgetNames reloads the interned names after a transaction rolled back
// (before: how many the caches held when it began): rows interned in it
// are gone.
func (s *Session) forgetNames(ctx context.Context, before int) {
	if len(s.topics)+len(s.clients) == before {
		return
	}
	s.c.topicIDs, s.c.clientIDs = nil, nil
	if topics, clients, err := s.c.names(ctx); err == nil {
		s.topics, s.clients = topics, clients
	} else {
		s.topics, s.clients = make(map[string]int64), make(map[string]int64)
	}
}

// rowsPerInsert is how many rows one INSERT statement carries: multi-row
// statements amortise the per-statement cost of database/sql and SQLite.
const rowsPerInsert = 32

// insertSQL is an INSERT of rows messages into session. The session id is
// a literal, not a parameter, and a plain statement (full false) leaves
// client_ref and props NULL, which a subscriber's MQTT 3.1.1 recording never
// sets: binding parameters was a quarter of the writer's time, and this
// binds 9 per row instead of 12. With zip, the rows also set zstd_dict and
// payload_size (a compressing session).
//
// OR FAIL: a multi-row INSERT that could fail half-way (a NOT NULL
// constraint) makes SQLite keep a statement journal, a copy of every page
// the statement changes, so that it can undo just that statement; with
// 64 KiB pages that copy was about a tenth of the writer's CPU. A failing
// INSERT OR FAIL keeps the rows before the failure, and Write then rolls
// back the whole transaction anyway.
func insertSQL(session int64, rows int, full, zip bool) string {
	cols := "session, ts_ns, offset_ns, topic_id, qos, retain, from_store, dup, packet_id, payload"
	row := fmt.Sprintf("(%d,?,?,?,?,?,?,?,?,?", session)
	if zip {
		cols += ", zstd_dict, payload_size"
		row += ",?,?"
	}
	if full {
		cols += ", client_ref, props"
		row += ",?,?"
	}
	row += ")"
	return "INSERT OR FAIL INTO messages (" + cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+",", rows), ",")
}

// stmts prepares, once each on the writer connection, the statements
// writing msgs needs: a recorder commits small batches often, and preparing
// them per transaction was a tenth of its CPU. Only those a batch uses are
// prepared: an importer writing many short sessions would otherwise parse
// four inserts of 32 rows per session.
func (s *Session) stmts(ctx context.Context, msgs []Message) error {
	if s.progress == nil {
		p, err := s.c.w.PrepareContext(ctx,
			"UPDATE sessions SET first_seq=coalesce(first_seq, ?), last_seq=coalesce(?, last_seq), last_ns=? WHERE id=?")
		if err != nil {
			return err
		}
		s.progress = p
	}
	for _, c := range insertChunks(msgs) {
		if s.inserts[c.full][c.many] != nil {
			continue
		}
		rows := 1
		if c.many == 1 {
			rows = rowsPerInsert
		}
		p, err := s.c.w.PrepareContext(ctx, insertSQL(s.id, rows, c.full == 1, s.zip))
		if err != nil {
			return err
		}
		s.inserts[c.full][c.many] = p
	}
	return nil
}

// insertChunk is msgs[i:i+n] written by one INSERT: of rowsPerInsert rows
// (many 1) or one (many 0), with client_ref and props (full 1) or without.
type insertChunk struct{ i, n, full, many int }

// insertChunks splits msgs into the INSERTs that write them.
func insertChunks(msgs []Message) []insertChunk {
	var out []insertChunk
	for i := 0; i < len(msgs); {
		c := insertChunk{i: i, n: rowsPerInsert, many: 1}
		if len(msgs)-i < rowsPerInsert {
			c.n, c.many = 1, 0
		}
		for _, m := range msgs[i : i+c.n] {
			if m.ClientID != "" || m.Props != nil {
				c.full = 1
				break
			}
		}
		out = append(out, c)
		i += c.n
	}
	return out
}

func (s *Session) writeMessages(ctx context.Context, tx *sql.Tx, msgs []Message) error {
	var inTx [2][2]*sql.Stmt // the prepared statements, bound to tx on first use
	args := make([]any, 0, 13*rowsPerInsert)
	for _, c := range insertChunks(msgs) {
		i, n, full := c.i, c.n, c.full
		chunk := msgs[i : i+n]
		stmt := inTx[full][c.many]
		if stmt == nil {
			stmt = tx.StmtContext(ctx, s.inserts[full][c.many])
			inTx[full][c.many] = stmt
		}
		args = args[:0]
		for _, m := range chunk {
			tid, err := s.topicID(ctx, tx, m.Topic)
			if err != nil {
				return err
			}
			payload := m.Payload
			if payload == nil {
				payload = []byte{} // NOT NULL: an empty payload is an empty blob
			}
			if !s.zip {
				args = append(args, m.TimeNS, m.OffsetNS, tid, int64(m.QoS), m.Retain, m.FromStore, m.Dup,
					int64(m.PacketID), payload)
			} else {
				stored, dict, size := s.c.zip.compress(payload)
				args = append(args, m.TimeNS, m.OffsetNS, tid, int64(m.QoS), m.Retain, m.FromStore, m.Dup,
					int64(m.PacketID), stored, dict, size)
			}
			if full == 0 {
				continue
			}
			var client any // NULL: not known (subscriber recording)
			if m.ClientID != "" {
				if client, err = s.clientRef(ctx, tx, m.ClientID); err != nil {
					return err
				}
			}
			var props any // NULL: no properties
			if m.Props != nil {
				b, err := json.Marshal(m.Props)
				if err != nil {
					return err
				}
				props = string(b)
			}
			args = append(args, client, props)
		}
		res, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for j := range n {
			msgs[i+j].Seq = last - int64(n-1-j)
			msgs[i+j].Session = s.id
		}
	}
	return nil
}

func (s *Session) topicID(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	if id, ok := s.topics[name]; ok {
		return id, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx,
		"INSERT INTO topics (name) VALUES (?) ON CONFLICT(name) DO UPDATE SET name=excluded.name RETURNING id",
		name).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("intern topic: %w", err)
	}
	s.topics[name] = id // Write reloads the cache if the transaction fails
	return id, nil
}

func (s *Session) clientRef(ctx context.Context, tx *sql.Tx, clientID string) (int64, error) {
	if id, ok := s.clients[clientID]; ok {
		return id, nil
	}
	var id int64
	err := tx.QueryRowContext(ctx,
		"INSERT INTO clients (client_id) VALUES (?) ON CONFLICT(client_id) DO UPDATE SET client_id=excluded.client_id RETURNING id",
		clientID).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("intern client id: %w", err)
	}
	s.clients[clientID] = id
	return id, nil
}

// End closes the session cleanly with a stop reason and drop count, and
// rebuilds the per-topic index (unless DeferIndexes leaves that to Close).
func (s *Session) End(ctx context.Context, endNS int64, reason string, dropped int64) error {
	s.closeStmts()
	_, err := s.c.w.ExecContext(ctx,
		"UPDATE sessions SET ended_ns=?, last_ns=?, stop_reason=?, dropped=? WHERE id=?",
		endNS, endNS, reason, dropped, s.id)
	if err != nil {
		return s.c.wrap("end session", err)
	}
	if s.c.deferIndex {
		return nil
	}
	return s.c.BuildIndexes(ctx)
}

// closeStmts releases the prepared statements.
func (s *Session) closeStmts() {
	if s.progress == nil {
		return
	}
	for _, pair := range s.inserts {
		for _, st := range pair {
			if st != nil {
				st.Close()
			}
		}
	}
	s.progress.Close()
	s.inserts, s.progress = [2][2]*sql.Stmt{}, nil
}

const topicIndex = "messages_by_topic"

// BuildIndexes creates the per-topic index when it is missing (after a
// session ended, or after a crash left a capture without it).
func (c *Capture) BuildIndexes(ctx context.Context) error {
	if c.w == nil {
		return ErrReadOnly
	}
	_, err := c.w.ExecContext(ctx, "CREATE INDEX IF NOT EXISTS "+topicIndex+" ON messages(topic_id, seq)")
	return c.wrap("build topic index", err)
}

// HasTopicIndex reports whether the per-topic index exists (it does not while
// a session is recording); without it topic queries scan the whole table.
func (c *Capture) HasTopicIndex(ctx context.Context) (bool, error) {
	if c.parts != nil {
		return c.parts.hasTopicIndex(ctx)
	}
	var n int
	err := c.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type='index' AND name=?", topicIndex).Scan(&n)
	return n > 0, c.wrap("read schema", err)
}

// SetDropped updates the session's drop counter (also done by End).
func (s *Session) SetDropped(ctx context.Context, dropped int64) error {
	_, err := s.c.w.ExecContext(ctx, "UPDATE sessions SET dropped=? WHERE id=?", dropped, s.id)
	return s.c.wrap("update session", err)
}
