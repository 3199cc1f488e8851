package cli

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// writeCapture writes sessions of messages into a new capture at path.
// Message times are given as offsets; session i starts i hours after the
// first.
func writeCapture(t *testing.T, path string, sessions ...[]storage.Message) {
	t.Helper()
	var ss []capturetest.Session
	for i, msgs := range sessions {
		start := int64(1_790_000_000_000_000_000) + int64(i)*3600e9
		out := make([]storage.Message, len(msgs))
		for j, m := range msgs {
			m.TimeNS = start + m.OffsetNS
			out[j] = m
		}
		ss = append(ss, capturetest.Session{Info: storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", StartedNS: start},
			Messages: out, Events: []storage.Event{{TimeNS: start, Kind: "connected"}}, Reason: "interrupted", Batch: max(len(out), 1)})
	}
	capturetest.Write(t, path, ss...)
}

// sampleSessions is a two-session capture with every kind of field.
func sampleSessions() [][]storage.Message {
	expiry := uint32(60)
	return [][]storage.Message{{
		{OffsetNS: 1000, Topic: "home/door", QoS: 1, Retain: true, FromStore: true, Payload: []byte("closed")},
		{OffsetNS: 2e9, Topic: "home/temp", QoS: 1, PacketID: 7, Payload: []byte(`{"t":21.5,"ts":1}`)},
		{OffsetNS: 2e9 + 1, Topic: "bin/ü ber/", QoS: 2, PacketID: 65535, Dup: true, Payload: []byte{0, 0xff, 0xfe, '\n'}},
		{OffsetNS: 3e9, Topic: "home/temp", Payload: []byte(`{"t":21.7,"ts":2}`), ClientID: "thermo-1", Props: &mqtt.Properties{
			ContentType: "application/json", MessageExpiry: &expiry, CorrelationData: []byte{0, 1},
			UserProperties: []mqtt.UserProperty{{Key: "k", Value: "1"}, {Key: "k", Value: "2"}}}},
		{OffsetNS: 3e9, Topic: "empty", Payload: []byte{}},
	}, {
		{OffsetNS: 5, Topic: "home/door", QoS: 1, Retain: true, FromStore: true, Payload: []byte("open")},
		{OffsetNS: 1e9, Topic: "home/temp", Payload: []byte(`{"t":22,"ts":3}`)},
	}}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestImportExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig.db")
	writeCapture(t, orig, sampleSessions()...)
	code, export1, stderr := runCLI(t, ctx, "export", orig)
	if code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	in := filepath.Join(dir, "orig.jsonl")
	os.WriteFile(in, []byte(export1), 0o600)
	before := fileHash(t, in)
	copyDB := filepath.Join(dir, "copy.db")
	code, out, stderr := runCLI(t, ctx, "import", in, "-o", copyDB)
	if code != 0 || out != "" || !strings.Contains(stderr, "imported 7 messages (jsonl)") || !strings.Contains(stderr, "sessions 1, 2") {
		t.Fatalf("import: exit %d, stdout %q, stderr %s", code, out, stderr)
	}
	if fileHash(t, in) != before {
		t.Fatal("import changed its input")
	}
	code, export2, _ := runCLI(t, ctx, "export", copyDB)
	if !strings.Contains(export1, `"user_properties":[{"key":"k","value":"1"},{"key":"k","value":"2"}]`) {
		t.Fatalf("the sample has no properties:\n%s", export1)
	}
	if code != 0 || export2 != export1 {
		t.Fatalf("export → import → export differs:\n%s\n---\n%s", export1, export2)
	}
	if fi, err := os.Stat(copyDB); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("output mode: %v %v", fi.Mode(), err)
	}
	code, _, stderr = runCLI(t, ctx, "diff", orig, copyDB)
	if code != 0 {
		t.Errorf("diff of a round trip: %d %s", code, stderr)
	}
	// Importing again appends a session.
	if code, _, stderr = runCLI(t, ctx, "import", "--quiet", in, "-o", copyDB); code != 0 {
		t.Fatalf("append: %d %s", code, stderr)
	}
	c, err := storage.Open(copyDB)
	if err != nil {
		t.Fatal(err)
	}
	sessions, _ := c.Sessions(ctx)
	c.Close()
	if len(sessions) != 4 || sessions[3].Source != "import" || sessions[3].Version != version {
		t.Errorf("sessions after append: %+v", sessions)
	}
}

func TestImportErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	good := write("good.jsonl", `{"topic":"a","payload":"x"}`+"\n")
	partly := write("partly.jsonl", `{"topic":"a","payload":"x"}`+"\n{oops\n")
	garbage := write("garbage.bin", "\x00\x01\x02 not a format")
	allBad := write("bad.jsonl", `{"topic":"a/#"}`+"\n")
	notCapture := write("text.txt", "hello\n")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
		out  string // output file that must not exist afterwards
	}{
		{"no output", []string{good}, exitUsage, "missing -o", ""},
		{"no input", []string{"-o", filepath.Join(dir, "x.db")}, exitUsage, "expected one input", ""},
		{"bad format", []string{"--format", "csv", good, "-o", filepath.Join(dir, "x.db")}, exitUsage, "--format", ""},
		{"bad port", []string{"--port", "0", good, "-o", filepath.Join(dir, "x.db")}, exitUsage, "--port", ""},
		{"missing input", []string{filepath.Join(dir, "nope"), "-o", filepath.Join(dir, "m.db")}, exitError, "no such file", filepath.Join(dir, "m.db")},
		{"unknown format", []string{garbage, "-o", filepath.Join(dir, "g.db")}, exitError, "unknown input format", filepath.Join(dir, "g.db")},
		{"nothing importable", []string{allBad, "-o", filepath.Join(dir, "b.db")}, exitError, "no message could be imported", filepath.Join(dir, "b.db")},
		{"output not a capture", []string{good, "-o", notCapture}, exitCapture, "not an mqtape capture", ""},
		{"output is input", []string{good, "-o", good}, exitUsage, "is the input", ""},
		{"strict", []string{"--strict", partly, "-o", filepath.Join(dir, "s.db")}, exitError, "--strict", ""},
		{"partly bad is fine", []string{partly, "-o", filepath.Join(dir, "p.db")}, exitOK, "line 2: invalid JSON", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash := fileHash(t, notCapture)
			code, out, stderr := runCLI(t, ctx, append([]string{"import"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) || out != "" {
				t.Errorf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, tt.code, out, stderr, tt.msg)
			}
			if tt.out != "" && fileExists(tt.out) {
				t.Errorf("%s left behind", tt.out)
			}
			if fileHash(t, notCapture) != hash {
				t.Error("a file that is not a capture was changed")
			}
		})
	}
}

