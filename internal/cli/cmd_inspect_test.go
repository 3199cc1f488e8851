package cli

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/storage"
)

func TestParseInspect(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
		chk  func(inspectOptions) bool
	}{
		{[]string{"c.db"}, true, func(o inspectOptions) bool {
			return o.file == "c.db" && o.poll == time.Second && !o.utc && !o.follow && !o.noMouse && o.filter == ""
		}},
		{[]string{"--filter", "plant/+/temp qos>=1", "--utc", "--follow", "--no-mouse", "--poll", "250ms", "c.db"}, true,
			func(o inspectOptions) bool {
				return o.filter == "plant/+/temp qos>=1" && o.utc && o.follow && o.noMouse && o.poll == 250*time.Millisecond
			}},
		{[]string{"-b", "mqtt://h:1884", "-u", "me", "c.db"}, true, func(o inspectOptions) bool {
			return o.conn.broker == "mqtt://h:1884" && o.conn.username == "me"
		}},
		{[]string{"--poll", "0", "c.db"}, true, func(o inspectOptions) bool { return o.poll == 0 }},
		{[]string{}, false, nil},
		{[]string{"a.db", "b.db"}, true, func(o inspectOptions) bool { return len(o.inputs) == 2 }}, // parts read as one
		{[]string{"--poll", "-1s", "c.db"}, false, nil},
		{[]string{"--bogus", "c.db"}, false, nil},
	}
	for _, tt := range tests {
		o, err := parseInspect(tt.args, testIO())
		if (err == nil) != tt.ok || (tt.ok && !tt.chk(o)) {
			t.Errorf("parseInspect(%q) = %+v, %v", tt.args, o, err)
		}
	}
}

// TestInspectRefusesBadFiles: every file mqtape cannot inspect gets one
// clear line and exit 4 before the terminal is touched (a test has no
// terminal, so reaching the UI would fail differently), as do bad flags
// (exit 2).
func TestInspectRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	c, err := storage.OpenWrite(good)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := c.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "c", Protocol: 4,
		StartedNS: 1e18, Version: "test", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []storage.Message
	for i := range 2000 {
		msgs = append(msgs, storage.Message{TimeNS: 1e18 + int64(i), OffsetNS: int64(i), Topic: "a", Payload: make([]byte, 200)})
	}
	if err := s.Write(ctx, msgs, nil, 1e18); err != nil {
		t.Fatal(err)
	}
	if err := s.End(ctx, 2e18, "count", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newer := append([]byte(nil), data...)
	binary.BigEndian.PutUint32(newer[60:], uint32(storage.FormatVersion+1)) // PRAGMA user_version
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"missing", []string{"inspect", filepath.Join(dir, "nope.db")}, exitCapture, "no such file"},
		{"not a capture", []string{"inspect", write("notes.txt", []byte("hello, world"))}, exitCapture, "not an SQLite file"},
		{"empty file", []string{"inspect", write("empty.db", nil)}, exitCapture, "empty file"},
		{"directory without captures", []string{"inspect", t.TempDir()}, exitCapture, "no *.db files in the directory"},
		{"truncated", []string{"inspect", write("cut.db", data[:len(data)/2])}, exitCapture, "truncated"},
		{"newer version", []string{"inspect", write("newer.db", newer)}, exitCapture, "newer"},
		{"bad filter", []string{"inspect", "--filter", "a/#/b", good}, exitUsage, "invalid topic filter"},
		{"bad broker", []string{"inspect", "-b", "gopher://x", good}, exitUsage, "unknown scheme"},
		{"no file", []string{"inspect"}, exitUsage, "missing capture file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, ctx, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.code, stderr, tt.msg)
			}
			if stdout != "" || strings.Contains(stderr, "\x1b") {
				t.Errorf("terminal output before failing: stdout %q, stderr %q", stdout, stderr)
			}
			if lines := strings.Count(strings.TrimSpace(stderr), "\n"); lines > 1 || (lines == 1 && tt.code != exitUsage) {
				t.Errorf("want one clear line (plus a usage hint for exit 2), got:\n%s", stderr)
			}
		})
	}
}
