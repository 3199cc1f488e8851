package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

// gateAuthenticate and gateAllow make an embedded broker that accepts only
// alice/right and denies every subscription (SUBACK 0x80) while allowing
// publishes.
func gateAuthenticate(_, username string, password []byte) bool {
	return username == "alice" && string(password) == "right"
}

func gateAllow(_, _ string, write bool) bool { return write }

// badFiles are the files every verb that reads or writes a capture must
// refuse, untouched, with exit 4.
type badFiles struct {
	dir                                           string
	good, empty, random, sqlite, truncated, newer string
	missing                                       string
}

func makeBadFiles(t *testing.T) badFiles {
	t.Helper()
	dir := t.TempDir()
	f := badFiles{dir: dir, missing: filepath.Join(dir, "missing.db")}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := capturetest.WriteBig(t, 3000)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	f.good = write("good.db", data)
	f.truncated = write("truncated.db", data[:len(data)/2])
	f.empty = write("empty.db", nil)
	rnd := make([]byte, 70000)
	r := rand.New(rand.NewPCG(7, 7))
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	f.random = write("random.db", rnd)
	f.newer = write("newer.db", data)
	f.sqlite = filepath.Join(dir, "other.db")
	for _, s := range []struct{ path, stmt string }{
		{f.newer, fmt.Sprintf("PRAGMA user_version=%d", storage.FormatVersion+1)},
		{f.sqlite, "CREATE TABLE notes(x); INSERT INTO notes VALUES ('mine')"},
	} {
		db, err := sql.Open("sqlite", s.path) // registered by storage
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(s.stmt); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	return f
}

// verbShape says how to point a verb at a capture and a broker, and which
// of its flag values are invalid. Every verb `mqtape --help` lists needs one; a new
// verb without one still gets the generic cases.
type verbShape struct {
	read   func(path string) []string      // args that make it read the capture at path
	write  func(path string) []string      // args that make it write a capture at path
	broker func(url, good string) []string // args that make it connect to url (reading good when it needs a capture)
	// validatesOnly: the verb checks its broker flags but does not connect.
	validatesOnly bool
	flags         [][]string // each must exit 2
	noArgs        bool       // running it without arguments is a usage error
	verdict       bool       // prints a verdict/report on stdout even when it fails
	// sets: it reads several captures as one, so a directory is the
	// captures in it (here damaged ones: the first is named).
	sets bool
}

func shapes(dir string) map[string]verbShape {
	out := func(name string) string { return filepath.Join(dir, "out-"+name+".db") }
	return map[string]verbShape{
		"record": {
			write:  func(p string) []string { return []string{"-o", p, "--quiet", "-b", "mqtt://127.0.0.1:1"} },
			broker: func(u, _ string) []string { return []string{"-b", u, "--quiet", "-o", out("record")} },
			flags: [][]string{{"-o", out("r"), "-q", "3"}, {"-o", out("r"), "--duration", "soon"}, {"-o", out("r"), "--count", "-1"},
				{"-o", out("r"), "--flush-interval", "0"}, {"-o", out("r"), "--clean=false"}, {"-o", out("r"), "--keepalive", "10ms"},
				{"-o", out("r"), "--connect-timeout", "0s"}, {"-o", out("r"), "-t", "a/#/b"}, {"-o", out("r"), "-t", "a+"},
				{"-o", out("r"), "extra"}, {"-o", out("r"), "--password", "x"}, {"-o", out("r"), "-V", "6"}},
			noArgs: true,
		},
		"info": {read: func(p string) []string { return []string{p} }, flags: [][]string{{"--json=maybe", "a.db"}}, noArgs: true, sets: true},
		"export": {read: func(p string) []string { return []string{p} }, flags: [][]string{{"--format", "xml", "x.db"}, {"--from", "yesterday", "x.db"}, {"--to", "1parsec", "x.db"}, {"--session", "-1", "x.db"}, {"-t", "a/#/b", "x.db"}, {"-x", "#/a", "x.db"},
			{"--format", "parquet", "x.db"}, {"--format", "mcap", "x.db"}}, noArgs: true, sets: true},
		"inspect": {read: func(p string) []string { return []string{p} },
			broker:        func(u, good string) []string { return []string{"-b", u, good} },
			validatesOnly: true,
			flags: [][]string{{"--poll", "-1s", "x.db"}, {"--poll", "often", "x.db"},
				{"--decode", "a/#=xml", "x.db"}, {"--decode", "a/#=protobuf:x.Y", "x.db"}},
			noArgs: true, sets: true},
		"play": {read: func(p string) []string { return []string{p} }, sets: true,
			broker: func(u, good string) []string { return []string{good, "-b", u, "--quiet"} },
			flags: [][]string{{"--speed", "0", "x.db"}, {"--speed", "fast", "x.db"}, {"--loop", "-1", "x.db"}, {"--qos", "5", "x.db"},
				{"--max-inflight", "0", "x.db"}, {"--retained", "maybe", "x.db"}, {"--remap", "nothing", "x.db"},
				{"--topic-prefix", "a/#", "x.db"}, {"--max-gap", "-1s", "x.db"}, {"-t", "a/#/b", "x.db"}, {"--from", "then", "x.db"},
				{"--sparkplug-seq", "reset", "x.db"}},
			noArgs: true},
		"demo": {write: func(p string) []string { return []string{"-o", p, "--duration", "1s", "--quiet"} },
			flags: [][]string{{"--duration", "0s"}, {"--duration", "25h"}, {"extra"}}},
		"serve": {write: func(p string) []string {
			return []string{"-o", p, "--listen", "127.0.0.1:0", "--duration", "1s", "--quiet"}
		},
			flags: [][]string{{"-o", out("s"), "--cert", "c.pem"}, {"-o", out("s"), "--cafile", "ca.pem"}, {"-o", out("s"), "--duration", "-1s"},
				{"-o", out("s"), "--passwd", filepath.Join(dir, "no-such-passwd")}, {"-o", out("s"), "extra"},
				{"-o", out("s"), "--listen", "127.0.0.1:99999"}, {"-o", out("s"), "--listen", "nonsense"},
				{"-o", out("s"), "--connect-timeout", "0s"}, {"-o", out("s"), "--max-packet-size", "12 parsecs"},
				{"-o", out("s"), "--max-packet-size", "1GiB"}, {"-o", out("s"), "--max-packet-size", "99999999999999999999"}},
			noArgs: true},
		"decoders": {read: func(p string) []string { return []string{p} },
			write: func(p string) []string { return []string{"set", p, "--decode", "a/#=cbor"} },
			flags: [][]string{{"a.db", "b.db"}, {"set", "x.db"}, {"--decode", "a=json", "x.db"}, {"set", "x.db", "--decode", "a/#=xml"},
				{"set", "x.db", "--decode", "a/#=protobuf:acme.v1.Nope"}, {"set", "x.db", "--proto", filepath.Join(dir, "no-such.proto")}},
			noArgs: true},
		"web": {read: func(p string) []string { return []string{p} },
			flags: [][]string{{"--listen", "nonsense", "x.db"}, {"--listen", "127.0.0.1:99999", "x.db"},
				{"--decode", "a/#=xml", "x.db"}, {"--token"}},
			noArgs: true, sets: true},
		"check": {read: func(p string) []string { return []string{p} }, flags: [][]string{{"a.db", "b.db"}, {"--full=often", "a.db"}}, noArgs: true, verdict: true},
		"recover": {read: func(p string) []string { return []string{p, "-o", out("recover-" + filepath.Base(p))} },
			flags:  [][]string{{"x.db"}, {"x.db", "-o", filepath.Join(dir, "good.db")}, {"x.db", "y.db", "-o", out("rr")}},
			noArgs: true, verdict: true},
	}
}

type badCase struct {
	verb, name string
	args       []string
	codes      []int    // accepted exit codes
	want       string   // in the first stderr line
	keep       []string // files that must not change
}

// TestBadInputEveryVerb runs every verb `mqtape --help` lists against
// every kind of bad input: missing, empty, random, non-capture SQLite,
// truncated and newer-format files, a directory, bad broker URLs and ports,
// an unreachable broker, refused credentials, a denied subscription,
// invalid topic filters, invalid flag values, unknown flags and missing
// arguments. Each must exit with a documented non-zero code within
// seconds, print one clear line on stderr (plus at most a usage hint) and
// no stack trace, and leave every file it was pointed at byte for byte as
// it was.
func TestBadInputEveryVerb(t *testing.T) {
	env := startBadInputEnv(t)
	shapeOf := shapes(env.files.dir)
	var cases []badCase
	for _, v := range verbs(t) {
		sh, known := shapeOf[v]
		if !known {
			t.Logf("verb %q has no entry in shapes(): it gets the generic cases only; add one to cover its files, broker and flags", v)
		}
		cases = append(cases, env.verbCases(v, sh, known)...)
	}
	// A capture file must stay untouched when recording into it fails.
	cases = append(cases,
		badCase{"record", "empty output, unreachable broker", []string{"-o", env.files.empty, "-b", env.closedURL, "--quiet"}, []int{exitConnection}, "unreachable", []string{env.files.empty}},
		badCase{"record", "capture output, unreachable broker", []string{"-o", env.files.good, "-b", env.closedURL, "--quiet"}, []int{exitConnection}, "unreachable", []string{env.files.good}},
		badCase{"record", "snapshots, bad trigger query", []string{"-o", env.files.good, "-b", env.closedURL, "--ring", "1m", "--trigger", "payload~(", "--quiet"}, []int{exitUsage}, "--trigger", []string{env.files.good}},
		badCase{"record", "snapshots, trigger for a capture", []string{"-o", env.files.good, "-b", env.closedURL, "--ring", "1m", "--trigger", "session:2", "--quiet"}, []int{exitUsage}, "not from live traffic", []string{env.files.good}},
		badCase{"record", "snapshots, bad ring size", []string{"-o", env.files.good, "-b", env.closedURL, "--ring", "1m", "--trigger", "a/#", "--ring-size", "lots", "--quiet"}, []int{exitUsage}, "--ring-size", []string{env.files.good}},
		badCase{"record", "snapshots, unreachable broker", []string{"-o", env.files.good, "-b", env.closedURL, "--ring", "1m", "--trigger", "a/#", "--quiet"}, []int{exitConnection}, "unreachable", []string{env.files.good}})
	// A whole-file export never replaces a file, and a capture it cannot read leaves no output.
	pqOut := filepath.Join(env.files.dir, "out-export.parquet")
	cases = append(cases,
		badCase{"export", "parquet over an existing file", []string{"--format", "parquet", "-o", env.files.empty, env.files.good}, []int{exitCapture}, "would overwrite an existing file", []string{env.files.empty, env.files.good}},
		badCase{"export", "mcap over an existing file", []string{"--format", "mcap", "-o", env.files.random, env.files.good}, []int{exitCapture}, "would overwrite an existing file", []string{env.files.random, env.files.good}},
		badCase{"export", "parquet of a random file", []string{"--format", "parquet", "-o", pqOut, env.files.random}, []int{exitCapture}, "", []string{env.files.random}},
		badCase{"export", "parquet of a good and a truncated part", []string{"--format", "parquet", "-o", pqOut, env.files.good, env.files.truncated}, []int{exitCapture}, "", []string{env.files.good, env.files.truncated}})
	// A selection that contains nothing is an error before anything is sent or written.
	cutOut := filepath.Join(env.files.dir, "out-cut-empty.db")
	for _, c := range []struct {
		verb, name string
		args       []string
		code       int
		want       string
	}{
		{"play", "from past the end", []string{env.files.good, "-b", env.closedURL, "--from", "1000h"}, exitError, "nothing selected"},
		{"play", "reversed range", []string{env.files.good, "-b", env.closedURL, "--from", "5s", "--to", "1s"}, exitUsage, "is not before --to"},
		{"export", "no topic matches", []string{env.files.good, "-t", "no/such/topic"}, exitError, "nothing selected: -t/-x match none of the"},
		{"cut", "from past the end", []string{env.files.good, "-o", cutOut, "--from", "1000h"}, exitError, "nothing selected"},
	} {
		cases = append(cases, badCase{c.verb, "empty selection, " + c.name, c.args, []int{c.code}, c.want, []string{env.files.good}})
	}

	covered := map[string]int{}
	for _, c := range cases {
		covered[c.verb]++
		t.Run(c.verb+"/"+c.name, func(t *testing.T) { runBadCase(t, c, shapeOf[c.verb].verdict) })
	}
	for _, v := range verbs(t) {
		if covered[v] < 2 {
			t.Errorf("verb %q has only %d bad-input cases", v, covered[v])
		}
	}
	if _, err := os.Stat(filepath.Join(env.files.dir, "out-record.db")); err == nil {
		// Written by the denied-subscription case: the session records the denial.
		t.Log("record with every subscription denied leaves a capture holding the denial event")
	}
}

// badInputEnv is what the bad-input cases point the verbs at: the bad
// files, the URL of a broker that is gone, a broker that refuses wrong
// passwords and denies every subscription, and a wrong and a right
// password file for it.
type badInputEnv struct {
	files            badFiles
	closedURL        string
	gateURL          string
	wrongPW, rightPW string
}

func startBadInputEnv(t *testing.T) badInputEnv {
	t.Helper()
	env := badInputEnv{files: makeBadFiles(t)}
	closed := startBroker(t)
	env.closedURL = closed.URL()
	closed.Close()
	gate, err := broker.Start(broker.Options{Authenticate: gateAuthenticate, Allow: gateAllow})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gate.Close() })
	env.gateURL = gate.URL()
	env.wrongPW = filepath.Join(env.files.dir, "wrong.pw")
	env.rightPW = filepath.Join(env.files.dir, "right.pw")
	os.WriteFile(env.wrongPW, []byte("wrong\n"), 0o600)
	os.WriteFile(env.rightPW, []byte("right\n"), 0o600)
	return env
}