func TestImportHelp(t *testing.T) {
	for _, verb := range []string{"import", "diff", "cut", "merge"} {
		code, out, _ := runCLI(t, context.Background(), verb, "--help")
		if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "mqtape "+verb) {
			t.Errorf("%s --help: exit %d\n%s", verb, code, out)
		}
	}
}

// TestSampleCaptures checks testdata/captures: each .db is its .jsonl source
// imported (so they cannot drift apart), the sources are what the generator
// writes, every file is at most 1 MB, and each sample shows what its README
// line promises.
func TestSampleCaptures(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join("..", "..", "testdata", "captures")
	regen := t.TempDir()
	gen := exec.Command("go", "run", "./testdata/captures/gen", regen)
	gen.Dir = filepath.Join("..", "..") // the module root: testdata is not importable
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, out)
	}
	for _, name := range []string{"smart-home", "misbehaving-device", "industrial"} {
		t.Run(name, func(t *testing.T) {
			src, db := filepath.Join(dir, name+".jsonl"), filepath.Join(dir, name+".db")
			for _, f := range []string{src, db} {
				if fi, err := os.Stat(f); err != nil || fi.Size() > 1<<20 {
					t.Fatalf("%s: %v (size > 1 MB?)", f, err)
				}
			}
			if fileHash(t, src) != fileHash(t, filepath.Join(regen, name+".jsonl")) {
				t.Errorf("%s is not what the generator writes: go run ./testdata/captures/gen", src)
			}
			fresh := filepath.Join(t.TempDir(), "fresh.db")
			if code, _, stderr := runCLI(t, ctx, "import", "--quiet", "--strict", src, "-o", fresh); code != 0 {
				t.Fatalf("import: %s", stderr)
			}
			_, want, _ := runCLI(t, ctx, "export", fresh)
			code, got, stderr := runCLI(t, ctx, "export", db)
			if code != 0 || got != want {
				t.Fatalf("%s is not its source imported (%s): rebuild it with mqtape import", db, stderr)
			}
			msgs, _, _ := readCapture(t, db)
			var store, dup, retainedLive, binary, badJSON int
			for _, m := range msgs {
				switch {
				case m.FromStore:
					store++
				case m.Retain:
					retainedLive++
				}
				if m.Dup {
					dup++
				}
				if !utf8.Valid(m.Payload) {
					binary++
				}
				if len(m.Payload) > 0 && m.Payload[0] == '{' && !json.Valid(m.Payload) {
					badJSON++
				}
			}
			ok := map[string]bool{
				"smart-home":         store >= 10 && retainedLive >= 10 && binary == 0 && len(msgs) > 200,
				"misbehaving-device": dup > 5 && badJSON > 5 && retainedLive > 50 && len(msgs) > 700,
				"industrial":         binary > 100 && store == 2 && retainedLive == 2,
			}[name]
			if !ok {
				t.Errorf("%d messages: %d from the store, %d live retained, %d dup, %d binary, %d bad JSON",
					len(msgs), store, retainedLive, dup, binary, badJSON)
			}
		})
	}
}

// TestImportTruncatedCorrelationData: mosquitto_sub -V 5 -F %j prints
// correlation data only up to its first NUL byte; binary or empty
// correlation data is imported as read, counted, reported on stderr and
// stored as import_problem events.
func TestImportTruncatedCorrelationData(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "sub.txt"), filepath.Join(dir, "sub.db")
	lines := `{"tst":"2026-12-03T10:18:34.972996Z+0000","topic":"a","qos":0,"retain":0,"payloadlen":1,"properties":{"correlation-data":"` + "\xde\xad\xbe\xef" + `"},"payload":"x"}
{"tst":"2026-12-03T10:18:34.973341Z+0000","topic":"b","qos":0,"retain":0,"payloadlen":1,"properties":{"correlation-data":""},"payload":"y"}
{"tst":"2026-12-03T10:18:34.973581Z+0000","topic":"c","qos":0,"retain":0,"payloadlen":1,"properties":{"correlation-data":"abc"},"payload":"z"}
`
	os.WriteFile(in, []byte(lines), 0o600)
	code, _, stderr := runCLI(t, context.Background(), "import", in, "-o", out)
	if code != exitOK || !strings.Contains(stderr, "warning: 2 messages imported with MQTT 5 correlation data that may be cut short (line 1, line 2)") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	msgs, _, events := capturetest.Read(t, out)
	if len(msgs) != 3 || string(msgs[0].Props.CorrelationData) != "\xde\xad\xbe\xef" || string(msgs[2].Props.CorrelationData) != "abc" {
		t.Errorf("messages %+v", msgs)
	}
	n := 0
	for _, e := range events {
		if e.Kind == "import_problem" && strings.Contains(e.Detail, "correlation data") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d import_problem events about correlation data: %+v", n, events)
	}
}
