package storage

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqtape/mqtape/mqtt"
)

// smallCapture writes a real capture of a few messages, sessions and
// events, then rewrites it with 512-byte pages in rollback-journal mode so
// that it is a few kilobytes: small enough for the fuzzer to mutate
// usefully (a capture proper has 64 KiB pages).
func smallCapture(f *testing.F) []byte {
	f.Helper()
	ctx := context.Background()
	path := filepath.Join(f.TempDir(), "seed.db")
	c, err := OpenWrite(path)
	if err != nil {
		f.Fatal(err)
	}
	for sess := range 1 {
		s, err := c.BeginSession(ctx, SessionInfo{Source: "subscriber", Broker: "mqtt://h:1883", ClientID: "c", Protocol: 4,
			StartedNS: 1e18, Version: "t", Host: "h", Filters: []Filter{{Filter: "#", QoS: 2, Granted: 1}}})
		if err != nil {
			f.Fatal(err)
		}
		msgs := []Message{
			{TimeNS: 1e18 + 1, OffsetNS: 1, Topic: "a/b", QoS: 1, Payload: []byte("hello"), Retain: true, FromStore: true},
			{TimeNS: 1e18 + 2, OffsetNS: 2, Topic: "a/c", QoS: 2, Payload: []byte{0, 1, 2}, ClientID: "pub"},
			{TimeNS: 1e18 + 3, OffsetNS: 3, Topic: "x", QoS: 0, Payload: make([]byte, 700), // an overflow page
				Props: &mqtt.Properties{ContentType: "text/plain", UserProperties: []mqtt.UserProperty{{Key: "k", Value: "v"}}}},
		}
		if err := s.Write(ctx, msgs, []Event{{TimeNS: 1e18, Kind: EventConnected, Detail: "x"}}, 1e18+3); err != nil {
			f.Fatal(err)
		}
		if sess == 0 {
			if err := s.End(ctx, 1e18+4, "count", 0); err != nil {
				f.Fatal(err)
			}
		}
	}
	c.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		f.Fatal(err)
	}
	for _, stmt := range []string{"PRAGMA journal_mode=DELETE", "PRAGMA page_size=512", "VACUUM"} {
		if _, err := db.Exec(stmt); err != nil {
			f.Fatal(err)
		}
	}
	db.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return data
}

// FuzzOpenMutated opens mutated captures and reads everything from them:
// nothing may panic or hang, whatever the bytes. It also holds check and
// recover to their word: when Check finds no problem, every message and
// every session must be readable; and whatever Recover writes passes Check.
func FuzzOpenMutated(f *testing.F) {
	seed := smallCapture(f)
	f.Add(seed)
	for _, at := range []int{0, 16, 28, 60, 100, 600, 1100, 1600, 2100} {
		if at < len(seed) {
			m := append([]byte(nil), seed...)
			m[at] ^= 0x5a
			f.Add(m)
		}
	}
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		dir := t.TempDir()
		path := filepath.Join(dir, "m.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if c, err := Open(path); err == nil {
			readEverything(ctx, c)
			c.Close()
		}
		rep, err := Check(ctx, path, CheckOptions{Full: true})
		if err == nil && rep.OK() {
			c, err := Open(path)
			if err != nil {
				t.Fatalf("check passed but Open fails: %v", err)
			}
			msgs, err := c.Page(ctx, Query{})
			if err != nil || int64(len(msgs)) != rep.Messages {
				t.Fatalf("check passed (%d messages) but reading them gives %d: %v", rep.Messages, len(msgs), err)
			}
			if _, err := c.Sessions(ctx); err != nil {
				t.Fatalf("check passed but the sessions are unreadable: %v", err)
			}
			c.Close()
		}
		out := filepath.Join(dir, "out.db")
		if _, err := Recover(ctx, path, out); err == nil {
			rep, err := Check(ctx, out, CheckOptions{Full: true})
			if err != nil || !rep.OK() {
				t.Fatalf("recover wrote a capture that fails check: %v %+v", err, rep)
			}
		}
	})
}

// readEverything calls every read method; errors are fine, panics are not.
func readEverything(ctx context.Context, c *Capture) {
	c.Sessions(ctx)
	c.Events(ctx, 0)
	topics, _ := c.Topics(ctx)
	c.Page(ctx, Query{})
	c.Page(ctx, Query{Desc: true, Limit: 2})
	c.Count(ctx, Query{})
	c.Stats(ctx)
	c.MaxSeq(ctx)
	c.Get(ctx, 1)
	c.HasTopicIndex(ctx)
	from, to := int64(1), int64(1e18+2)
	c.Page(ctx, Query{FromOffset: &from, ToTime: &to, Match: func(string) bool { return true }, Session: 1})
	c.Page(ctx, Query{FromTime: &from, QoS: []byte{1, 2}, FromStore: new(true), PayloadContains: [][]byte{[]byte("l")}})
	lo, hi, _ := c.SeqBounds(ctx)
	c.TopicCounts(ctx, lo, hi)
	c.SeqAtTime(ctx, 1e18+2)
	c.SeqAtOffset(ctx, 1, 2)
	c.PrevOnTopic(ctx, hi, "a/b")
	c.RowsBySeq(ctx, []int64{lo, hi}, 16)
	var ids []int64
	for _, tp := range topics {
		ids = append(ids, tp.ID)
	}
	yes := true
	if p, err := c.Prepare(ctx, Query{TopicIDs: ids, QoS: []byte{0, 1, 2}, FromStore: &yes}); err == nil {
		p.Count(ctx, lo, hi)
		p.Rows(ctx, lo, hi, 10, 8)
		p.RowsBefore(ctx, lo, hi, 10, 8)
		for range p.Messages(ctx, 0, false) {
		}
		for range p.Seqs(ctx, lo, hi) {
		}
	}
}
