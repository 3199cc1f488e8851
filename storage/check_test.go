package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/mqtt"
)

// fixture writes a capture of two sessions (the second optionally left
// open, as after a crash) with n messages each, payloads of size bytes.
func fixture(t testing.TB, n, size int, closeSecond bool) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fix.db")
	c, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	for sess := range 2 {
		s := begin(t, c)
		var msgs []Message
		for i := range n {
			p := bytes.Repeat([]byte{byte('a' + i%26)}, size)
			copy(p, fmt.Sprintf("%d/%d|", sess, i))
			m := Message{TimeNS: 1e18 + int64(i)*1000, OffsetNS: int64(i) * 1000,
				Topic: fmt.Sprintf("s%d/t%d", sess, i%5), QoS: byte(i % 3), Payload: p, ClientID: map[bool]string{true: "pub"}[i%7 == 0]}
			if i%11 == 0 {
				m.Props = &mqtt.Properties{ContentType: "text/plain", UserProperties: []mqtt.UserProperty{{Key: "i", Value: fmt.Sprint(i)}}}
			}
			msgs = append(msgs, m)
		}
		ev := []Event{{TimeNS: 1e18, Kind: EventConnected, Detail: "x"}, {TimeNS: 1e18 + 1, Kind: EventSubscribed, Detail: "#"}}
		if err := s.Write(ctx, msgs, ev, 1e18+int64(n)*1000); err != nil {
			t.Fatal(err)
		}
		if sess == 0 || closeSecond {
			if err := s.End(ctx, 2e18, "count", 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawExec changes a capture behind mqtape's back (to break invariants).
func rawExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func kinds(fs []Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Check)
	}
	return strings.Join(out, ",")
}

func TestCheckCleanAndUnclosed(t *testing.T) {
	ctx := context.Background()
	path := fixture(t, 300, 100, true)
	before, _ := os.ReadFile(path)
	rep, err := Check(ctx, path, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Notes) != 0 || rep.Sessions != 2 || rep.Messages != 600 || rep.Topics != 10 || rep.Events != 4 ||
		rep.FirstSeq != 1 || rep.LastSeq != 600 || rep.FormatVersion != FormatVersion || rep.SQLiteCheck != "quick_check" {
		t.Fatalf("clean capture: %+v", rep)
	}
	if rep, err = Check(ctx, path, CheckOptions{Full: true}); err != nil || !rep.OK() || rep.SQLiteCheck != "integrity_check" {
		t.Fatalf("full: %+v %v", rep, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("check modified the file")
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Fatal("check wrote to the write-ahead log")
	}

	open := fixture(t, 50, 10, false)
	rep, err = Check(ctx, open, CheckOptions{})
	if err != nil || !rep.OK() {
		t.Fatalf("unclosed session is not damage: %+v %v", rep, err)
	}
	if got := kinds(rep.Notes); got != "unclosed,index" || rep.Notes[0].Session != 2 {
		t.Fatalf("notes = %+v", rep.Notes)
	}
}

func TestCheckFindsBrokenInvariants(t *testing.T) {
	tests := []struct {
		name  string
		stmts []string
		want  string // a problem kind
		text  string // in its detail
	}{
		{"missing session", []string{"UPDATE messages SET session=99 WHERE seq=5"}, "messages", "session 99, which does not exist"},
		{"missing topic", []string{"UPDATE messages SET topic_id=77 WHERE seq=5"}, "messages", "topic id 77"},
		{"missing client", []string{"UPDATE messages SET client_ref=55 WHERE seq=5"}, "messages", "client_ref 55"},
		{"hole", []string{"DELETE FROM messages WHERE seq BETWEEN 10 AND 12"}, "holes", "seq 10–12 missing"},
		{"offset back", []string{"UPDATE messages SET offset_ns=0 WHERE seq=20"}, "order", "seq 20 goes back in time"},
		{"time back", []string{"UPDATE messages SET ts_ns=5 WHERE seq=20"}, "order", "ts_ns 5"},
		{"first_seq", []string{"UPDATE sessions SET first_seq=2 WHERE id=1"}, "sessions", "first_seq/last_seq are 2/100"},
		{"last_seq null", []string{"UPDATE sessions SET last_seq=NULL WHERE id=2"}, "sessions", "101/NULL"},
		{"seq range without messages", []string{"DELETE FROM messages WHERE session=2"}, "sessions", "has no messages"},
		{"event session", []string{"INSERT INTO events (session, ts_ns, offset_ns, kind) VALUES (42, 1, 1, 'x')"}, "events", "session 42"},
		{"filters", []string{"UPDATE sessions SET filters='[{' WHERE id=1"}, "sessions", "not valid JSON"},
		{"qos", []string{"UPDATE messages SET qos=7 WHERE seq=3"}, "messages", "QoS 7"},
		{"props", []string{"UPDATE messages SET props='{' WHERE seq=3"}, "messages", "properties are not valid JSON"},
		{"payload type", []string{"UPDATE messages SET payload='text' WHERE seq=3"}, "messages", "type text"},
		{"no version", []string{"PRAGMA user_version=0"}, "header", "no format version"},
		{"missing table", []string{"DROP VIEW messages_view", "DROP TABLE events"}, "schema", "events is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fixture(t, 100, 20, true)
			rawExec(t, path, tt.stmts...)
			rep, err := Check(context.Background(), path, CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("no problem found: %+v", rep)
			}
			for _, p := range rep.Problems {
				if p.Check == tt.want && strings.Contains(p.Detail, tt.text) {
					return
				}
			}
			t.Fatalf("want a %s problem with %q, got %+v", tt.want, tt.text, rep.Problems)
		})
	}
}

func TestCheckCapsFindings(t *testing.T) {
	path := fixture(t, 200, 10, true)
	rawExec(t, path, "UPDATE messages SET offset_ns = 1000000 - seq WHERE session = 1")
	rep, err := Check(context.Background(), path, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != findingsPerCheck+1 || !strings.Contains(rep.Problems[findingsPerCheck].Detail, "and 179 more order problems") {
		t.Fatalf("%d problems, last %+v", len(rep.Problems), rep.Problems[len(rep.Problems)-1])
	}
}

func TestCheckRefusesNonCaptures(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "x.txt")
	os.WriteFile(text, []byte(strings.Repeat("not a capture ", 20)), 0o600)
	newer := fixture(t, 1, 1, true)
	rawExec(t, newer, fmt.Sprintf("PRAGMA user_version=%d", FormatVersion+1))
	for _, tt := range []struct {
		path string
		want error
	}{{filepath.Join(dir, "missing.db"), ErrNotFound}, {text, ErrNotCapture}, {dir, ErrNotCapture}, {newer, ErrNewerVersion}} {
		if _, err := Check(context.Background(), tt.path, CheckOptions{}); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.path, err, tt.want)
		}
	}
}