// verbCases are the bad-input cases of verb v: the generic ones, and with
// its shape (known) its arguments, flags, capture files and brokers.
func (env badInputEnv) verbCases(v string, sh verbShape, known bool) []badCase {
	files := env.files
	cases := []badCase{{v, "unknown flag", []string{"--no-such-flag"}, []int{exitUsage}, "unknown flag", nil}}
	if !known {
		for name, p := range map[string]string{"missing file": files.missing, "directory": files.dir, "random bytes": files.random} {
			cases = append(cases, badCase{v, name, []string{p}, []int{exitError, exitUsage, exitConnection, exitCapture}, "", []string{files.random}})
		}
		return cases
	}
	if sh.noArgs {
		cases = append(cases, badCase{v, "no arguments", nil, []int{exitUsage}, "missing", nil})
	}
	for i, f := range sh.flags {
		cases = append(cases, badCase{v, fmt.Sprintf("flag %d %s", i, strings.Join(f, " ")), f, []int{exitUsage}, "", nil})
	}
	if sh.read != nil {
		for _, b := range []struct{ name, path, msg string }{
			{"missing file", files.missing, "no such file"},
			{"empty file", files.empty, "empty file"},
			{"random bytes", files.random, "not an SQLite file"},
			{"other SQLite", files.sqlite, "not an mqtape capture"},
			{"truncated", files.truncated, "damaged"},
			{"newer format", files.newer, "newer"},
			{"directory", files.dir, "is a directory"},
		} {
			codes := []int{exitCapture}
			if v == "recover" && b.name == "truncated" {
				codes = []int{exitOK} // it salvages what is left: a sound capture (and says it was damaged)
			}
			if sh.sets && b.name == "directory" {
				b.msg = "open capture" // the first damaged capture in it, by name
			}
			cases = append(cases, badCase{v, "read " + b.name, sh.read(b.path), codes, b.msg, []string{b.path}})
		}
	}
	if sh.write != nil {
		for _, b := range []struct{ name, path, msg string }{
			{"random bytes", files.random, "not an SQLite file"},
			{"other SQLite", files.sqlite, "not an mqtape capture"},
			{"truncated", files.truncated, "damaged"},
			{"newer format", files.newer, "newer"},
			{"directory", files.dir, "is a directory"},
		} {
			cases = append(cases, badCase{v, "write " + b.name, sh.write(b.path), []int{exitCapture}, b.msg, []string{b.path}})
		}
	}
	if sh.broker != nil {
		for _, b := range env.brokerCases(v, sh.validatesOnly) {
			cases = append(cases, badCase{v, "broker " + b.name, append(sh.broker(b.url, files.good), b.more...), []int{b.code}, b.msg, []string{files.good}})
		}
	}
	return cases
}

