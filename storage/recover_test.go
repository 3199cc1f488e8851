package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readAll(t *testing.T, path string) ([]SessionInfo, []Message, []Event) {
	t.Helper()
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	s, err := c.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Page(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s, m, e
}

// mustCheck asserts that a capture passes Check.
func mustCheck(t *testing.T, path string) {
	t.Helper()
	rep, err := Check(context.Background(), path, CheckOptions{Full: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check %s: %v\n%s", path, err, fmtFindings(rep.Problems))
	}
}

func TestRecoverCopiesAnIntactCapture(t *testing.T) {
	ctx := context.Background()
	in := fixture(t, 500, 50, false) // the second session was never closed
	before, _ := os.ReadFile(in)
	out := filepath.Join(t.TempDir(), "out.db")
	rep, err := Recover(ctx, in, out)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete() || rep.Sessions != 2 || rep.Messages != 1000 || rep.Events != 4 || rep.Topics != 10 || rep.LostMessages != 0 {
		t.Fatalf("report %+v", rep)
	}
	if after, _ := os.ReadFile(in); !bytes.Equal(before, after) {
		t.Fatal("recover modified its input")
	}
	mustCheck(t, out)
	s1, m1, e1 := readAll(t, in)
	s2, m2, e2 := readAll(t, out)
	if fmt.Sprint(s1) != fmt.Sprint(s2) || s2[1].Closed() {
		t.Errorf("sessions differ:\n%+v\n%+v", s1, s2)
	}
	if len(m1) != len(m2) {
		t.Fatalf("%d messages, want %d", len(m2), len(m1))
	}
	for i := range m1 {
		if !reflect.DeepEqual(m1[i], m2[i]) {
			t.Fatalf("message %d differs:\n%+v\n%+v", i, m1[i], m2[i])
		}
	}
	if fmt.Sprint(e1) != fmt.Sprint(e2) {
		t.Errorf("events differ:\n%+v\n%+v", e1, e2)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("output mode %v", fi.Mode().Perm())
	}

	if _, err := Recover(ctx, in, out); err == nil {
		t.Error("recover overwrote an existing file")
	}
	if _, err := Recover(ctx, filepath.Join(t.TempDir(), "none.db"), filepath.Join(t.TempDir(), "x.db")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing input: %v", err)
	}
	text := filepath.Join(t.TempDir(), "t.txt")
	os.WriteFile(text, bytes.Repeat([]byte("text "), 100), 0o600)
	if _, err := Recover(ctx, text, filepath.Join(t.TempDir(), "y.db")); !errors.Is(err, ErrNotCapture) {
		t.Errorf("text input: %v", err)
	}
}

// intact asserts every recovered message has the fixture's payload for its
// position and returns how many there are.
func intact(t *testing.T, msgs []Message) {
	t.Helper()
	for _, m := range msgs {
		var sess, i int
		if _, err := fmt.Sscanf(string(m.Payload), "%d/%d|", &sess, &i); err != nil {
			t.Fatalf("payload %.20q: %v", m.Payload, err)
		}
		want := bytes.Repeat([]byte{byte('a' + i%26)}, len(m.Payload))
		copy(want, fmt.Sprintf("%d/%d|", sess, i))
		if !bytes.Equal(m.Payload, want) || m.Topic != fmt.Sprintf("s%d/t%d", sess, i%5) || m.OffsetNS != int64(i)*1000 {
			t.Fatalf("message %d/%d damaged: %+.80v", sess, i, m)
		}
	}
}

// messageLeafPage is the middle one of the pages that hold messages rows
// (SQLite's dbstat table), wherever the schema puts the tables.
func messageLeafPage(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pages []int64
	rows, err := db.Query("SELECT pageno FROM dbstat WHERE name = 'messages' AND pagetype = 'leaf' ORDER BY pageno")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		pages = append(pages, n)
	}
	if len(pages) < 8 {
		t.Fatalf("the fixture has %d message pages; the test damages two of them in the middle", len(pages))
	}
	return pages[len(pages)/2-2]
}

func rootPage(t *testing.T, path, table string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow("SELECT rootpage FROM sqlite_schema WHERE name=?", table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecoverSkipsDamage(t *testing.T) {
	ctx := context.Background()
	const perSession, total = 1000, 2000
	src := fixture(t, perSession, 300, true)
	data, _ := os.ReadFile(src)
	page := messageLeafPage(t, src)
	tests := []struct {
		name   string
		damage func(path string)
		check  func(t *testing.T, rep *RecoverReport, msgs []Message, sessions []SessionInfo)
	}{
		{"bad message page", func(p string) { corruptPage(t, p, page, 0x5a) }, func(t *testing.T, rep *RecoverReport, msgs []Message, _ []SessionInfo) {
			if len(rep.Lost) != 1 || rep.Lost[0].Table != "messages" || rep.LostMessages != rep.Lost[0].To-rep.Lost[0].From+1 ||
				rep.Messages+rep.LostMessages != total || rep.LostMessages > 400 {
				t.Fatalf("report %+v", rep)
			}
		}},
		{"zeroed message page", func(p string) { corruptPage(t, p, page+3, 0) }, func(t *testing.T, rep *RecoverReport, msgs []Message, _ []SessionInfo) {
			if rep.Messages+rep.LostMessages != total || rep.LostMessages == 0 || rep.LostMessages > 400 {
				t.Fatalf("report %+v", rep)
			}
		}},
		{"truncated", func(p string) { os.Truncate(p, int64(len(data))*2/3) }, func(t *testing.T, rep *RecoverReport, msgs []Message, _ []SessionInfo) {
			if rep.Messages < total/3 || rep.Messages > total*4/5 || len(rep.Notes) == 0 || rep.Lost[len(rep.Lost)-1].To != total {
				t.Fatalf("report %+v", rep)
			}
		}},
		{"sessions page", func(p string) { corruptPage(t, p, rootPage(t, p, "sessions"), 0x33) }, func(t *testing.T, rep *RecoverReport, msgs []Message, s []SessionInfo) {
			if rep.Messages != total || fmt.Sprint(rep.Recreated) != "[1 2]" || len(s) != 2 || s[0].Source != SourceRecovered ||
				s[1].StartedNS != 1e18 || rep.Complete() {
				t.Fatalf("report %+v\nsessions %+v", rep, s)
			}
		}},
		{"topics page", func(p string) { corruptPage(t, p, rootPage(t, p, "topics"), 0x33) }, func(t *testing.T, rep *RecoverReport, msgs []Message, _ []SessionInfo) {
			if rep.Messages != 0 || rep.NoTopic != total || rep.LostMessages != total {
				t.Fatalf("report %+v", rep)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := filepath.Join(t.TempDir(), "in.db")
			os.WriteFile(in, data, 0o600)
			tt.damage(in)
			before, _ := os.ReadFile(in)
			out := filepath.Join(t.TempDir(), "out.db")
			rep, err := Recover(ctx, in, out)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("copied %d messages, lost %d: %+v", rep.Messages, rep.LostMessages, rep.Lost)
			if after, _ := os.ReadFile(in); !bytes.Equal(before, after) {
				t.Fatal("recover modified its input")
			}
			mustCheck(t, out)
			sessions, msgs, _ := readAll(t, out)
			if int64(len(msgs)) != rep.Messages {
				t.Fatalf("output has %d messages, report says %d", len(msgs), rep.Messages)
			}
			intact(t, msgs)
			tt.check(t, rep, msgs, sessions)
		})
	}
}

func TestRecoverOlderFormat(t *testing.T) {
	in := filepath.Join(t.TempDir(), "v1.db")
	writeV1(t, in)
	out := filepath.Join(t.TempDir(), "out.db")
	rep, err := Recover(context.Background(), in, out)
	if err != nil || !rep.Complete() || rep.Messages != 1 || rep.InVersion != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	_, msgs, _ := readAll(t, out)
	if len(msgs) != 1 || string(msgs[0].Payload) != "hi" || msgs[0].Topic != "old/topic" {
		t.Fatalf("%+v", msgs)
	}
	mustCheck(t, out)
}
