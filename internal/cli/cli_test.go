package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runCLI runs mqtape with args and returns exit code, stdout and stderr.
func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

func testIO() *cliIO {
	return newCLIIO(IO{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Getenv: func(string) string { return "" }})
}

func TestParseRecord(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
		chk  func(recordOptions) bool
	}{
		{[]string{"-o", "x.db"}, true, func(o recordOptions) bool { return o.qos == 2 && o.clean && len(o.topics) == 0 && !o.compress }},
		{[]string{"-o", "x.db", "--compress"}, true, func(o recordOptions) bool { return o.compress }},
		{[]string{"-o", "x.db", "-t", "a/#", "--topic", "b/+", "-q", "1"}, true, func(o recordOptions) bool {
			return len(o.topics) == 2 && o.topics[1] == "b/+" && o.qos == 1
		}},
		{[]string{"-o", "x.db", "--duration", "10m", "--count", "5", "--sys", "--quiet"}, true, func(o recordOptions) bool {
			return o.duration == 10*time.Minute && o.count == 5 && o.sys && o.quiet
		}},
		{[]string{"-o", "x.db", "--clean=false", "--client-id", "r1"}, true, func(o recordOptions) bool { return !o.clean && o.conn.clientID == "r1" }},
		{[]string{"-o", "x.db", "-u", "alice", "--password-file", "p", "--cafile", "ca.pem", "--insecure", "--keepalive", "30s"}, true,
			func(o recordOptions) bool {
				return o.conn.username == "alice" && o.conn.insecure && o.conn.keepalive == 30*time.Second
			}},
		{[]string{"-o", "run.db", "--split-size", "512MiB", "--keep", "48"}, true, func(o recordOptions) bool {
			return o.split.sizeB == 512<<20 && o.split.keep == 48 && o.split.on()
		}},
		{[]string{"-o", "p-%Y%m%d-{n}.db", "--split-every", "1h", "--max-total", "1GB"}, true, func(o recordOptions) bool {
			return o.split.every == time.Hour && o.split.totalB == 1<<30
		}},
		{[]string{"-o", "snap-{n}.db", "--ring", "5m", "--trigger", "alarms/# payload~FAULT", "--post", "30s", "--ring-size", "64MiB"}, true,
			func(o recordOptions) bool {
				return o.ring.ring == 5*time.Minute && o.ring.post == 30*time.Second && o.ring.sizeB == 64<<20 && o.ring.predicate != nil
			}},
		{[]string{"-o", "x.db", "--ring", "1m", "--trigger", "a/#"}, true, func(o recordOptions) bool { return o.ring.sizeB == 256<<20 }},
		{[]string{"-o", "x.db", "--ring", "1m"}, false, nil},                           // no --trigger
		{[]string{"-o", "x.db", "--ring", "1m", "--trigger", "payload~("}, false, nil}, // bad regexp
		{[]string{"-o", "x.db", "--ring", "1m", "--trigger", "session:2"}, false, nil}, // not for live traffic
		{[]string{"-o", "x.db", "--ring", "1m", "--trigger", "a/#", "--ring-size", "1KiB"}, false, nil},
		{[]string{"-o", "x.db", "--ring", "1m", "--trigger", "a/#", "--post", "-1s"}, false, nil},
		{[]string{"-o", "x.db", "--ring", "1m", "--trigger", "a/#", "--split-size", "1GB"}, false, nil},
		{[]string{"-o", "x.db", "--ring", "1m", "--trigger", "a/#", "--count", "5"}, false, nil},
		{[]string{"-o", "x.db", "--trigger", "a/#"}, false, nil}, // needs --ring
		{[]string{"-o", "x.db", "--post", "5s"}, false, nil},
		{[]string{"-o", "x.db", "--split-size", "lots"}, false, nil},
		{[]string{"-o", "x.db", "--split-size", "10KiB"}, false, nil},
		{[]string{"-o", "x.db", "--split-size", "512KiB"}, false, nil}, // below what an empty capture takes
		{[]string{"-o", "x.db", "--split-every", "10ms"}, false, nil},
		{[]string{"-o", "x.db", "--split-every", "1h", "--keep", "-1"}, false, nil},
		{[]string{"-o", "x.db", "--keep", "3"}, false, nil},
		{[]string{"-o", "x.db", "--max-total", "1GB"}, false, nil},
		{[]string{"-o", "x-{n}.db"}, false, nil},
		{[]string{}, false, nil},
		{[]string{"-o", "x.db", "-q", "3"}, false, nil},
		{[]string{"-o", "x.db", "-t", "a/#/b"}, false, nil},
		{[]string{"-o", "x.db", "--count", "-1"}, false, nil},
		{[]string{"-o", "x.db", "--clean=false"}, false, nil},
		{[]string{"-o", "x.db", "--password", "secret"}, false, nil},
		{[]string{"-o", "x.db", "extra"}, false, nil},
		{[]string{"-o", "x.db", "--duration", "soon"}, false, nil},
		{[]string{"-o", "x.db", "--compress=maybe"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parseRecord(tt.args, testIO())
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				if code := exitCode(err); code != exitUsage {
					t.Errorf("exit code %d, want %d", code, exitUsage)
				}
				return
			}
			if !tt.chk(o) {
				t.Errorf("options = %+v", o)
			}
		})
	}
}