// brokerCase is a bad broker to point a verb at, and the exit code and
// message it must give.
type brokerCase struct {
	name string
	url  string
	more []string
	code int
	msg  string
}

// brokerCases are the bad brokers for verb v; validatesOnly: v checks its
// broker flags but does not connect.
func (env badInputEnv) brokerCases(v string, validatesOnly bool) []brokerCase {
	bc := []brokerCase{
		{"bad URL", "gopher://127.0.0.1:1883", nil, exitUsage, "unknown scheme"},
		{"bad port", "mqtt://127.0.0.1:99999", nil, exitUsage, "bad port"},
		{"port zero", "mqtt://127.0.0.1:0", nil, exitUsage, "bad port"},
		{"password in URL", "mqtt://bob:secret@127.0.0.1:1883", nil, exitUsage, "password in the URL"},
		{"no host", "mqtt://:1883", nil, exitUsage, "no host"},
		{"missing password file", env.gateURL, []string{"-u", "alice", "--password-file", filepath.Join(env.files.dir, "nope")}, exitUsage, "--password-file"},
	}
	if validatesOnly {
		return bc
	}
	bc = append(bc,
		brokerCase{"unreachable", env.closedURL, nil, exitConnection, "unreachable"},
		brokerCase{"refused credentials", env.gateURL, []string{"-u", "alice", "--password-file", env.wrongPW}, exitConnection, "refused"})
	if v == "record" {
		bc = append(bc, brokerCase{"denied subscription", env.gateURL, []string{"-u", "alice", "--password-file", env.rightPW}, exitConnection, "denied"})
	}
	return bc
}

