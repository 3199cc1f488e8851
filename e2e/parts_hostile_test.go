package e2e

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

// hostileParts writes a recording of 30 messages in three parts (the
// first message retained, carried into the later parts) and returns the
// parts' glob.
func hostileParts(t *testing.T) (glob string, parts []string) {
	t.Helper()
	dir := t.TempDir()
	var msgs []storage.Message
	for i := range 30 {
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*time.Second, "dev/1", 1, "x"))
	}
	msgs[0].Topic, msgs[0].Retain, msgs[0].FromStore = "state", true, true
	parts, _ = capturetest.WriteParts(t, dir, "r1", msgs, 10, 20)
	return filepath.Join(dir, "run-*.db"), parts
}

// TestPartsHostileVerbs: the reading verbs on parts that are named twice,
// whose split links lie, or among which one is not a sound capture: the
// same messages as the parts merged (cut), or exit 4 naming the file;
// never a panic, and the parts are left as they were.
func TestPartsHostileVerbs(t *testing.T) {
	ctx := context.Background()
	t.Run("named twice", func(t *testing.T) {
		glob, parts := hostileParts(t)
		lines := exportRawLines(t, glob, "--quiet")
		code, out, errb := runCLI(t, ctx, "export", glob, parts[1], parts[1])
		if code != exitOK || strings.Count(out, "\n") != len(lines) || len(lines) != 30 {
			t.Errorf("export of the parts, one named again: exit %d, %d lines, want %d: %s", code, strings.Count(out, "\n"), len(lines), errb)
		}
	})
	t.Run("lying links", func(t *testing.T) {
		glob, parts := hostileParts(t)
		db, err := sql.Open("sqlite", parts[1])
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Exec(`UPDATE events SET detail = json_set(detail, '$.carried', 1000) WHERE kind = 'split' AND json_extract(detail, '$.next') IS NULL`)
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		merged := filepath.Join(t.TempDir(), "merged.db")
		if code, _, errb := runCLI(t, ctx, "cut", glob, "-o", merged, "--quiet"); code != exitOK {
			t.Fatalf("cut: exit %d: %s", code, errb)
		}
		got, want := exportRawLines(t, glob), exportRawLines(t, merged)
		if strings.Join(got, "\n") != strings.Join(want, "\n") || len(got) != 30 {
			t.Errorf("export of parts whose link lies: %d lines, merged %d, recorded 30", len(got), len(want))
		}
	})
	for name, damage := range map[string]func(path string) error{
		"not a capture": func(path string) error { return os.WriteFile(path, []byte("not sqlite at all"), 0o600) },
		"truncated": func(path string) error {
			b, err := os.ReadFile(path)
			if err == nil {
				err = os.WriteFile(path, b[:len(b)/3], 0o600)
			}
			return err
		},
		"newer format": func(path string) error {
			db, err := sql.Open("sqlite", path)
			if err == nil {
				_, err = db.Exec("PRAGMA user_version = 999")
				db.Close()
			}
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			glob, parts := hostileParts(t)
			if err := damage(parts[1]); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(parts[1])
			other := filepath.Join(t.TempDir(), "other.db")
			capturetest.Write(t, other, capturetest.Session{Messages: []storage.Message{capturetest.Msg(0, "a", 0, "x")}})
			for _, args := range [][]string{{"info", glob}, {"export", glob}, {"play", "--dry-run", glob},
				{"diff", other, filepath.Dir(glob)}, {"cut", glob, "-o", filepath.Join(t.TempDir(), "c.db")},
				{"inspect", glob}, {"web", "--listen", "127.0.0.1:0", glob}} {
				code, _, errb := runCLI(t, ctx, args...)
				if code != exitCapture || !strings.Contains(errb, filepath.Base(parts[1])) || strings.Contains(errb, "goroutine") {
					t.Errorf("%s with a part %s: exit %d, want %d naming %s: %s", args[0], name, code, exitCapture, parts[1], errb)
				}
			}
			if after, _ := os.ReadFile(parts[1]); string(after) != string(before) {
				t.Errorf("the damaged part was modified")
			}
		})
	}
}
