package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
)

// TestHostileCaptureSchema points every verb that reads or writes a
// capture at files that carry SQL of their own (issue 15): a topics view
// with an endless recursive query, a view adding a 400 MB zeroblob to
// every topic, a trigger that deletes each message as it is inserted. Each
// verb refuses the file quickly (exit 4) naming the object, and leaves it
// byte for byte as it was; check lists the object.
func TestHostileCaptureSchema(t *testing.T) {
	ctx := context.Background()
	good := capturetest.WriteBig(t, 300)
	dir := t.TempDir()
	jsonl := filepath.Join(dir, "in.jsonl")
	code, out, stderr := runCLI(t, ctx, "export", good)
	if code != exitOK {
		t.Fatalf("export: exit %d: %s", code, stderr)
	}
	if err := os.WriteFile(jsonl, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	// A second sound input for merge (the same file named twice is read
	// once, and merge then has one input).
	other := filepath.Join(dir, "other.db")
	if data, err := os.ReadFile(good); err != nil || os.WriteFile(other, data, 0o600) != nil {
		t.Fatalf("copy %s: %v", good, err)
	}
	closed := startBroker(t)
	closedURL := closed.URL()
	closed.Close()

	for _, h := range []struct {
		name, object string
		stmts        []string
	}{
		{"endless view", `view "topics"`, []string{"ALTER TABLE topics RENAME TO t_real",
			"CREATE VIEW topics AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r) SELECT i AS id, 'x' AS name FROM r"}},
		{"zeroblob view", `view "topics"`, []string{"ALTER TABLE topics RENAME TO t_real",
			"CREATE VIEW topics AS SELECT id, name, zeroblob(400000000) AS pad FROM t_real"}},
		{"deleting trigger", `trigger "eat"`, []string{
			"CREATE TRIGGER eat AFTER INSERT ON messages BEGIN DELETE FROM messages WHERE seq = new.seq; END"}},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(h.name, " ", "-")+".db")
		data, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", path) // registered by storage
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(h.stmts, "PRAGMA wal_checkpoint(TRUNCATE)", "PRAGMA journal_mode=DELETE") {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		db.Close()
		setup, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		o := func(name string) string { return filepath.Join(dir, h.name+"-"+name+".db") }
		for _, args := range [][]string{
			{"info", path}, {"info", "--json", path}, {"export", path}, {"export", "--format", "csv", path},
			{"recover", path, "-o", o("recover")}, {"check", path}, {"import", jsonl, "-o", path},
			{"record", "-o", path, "-b", closedURL, "--quiet"}, {"cut", path, "-o", o("cut")},
			{"merge", good, path, "-o", o("merge")}, {"merge", good, other, "-o", path}, {"diff", good, path},
			{"play", "--dry-run", path}, {"serve", "-o", path, "--listen", "127.0.0.1:0", "--duration", "1s", "--quiet"},
			{"inspect", path},
		} {
			t.Run(h.name+"/"+strings.Join(args[:1], " "), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				start := time.Now()
				code, _, stderr := runCLI(t, ctx, args...)
				if took := time.Since(start); took > 3*time.Second {
					t.Errorf("%v took %s", args, took)
				}
				want := exitCapture // diff too: 2 is its other errors, 1 "different"
				if code != want {
					t.Errorf("%v: exit %d, want %d; stderr:\n%s", args, code, want, stderr)
				}
				if !strings.Contains(stderr, h.object) && args[0] != "check" {
					t.Errorf("%v: stderr does not name %s:\n%s", args, h.object, stderr)
				}
				after, _ := os.ReadFile(path)
				if !bytes.Equal(after, setup) {
					t.Errorf("%v modified %s", args, path)
				}
			})
		}
		// check names the object on stdout.
		_, out, _ := runCLI(t, ctx, "check", path)
		if !strings.Contains(out, h.object) || strings.Contains(out, "recover "+path) {
			t.Errorf("check %s does not list %s, or proposes recover (which refuses it):\n%s", h.name, h.object, out)
		}
	}
}

// TestDamagedRowsExit4: rows the format does not allow (a time that is
// text, a message whose topic row is gone) make the readers and cut exit 4
// with mqtape's words, not a driver's scan error, and cut writes nothing.
func TestDamagedRowsExit4(t *testing.T) {
	ctx := context.Background()
	for _, stmt := range []string{"UPDATE messages SET ts_ns = 'soon' WHERE seq = 100",
		"UPDATE messages SET topic_id = 999 WHERE seq = 100"} {
		path := capturetest.WriteBig(t, 300)
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
		db.Close()
		out := filepath.Join(t.TempDir(), "cut.db")
		for _, args := range [][]string{{"export", path}, {"export", "--format", "csv", path}, {"play", "--dry-run", path},
			{"cut", path, "-o", out}} {
			code, _, stderr := runCLI(t, ctx, args...)
			if code != exitCapture || !strings.Contains(stderr, "damaged") || strings.Contains(stderr, "Scan error") {
				t.Errorf("%s: %v: exit %d, want %d; stderr:\n%s", stmt, args, code, exitCapture, stderr)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: cut left %s", stmt, out)
		}
	}
}

// TestRecoverRepairsExit0: a QoS of 7 and an offset going back are
// repaired and listed; recover exits 0 having written a sound capture,
// says on stderr that the input was damaged, never calls it a bug, and
// leaves no temporary file.
func TestRecoverRepairsExit0(t *testing.T) {
	ctx := context.Background()
	path := capturetest.WriteBig(t, 300)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"UPDATE messages SET qos = 7 WHERE seq = 50", "UPDATE messages SET offset_ns = 0 WHERE seq = 100"} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	dir := t.TempDir()
	out := filepath.Join(dir, "fixed.db")
	code, stdout, stderr := runCLI(t, ctx, "recover", path, "-o", out)
	if code != exitOK || strings.Count(stdout, "repaired:  session 1: 1 messages") != 2 || !strings.Contains(stderr, "was damaged") ||
		strings.Contains(stderr, "bug") {
		t.Errorf("recover: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, out, _ := runCLI(t, ctx, "check", out); code != exitOK {
		t.Errorf("check of the recovered capture: exit %d\n%s", code, out)
	}
	for _, d := range []string{dir, filepath.Dir(path)} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".mqtape-recover-") {
				t.Errorf("left %s", e.Name())
			}
		}
	}
}