// runBadCase runs one bad-input case and checks its exit code, its one
// clear stderr line, its silence on stdout (unless the verb prints a
// verdict), its speed and that the files it was pointed at are unchanged.
func runBadCase(t *testing.T, c badCase, verdict bool) {
	t.Helper()
	before := make([][]byte, len(c.keep))
	for i, p := range c.keep {
		before[i], _ = readIfFile(p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	code, stdout, stderr := runCLI(t, ctx, append([]string{c.verb}, c.args...)...)
	took := time.Since(start)
	if !slices.Contains(c.codes, code) {
		t.Errorf("exit %d, want %v; stderr:\n%s", code, c.codes, stderr)
	}
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	switch {
	case stderr == "":
		t.Errorf("nothing on stderr")
	case len(lines) > 2 || len(lines) == 2 && !strings.HasPrefix(lines[1], "Run 'mqtape "):
		t.Errorf("want one line (plus a usage hint), got:\n%s", stderr)
	case !strings.Contains(lines[0], c.want):
		t.Errorf("first line %q lacks %q", lines[0], c.want)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Errorf("stack trace:\n%s", stderr)
	}
	if stdout != "" && !verdict {
		t.Errorf("stdout not empty: %q", stdout)
	}
	if took > 5*time.Second {
		t.Errorf("took %s", took.Round(time.Millisecond))
	}
	for i, p := range c.keep {
		after, _ := readIfFile(p)
		if !bytes.Equal(before[i], after) {
			t.Errorf("%s was modified", p)
		}
	}
}

// readIfFile reads path, or returns nil for a directory or a missing file.
func readIfFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() {
		return nil, err
	}
	return os.ReadFile(path)
}