func TestConnOptions(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("s3cret\nignored\n"), 0o600)
	env := map[string]string{"MQTAPE_BROKER": "mqtts://env-broker", "MQTAPE_PASSWORD": "fromenv"}
	cio := testIO()
	cio.getenv = func(k string) string { return env[k] }

	c := connFlags{connectTimeout: time.Second}
	o, err := c.options(cio, "x")
	if err != nil || o.Broker.Host != "env-broker:8883" || o.Password != "fromenv" || o.ClientID == "" {
		t.Fatalf("env: %+v %v", o, err)
	}
	c = connFlags{broker: "ws://h:9001", passwordFile: pw, connectTimeout: time.Second}
	o, err = c.options(cio, "x")
	if err != nil || o.Broker.DialURL() != "ws://h:9001/mqtt" || o.Password != "s3cret" {
		t.Fatalf("file: %+v %v", o, err)
	}
	for _, bad := range []string{"http://h", "mqtt://user:pw@h", "mqtt://h:99999", "mqtt://", "mqtt://h/path"} {
		c = connFlags{broker: bad, connectTimeout: time.Second}
		if _, err := c.options(cio, "x"); exitCode(err) != exitUsage {
			t.Errorf("%s: err %v, exit %d", bad, err, exitCode(err))
		}
	}
}

func TestHelpOnEveryVerb(t *testing.T) {
	for _, c := range commands() {
		code, out, _ := runCLI(t, context.Background(), c.name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: mqtape "+c.name) || !strings.Contains(out, "Examples:") {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, out)
		}
	}
}

// TestParseCompress: --compress of the verbs that write captures.
func TestParseCompress(t *testing.T) {
	cio := testIO()
	for _, tc := range []struct {
		name string
		on   func([]string) (bool, error)
	}{
		{"cut", func(a []string) (bool, error) {
			o, err := parseCut(append([]string{"in.db", "-o", "out.db"}, a...), cio)
			return o.compress, err
		}},
		{"merge", func(a []string) (bool, error) {
			o, err := parseMerge(append([]string{"a.db", "b.db", "-o", "out.db"}, a...), cio)
			return o.compress, err
		}},
		{"serve", func(a []string) (bool, error) {
			o, err := parseServe(append([]string{"-o", "out.db"}, a...), cio)
			return o.compress, err
		}},
	} {
		off, err1 := tc.on(nil)
		on, err2 := tc.on([]string{"--compress"})
		if err1 != nil || err2 != nil || off || !on {
			t.Errorf("%s: without --compress %v (%v), with it %v (%v)", tc.name, off, err1, on, err2)
		}
	}
}