// pageSize reads a capture's page size from its header.
func pageSize(t testing.TB, path string) int64 {
	t.Helper()
	hdr := make([]byte, 100)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.ReadFull(f, hdr); err != nil {
		t.Fatal(err)
	}
	return headerPageSize(hdr)
}

// pageCount is how many pages a capture's main file holds.
func pageCount(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size() / pageSize(t, path)
}

// corruptPage overwrites page n (from 1) of a capture with garbage.
func corruptPage(t testing.TB, path string, n int64, fill byte) {
	t.Helper()
	size := pageSize(t, path)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{fill}, int(size)), (n-1)*size); err != nil {
		t.Fatal(err)
	}
}

func TestCheckDamagedPagesAndTruncation(t *testing.T) {
	ctx := context.Background()
	path := fixture(t, 2000, 300, true) // ~1.3 MB
	data, _ := os.ReadFile(path)
	pages := pageCount(t, path)

	bad := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(bad, data, 0o600)
	corruptPage(t, bad, pages/2, 0x5a)
	rep, err := Check(ctx, bad, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || !strings.Contains(kinds(rep.Problems), "sqlite") || !strings.Contains(kinds(rep.Problems), "messages") {
		t.Fatalf("corrupt page: %+v", rep.Problems)
	}
	t.Logf("bad page: %d messages read; problems:\n%s", rep.Messages, fmtFindings(rep.Problems))
	if rep.Messages < 3000 || rep.Messages >= 4000 {
		t.Errorf("read %d of 4000 messages around one bad page", rep.Messages)
	}

	cut := filepath.Join(t.TempDir(), "cut.db")
	os.WriteFile(cut, data[:len(data)*2/3], 0o600)
	rep, err = Check(ctx, cut, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("truncated: %d messages read; problems:\n%s", rep.Messages, fmtFindings(rep.Problems))
	if rep.OK() || rep.Problems[0].Check != "file" || !strings.Contains(rep.Problems[0].Detail, "truncated") {
		t.Fatalf("truncated: %+v", rep.Problems)
	}
}

func fmtFindings(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s: %s\n", f.Check, f.Detail)
	}
	return b.String()
}
