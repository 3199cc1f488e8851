package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostileSchemas change a capture's schema the way an attacker would: SQL
// of the file's own that runs when mqtape reads or writes it.
var hostileSchemas = []struct {
	name  string
	stmts []string
	names string // the object the refusal must name
}{
	{"endless topics view", []string{
		"ALTER TABLE topics RENAME TO topics_real",
		"CREATE VIEW topics AS WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM r) SELECT i AS id, 'x' AS name FROM r",
	}, `view "topics"`},
	{"zeroblob view", []string{
		"ALTER TABLE topics RENAME TO topics_real",
		"CREATE VIEW topics AS SELECT id, name || zeroblob(400000000) AS name FROM topics_real",
	}, `view "topics"`},
	{"deleting trigger", []string{
		"CREATE TRIGGER eat AFTER INSERT ON messages BEGIN DELETE FROM messages WHERE seq = new.seq; END",
	}, `trigger "eat"`},
	{"generated column", []string{
		"ALTER TABLE events ADD COLUMN big BLOB AS (zeroblob(400000000))",
	}, `table "events" differs`},
	{"trigger on the decoders", []string{
		// mqtape decoders set deletes the old map before storing the new one.
		"CREATE TRIGGER wipe AFTER DELETE ON decoders BEGIN DELETE FROM messages; END",
	}, `trigger "wipe"`},
	{"decoder schema behind a view", []string{
		"DROP TABLE decoder_schema",
		"CREATE VIEW decoder_schema AS SELECT 1 AS id, zeroblob(400000000) AS descriptor_set, '[]' AS files",
	}, `view "decoder_schema"`},
	{"extra index on an expression", []string{
		"CREATE INDEX slow ON messages(length(payload))",
	}, `index "slow"`},
}

// hostile writes the fixture capture with stmts run on it behind mqtape's
// back.
func hostile(t *testing.T, stmts []string) string {
	t.Helper()
	path := fixture(t, 50, 16, true)
	rawExec(t, path, stmts...)
	rawExec(t, path, "PRAGMA wal_checkpoint(TRUNCATE)")
	return path
}

func TestHostileSchemaRefused(t *testing.T) {
	for _, h := range hostileSchemas {
		t.Run(h.name, func(t *testing.T) {
			path := hostile(t, h.stmts)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			refused := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), h.names) {
					t.Errorf("%s: got %v, want ErrCorrupt naming %s", what, err, h.names)
				}
			}
			c, err := Open(path)
			if err == nil {
				c.Close()
			}
			refused("Open", err)
			c, err = OpenWrite(path)
			if err == nil {
				c.Close()
			}
			refused("OpenWrite", err)
			_, err = Recover(ctx, path, filepath.Join(t.TempDir(), "out.db"))
			refused("Recover", err)
			rep, err := Check(ctx, path, CheckOptions{Full: true})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(fmtFindings(rep.Problems), h.names) {
				t.Errorf("Check does not list %s:\n%s", h.names, fmtFindings(rep.Problems))
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("refusing took %s", took)
			}
			after, _ := os.ReadFile(path)
			if string(before) != string(after) {
				t.Error("the file was modified")
			}
		})
	}
}

func TestSchemaOfEveryVersionAccepted(t *testing.T) {
	for v := 1; v <= FormatVersion; v++ {
		want, err := expectedSchema(v)
		if err != nil {
			t.Fatal(err)
		}
		foreign, missing, err := schemaProblems(v, want)
		if err != nil || len(foreign)+len(missing) > 0 {
			t.Errorf("version %d: %v %v %v", v, foreign, missing, err)
		}
		with := append(want[:len(want):len(want)], optionalObjects[topicIndex])
		if foreign, _, _ := schemaProblems(v, with); len(foreign) > 0 {
			t.Errorf("version %d with the topic index: %v", v, foreign)
		}
		if v > 1 {
			// A version-1 schema claimed as a later version lacks columns.
			old, _ := expectedSchema(1)
			if foreign, missing, _ := schemaProblems(v, old); len(foreign)+len(missing) == 0 {
				t.Errorf("version 1 schema accepted as version %d", v)
			}
		}
	}
	// The captures written by this build, after a session ended (topic
	// index built), are accepted: fixture opens them.
	c, err := Open(fixture(t, 3, 4, true))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestNormalizeSQL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"CREATE TABLE a (\n\tx INT, -- note\n\ty TEXT /* c */ )", "CREATE TABLE a ( x INT, y TEXT )"},
		{"SELECT '  a -- b  ', \"x  y\"", "SELECT '  a -- b  ', \"x  y\""},
		{"SELECT 'it''s  ok'  ,1", "SELECT 'it''s  ok' ,1"},
		{"SELECT [a  b]", "SELECT [a  b]"},
		{"'unterminated  ", "'unterminated  "},
		{"/* open", ""},
	} {
		if got := normalizeSQL(tc.in); got != tc.want {
			t.Errorf("normalizeSQL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSchemaProblems adds an arbitrary object to mqtape's schema, or puts
// it in place of one of mqtape's: validation never panics, and accepts the
// result only when the object is (a layout of) one of mqtape's own.
func FuzzSchemaProblems(f *testing.F) {
	f.Add("view", "topics", "topics", "CREATE VIEW topics AS SELECT 1", true)
	f.Add("trigger", "t", "messages", "CREATE TRIGGER t AFTER INSERT ON messages BEGIN SELECT 1; END", false)
	f.Add("index", topicIndex, "messages", "CREATE INDEX messages_by_topic ON messages(topic_id, seq)", false)
	f.Add("table", "meta", "meta", "CREATE TABLE meta (\n\tkey TEXT PRIMARY KEY, value TEXT NOT NULL\n) WITHOUT ROWID", true)
	f.Add("table", "Meta", "meta", "CREATE TABLE meta(key TEXT PRIMARY KEY,value TEXT NOT NULL) WITHOUT ROWID", true)
	want, err := expectedSchema(FormatVersion)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ, name, table, sql string, replace bool) {
		have := append([]schemaObject(nil), want...)
		obj := schemaObject{typ, name, table, sql}
		replaced := false
		for i, o := range have {
			if replace && strings.EqualFold(o.Name, name) {
				have[i], replaced = obj, true
			}
		}
		if !replaced {
			have = append(have, obj)
		}
		foreign, missing, err := schemaProblems(FormatVersion, have)
		if err != nil {
			t.Fatal(err)
		}
		if len(foreign)+len(missing) > 0 {
			return
		}
		// Accepted: the object must be mqtape's own (or an optional one),
		// the same but for layout.
		for _, o := range append(want, optionalObjects[topicIndex], optionalObjects["sqlite_stat1"], optionalObjects["sqlite_stat4"]) {
			if o.Type == typ && o.Name == name && strings.EqualFold(o.Table, table) && normalizeSQL(o.SQL) == normalizeSQL(sql) {
				return
			}
		}
		t.Errorf("accepted a foreign object %+v", obj)
	})
}

// TestConnectionsDistrustSchema: every connection, reader and writer, runs
// with trusted_schema=OFF.
func TestConnectionsDistrustSchema(t *testing.T) {
	path := fixture(t, 3, 4, true)
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w, err := OpenWrite(filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for name, db := range map[string]querier{"reader": r.r, "writer": w.w, "writer's reader": w.r} {
		var on int
		if err := db.QueryRowContext(context.Background(), "PRAGMA trusted_schema").Scan(&on); err != nil || on != 0 {
			t.Errorf("%s: trusted_schema=%d (%v), want 0", name, on, err)
		}
	}
}
