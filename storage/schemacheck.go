package storage

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// A capture file is untrusted input: besides data it can carry SQL of its
// own (a view standing in for a table, a trigger, a generated column) that
// SQLite runs when mqtape reads or writes the file. So before any query
// touches a table, the schema objects are compared with the ones mqtape's
// migrations create for the file's format version, and a file with anything
// else is refused. Connections also run with trusted_schema=OFF.

// schemaObject is one row of sqlite_schema.
type schemaObject struct {
	Type, Name, Table, SQL string
}

// optionalObjects may be missing from a capture: the topic index while a
// session records (or after a crash), and SQLite's own statistics tables,
// which `ANALYZE` or `PRAGMA optimize` in the sqlite3 shell creates; they
// only steer the query planner.
var optionalObjects = map[string]schemaObject{
	topicIndex:     {"index", topicIndex, "messages", "CREATE INDEX " + topicIndex + " ON messages(topic_id, seq)"},
	"sqlite_stat1": {"table", "sqlite_stat1", "sqlite_stat1", "CREATE TABLE sqlite_stat1(tbl,idx,stat)"},
	"sqlite_stat4": {"table", "sqlite_stat4", "sqlite_stat4", "CREATE TABLE sqlite_stat4(tbl,idx,neq,nlt,ndlt,sample)"},
}

var (
	expectedMu      sync.Mutex
	expectedSchemas = map[int][]schemaObject{}
)

// expectedSchema returns the schema objects migrations 1..version create,
// by applying them to an in-memory database (once per version).
func expectedSchema(version int) ([]schemaObject, error) {
	expectedMu.Lock()
	defer expectedMu.Unlock()
	if objs, ok := expectedSchemas[version]; ok {
		return objs, nil
	}
	db, err := sql.Open("sqlite", "file::memory:?_pragma=trusted_schema(0)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	for _, m := range migrations[:version] {
		if _, err := db.ExecContext(ctx, m); err != nil {
			return nil, fmt.Errorf("build the format %d schema: %w", version, err)
		}
	}
	objs, err := readSchema(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("build the format %d schema: %w", version, err)
	}
	expectedSchemas[version] = objs
	return objs, nil
}

// readSchema reads sqlite_schema. It runs nothing the file defines.
func readSchema(ctx context.Context, q querier) ([]schemaObject, error) {
	rows, err := q.QueryContext(ctx, "SELECT type, name, tbl_name, sql FROM sqlite_schema")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schemaObject
	for rows.Next() {
		var v [4]any
		if err := rows.Scan(&v[0], &v[1], &v[2], &v[3]); err != nil {
			return nil, err
		}
		o := schemaObject{asString(v[0]), asString(v[1]), asString(v[2]), asString(v[3])}
		if o == (schemaObject{}) {
			continue // a zeroed entry (a damaged or truncated page) defines nothing
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// schemaProblems compares a capture's schema objects with mqtape's for
// format version, naming each object: foreign lists those the file defines
// or changed (SQL of its own), missing those of mqtape's it lacks. None
// means the schema is exactly mqtape's (the optional objects may be
// missing).
func schemaProblems(version int, have []schemaObject) (foreign, missing []string, err error) {
	if version < 1 || version > FormatVersion {
		return nil, nil, fmt.Errorf("no schema for format version %d", version)
	}
	want, err := expectedSchema(version)
	if err != nil {
		return nil, nil, err
	}
	wantBy := make(map[string]schemaObject, len(want))
	for _, o := range want {
		wantBy[strings.ToLower(o.Name)] = o
	}
	// The most telling first: an object in place of one of mqtape's, SQL
	// that runs (views, triggers), then the rest.
	var ranked [3][]string
	problem := func(rank int, format string, a ...any) {
		ranked[rank] = append(ranked[rank], fmt.Sprintf(format, a...))
	}
	seen := make(map[string]bool)
	for _, o := range have {
		key := strings.ToLower(o.Name)
		w, ok := wantBy[key]
		if !ok {
			w, ok = optionalObjects[key]
		}
		runs := 2
		if o.Type == "view" || o.Type == "trigger" {
			runs = 1
		}
		switch {
		case !ok:
			problem(runs, "%s %q is not part of the format", objType(o.Type), o.Name)
		case seen[key]:
			problem(0, "%s %q is defined twice", objType(o.Type), o.Name)
		case o.Type != w.Type:
			problem(0, "%s %q stands where mqtape has a %s", objType(o.Type), o.Name, w.Type)
		case o.Name != w.Name || !strings.EqualFold(o.Table, w.Table) || normalizeSQL(o.SQL) != normalizeSQL(w.SQL):
			problem(runs, "%s %q differs from mqtape's definition", o.Type, o.Name)
		}
		seen[key] = true
	}
	for _, w := range want {
		if !seen[strings.ToLower(w.Name)] {
			missing = append(missing, fmt.Sprintf("%s %s is missing", w.Type, w.Name))
		}
	}
	return slices.Concat(ranked[:]...), missing, nil
}

// objType names a schema object type for a message (the file chose it).
func objType(t string) string {
	switch t {
	case "table", "index", "view", "trigger":
		return t
	}
	return fmt.Sprintf("object of type %q", t)
}

// normalizeSQL drops comments and collapses white space outside quoted
// strings and identifiers, so that the same definition compares equal
// however it was laid out.
func normalizeSQL(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			space = true
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				i = len(s)
			} else {
				i += end + 4
			}
			space = true
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			space = true
			i++
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		if close, quoted := quoteEnd(c); quoted {
			j := i + 1
			for j < len(s) {
				if s[j] == close {
					if j+1 < len(s) && s[j+1] == close && close != ']' {
						j += 2 // a doubled quote stands for itself
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(s))
			b.WriteString(s[i:j])
			i = j
			continue
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

// quoteEnd returns the character that closes a quote opened by c.
func quoteEnd(c byte) (byte, bool) {
	switch c {
	case '\'', '"', '`':
		return c, true
	case '[':
		return ']', true
	}
	return 0, false
}

// validateSchema refuses a capture whose schema objects are not exactly
// mqtape's for its format version (ErrCorrupt, naming them).
func (c *Capture) validateSchema(ctx context.Context, q querier) error {
	objs, err := readSchema(ctx, q)
	if err != nil {
		return c.wrap("read schema", err)
	}
	foreign, missing, err := schemaProblems(c.version, objs)
	if err != nil {
		return c.wrap("check schema", err)
	}
	return schemaError(c.path, append(foreign, missing...))
}

// schemaError words schema problems as one error (nil for none).
func schemaError(path string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	const shown = 3
	list := strings.Join(problems[:min(len(problems), shown)], "; ")
	if len(problems) > shown {
		list += fmt.Sprintf("; and %d more (see mqtape check)", len(problems)-shown)
	}
	return fmt.Errorf("open capture %q: %w: its schema is not mqtape's, so it is not read: %s", path, ErrCorrupt, list)
}
