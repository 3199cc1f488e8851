package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedRowsAreErrCorrupt: values of the wrong type, a message whose
// topic row is gone and unreadable properties or filters are damage
// (ErrCorrupt, exit 4) in mqtape's words, never a driver's scan error, and
// never a silently shorter read or cut.
func TestDamagedRowsAreErrCorrupt(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct{ name, stmt, want string }{
		{"text time", "UPDATE messages SET ts_ns = 'soon' WHERE seq = 5", `column "ts_ns"`},
		{"blob qos", "UPDATE messages SET qos = x'00' WHERE seq = 5", `column "qos"`},
		{"missing topic", "UPDATE messages SET topic_id = 999 WHERE seq = 5", "message seq 5 refers to topic id"},
		{"qos 7", "UPDATE messages SET qos = 7 WHERE seq = 5", "message seq 5 has QoS 7"},
		{"bad properties", "UPDATE messages SET props = '{' WHERE seq = 5", "message seq 5: MQTT 5 properties"},
		{"bad session start", "UPDATE sessions SET started_ns = 'then' WHERE id = 1", `column "started_ns"`},
		{"bad filters", "UPDATE sessions SET filters = '[' WHERE id = 1", "session 1: filters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fixture(t, 20, 8, true)
			rawExec(t, path, tc.stmt)
			c, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			damaged := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "Scan error") {
					t.Errorf("%s: got %v, want ErrCorrupt with %q", what, err, tc.want)
				}
			}
			var readErr error
			if strings.Contains(tc.stmt, "sessions") {
				_, readErr = c.Sessions(ctx)
			} else {
				_, readErr = c.Page(ctx, Query{})
			}
			damaged("read", readErr)
			if strings.Contains(tc.stmt, "messages") && !strings.Contains(tc.stmt, "props") {
				// info's statistics read the same columns (not props).
				_, _, err := c.Stats(ctx)
				damaged("stats", err)
			}
			if tc.name == "qos 7" { // the inspector's rows
				_, err := c.RowsBySeq(ctx, []int64{4, 5}, 10)
				damaged("rows", err)
			}
			out, err := OpenWrite(filepath.Join(t.TempDir(), "cut.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			_, err = Cut(ctx, c, out, CutOptions{})
			damaged("cut", err)
		})
	}
}

// TestCutRefusesHoles: a cut of every topic that finds seq numbers missing
// in a session (rows lost to damage) fails instead of copying less.
func TestCutRefusesHoles(t *testing.T) {
	ctx := context.Background()
	path := fixture(t, 20, 8, true)
	rawExec(t, path, "DELETE FROM messages WHERE seq BETWEEN 3 AND 6")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	outPath := filepath.Join(t.TempDir(), "cut.db")
	out, err := OpenWrite(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	_, err = Cut(ctx, c, out, CutOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "seq 3–6 missing") {
		t.Errorf("cut: %v, want ErrCorrupt naming seq 3–6", err)
	}
	if _, err := os.Stat(outPath); err != nil {
		t.Fatal(err)
	}
}
