package storage

// Huge payloads in cut, merge and recover. Reading a payload into Go and
// binding it into an INSERT held it four or five times at once (SQLite's
// value, the driver's copy, database/sql's copy, the bound copy, the
// record SQLite builds). A payload longer than bigPayload is left out of
// the read (Query.MaxPayload) and copied inside SQLite instead: the source
// file is attached read-only to the writer's connection and one
// INSERT … SELECT moves the payload from its row to the new one, so only
// SQLite's value and its record hold it (a payload stored compressed is
// decompressed once more, in Go, by mqtape_payload). It is stored as
// published, also in a session that compresses.

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
)

// bigPayload is the payload size above which cut, merge and recover copy a
// payload inside SQLite (copyPayload) instead of through Go.
const bigPayload = 1 << 20

// srcSchema is the name the source file is attached under while a payload
// is copied from it.
const srcSchema = "mqtape_src"

// payloadRef is where a payload left out of a read is copied from: row seq
// of the capture file SQLite opens through uri (read-only), whose payload
// as published is the SQL expression expr over the row alias "m.". Errors
// name the file name (the capture the user gave: recover may read a
// temporary copy of it).
type payloadRef struct {
	uri, name string
	expr      string
	seq       int64
}

// refTo is the payloadRef of message seq of c.
func (c *Capture) refTo(seq int64) payloadRef {
	return payloadRef{uri: fileURI(c.path, c.readURI), name: c.path, expr: c.payloadSQL("m."), seq: seq}
}

// fileURI is the SQLite URI filename of path (params: its query, may be
// empty).
func fileURI(path, params string) string {
	u := url.URL{Scheme: "file", Opaque: escapePath(path)}
	if params == "" {
		return u.String()
	}
	return u.String() + "?" + params
}

// copyPayload writes m as the next message of s in a transaction of its
// own, its payload copied inside SQLite from ref (m.Payload is not used),
// and records nowNS as the session's last flush time. m.Seq is set from
// the file. A source row that cannot be read is an ErrCorrupt error naming
// the source file.
func (s *Session) copyPayload(ctx context.Context, m *Message, ref payloadRef, nowNS int64) error {
	before := len(s.topics) + len(s.clients)
	err := s.copyTx(ctx, m, ref, nowNS)
	if err == nil {
		return nil
	}
	s.forgetNames(ctx, before) // after the connection went back to the pool
	src := (&Capture{path: ref.name}).wrap(fmt.Sprintf("copy the payload of message seq %d", ref.seq), err)
	if errors.Is(src, ErrCorrupt) {
		return src
	}
	return s.c.wrap("write batch", err)
}

// copyTx attaches the source to the writer's connection and runs
// insertCopy in a transaction.
func (s *Session) copyTx(ctx context.Context, m *Message, ref payloadRef, nowNS int64) error {
	conn, err := s.c.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// ATTACH and DETACH cannot run inside a transaction; the source is
	// read-only and the connection's trusted_schema=OFF holds for it too.
	if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS "+srcSchema, ref.uri); err != nil {
		return err
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DETACH DATABASE "+srcSchema)
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := s.insertCopy(ctx, tx, m, ref, nowNS); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// insertCopy is copyPayload's transaction.
func (s *Session) insertCopy(ctx context.Context, tx *sql.Tx, m *Message, ref payloadRef, nowNS int64) error {
	tid, err := s.topicID(ctx, tx, m.Topic)
	if err != nil {
		return err
	}
	var client, props any // NULL: none
	if m.ClientID != "" {
		if client, err = s.clientRef(ctx, tx, m.ClientID); err != nil {
			return err
		}
	}
	if m.Props != nil {
		b, err := json.Marshal(m.Props)
		if err != nil {
			return err
		}
		props = string(b)
	}
	res, err := tx.ExecContext(ctx, "INSERT INTO main.messages "+
		"(session, ts_ns, offset_ns, topic_id, qos, retain, from_store, dup, packet_id, client_ref, props, payload) "+
		"SELECT ?,?,?,?,?,?,?,?,?,?,?, "+ref.expr+" FROM "+srcSchema+".messages m WHERE m.seq = ?",
		s.id, m.TimeNS, m.OffsetNS, tid, int64(m.QoS), m.Retain, m.FromStore, m.Dup, int64(m.PacketID), client, props, ref.seq)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return fmt.Errorf("%w: message seq %d is gone", ErrCorrupt, ref.seq)
	}
	if m.Seq, err = res.LastInsertId(); err != nil {
		return err
	}
	m.Session = s.id
	_, err = tx.ExecContext(ctx,
		"UPDATE sessions SET first_seq=coalesce(first_seq, ?), last_seq=?, last_ns=? WHERE id=?", m.Seq, m.Seq, nowNS, s.id)
	return err
}
