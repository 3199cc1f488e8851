package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/cli"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// waitFor waits until cond holds, or fails the test after timeout saying
// what it waited for.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	if !testbroker.Eventually(timeout, cond) {
		t.Fatalf("waited %s for %s", timeout, what)
	}
}

// recordCLI runs `mqtape record` in the background until it has subscribed
// (seen through the capture's subscribed event), then returns a wait func.
func recordCLI(t *testing.T, ctx context.Context, path string, args ...string) func() (int, string, string) {
	t.Helper()
	type result struct {
		code     int
		out, err string
	}
	before := 0
	if c, err := storage.Open(path); err == nil {
		s, _ := c.Sessions(context.Background())
		before = len(s)
		c.Close()
	}
	done := make(chan result, 1)
	go func() {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"record", "-o", path}, args...), &out, &errb)
		done <- result{code, out.String(), errb.String()}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := storage.Open(path); err == nil {
			ev, _ := c.Events(context.Background(), 0)
			sessions, _ := c.Sessions(context.Background())
			c.Close()
			n := 0
			for _, e := range ev {
				if e.Kind == storage.EventSubscribed && e.Session == int64(before+1) && len(sessions) > before {
					n++
				}
			}
			if n > 0 {
				break
			}
		}
		select {
		case r := <-done:
			done <- r
			return func() (int, string, string) { return r.code, r.out, r.err }
		case <-time.After(20 * time.Millisecond):
		}
	}
	return func() (int, string, string) {
		select {
		case r := <-done:
			return r.code, r.out, r.err
		case <-time.After(15 * time.Second):
			t.Fatal("record did not finish")
			return 0, "", ""
		}
	}
}

func TestRecordInfoExportEndToEnd(t *testing.T) {
	b := startBroker(t)
	pub := testbroker.Connect(t, b.URL())
	testbroker.Publish(t, pub, "home/hall/status", 1, true, []byte("on"))
	path := filepath.Join(t.TempDir(), "cap.db")
	wait := recordCLI(t, context.Background(), path, "--broker", b.URL(), "--count", "6", "--quiet")
	testbroker.Publish(t, pub, "home/kitchen/temp", 0, false, []byte(`{"t":21.5}`))
	testbroker.Publish(t, pub, "home/kitchen/temp", 1, false, []byte(`{"t":21.7}`))
	testbroker.Publish(t, pub, "bin/blob", 2, false, []byte{0, 0xff, 0xfe})
	testbroker.Publish(t, pub, "empty", 1, false, nil)
	testbroker.Publish(t, pub, "unicode/ü ber", 0, false, []byte("größe"))
	code, stdout, stderr := wait()
	if code != 0 {
		t.Fatalf("record exit %d: %s", code, stderr)
	}
	if stdout != "" {
		t.Errorf("record wrote to stdout: %q", stdout)
	}

	code, out, stderr := runCLI(t, context.Background(), "info", "--json", path)
	if code != 0 {
		t.Fatalf("info exit %d: %s", code, stderr)
	}
	var info cli.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Totals.Messages != 6 || info.Totals.Topics != 5 || info.Totals.Retained != 1 || len(info.Sessions) != 1 ||
		info.Sessions[0].StopReason != "count" || info.FormatVersion != storage.FormatVersion {
		t.Fatalf("info = %+v", info)
	}
	for _, tp := range info.Topics {
		if tp.Topic == "home/kitchen/temp" && (tp.Count != 2 || tp.QoS != [3]int64{1, 1, 0} || tp.Bytes != 20) {
			t.Errorf("kitchen stats = %+v", tp)
		}
	}
	code, human, _ := runCLI(t, context.Background(), "info", path)
	if code != 0 || !strings.Contains(human, "home/kitchen/temp") || !strings.Contains(human, "stop: count") {
		t.Errorf("human info:\n%s", human)
	}

	code, out, stderr = runCLI(t, context.Background(), "export", path)
	if code != 0 {
		t.Fatalf("export exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("export lines = %d:\n%s", len(lines), out)
	}
	var recs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"seq", "session", "time", "ts_ns", "offset_ns", "topic", "qos", "retain", "dup", "payload_b64"} {
			if _, ok := m[k]; !ok {
				t.Errorf("field %q missing in %s", k, l)
			}
		}
		recs = append(recs, m)
	}
	if recs[0]["retain"] != true || recs[0]["payload"] != "on" {
		t.Errorf("retained first: %v", recs[0])
	}
	if _, has := recs[3]["payload"]; has || recs[3]["payload_b64"] != base64.StdEncoding.EncodeToString([]byte{0, 0xff, 0xfe}) {
		t.Errorf("binary: %v", recs[3])
	}
	if recs[4]["payload"] != "" || recs[5]["topic"] != "unicode/ü ber" || recs[5]["payload"] != "größe" {
		t.Errorf("empty/unicode: %v %v", recs[4], recs[5])
	}
	if ts, err := time.Parse(time.RFC3339Nano, recs[1]["time"].(string)); err != nil || ts.UnixNano() != int64(recs[1]["ts_ns"].(float64)) && ts.IsZero() {
		t.Errorf("time %v: %v", recs[1]["time"], err)
	}

	code, out, _ = runCLI(t, context.Background(), "export", "--format", "csv", "-t", "home/+/temp", path)
	r, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(r) != 3 || r[0][0] != "seq" || r[1][5] != "home/kitchen/temp" || r[2][13] != `{"t":21.7}` {
		t.Fatalf("csv (%d, %v): %q", code, err, out)
	}
	code, out, _ = runCLI(t, context.Background(), "export", "-t", "#", "-x", "home/#", "--from", "0s", path)
	if code != 0 || strings.Count(out, "\n") != 3 || strings.Contains(out, "home/") {
		t.Errorf("exclude: %q", out)
	}
	code, out, errOut := runCLI(t, context.Background(), "export", "--to", "0s", path)
	if code != exitError || out != "" || !strings.Contains(errOut, "nothing selected") {
		t.Errorf("--to 0s: exit %d, selected %q\n%s", code, out, errOut)
	}
}

func TestRecordAppendsAndRefusesOtherFiles(t *testing.T) {
	b := startBroker(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "cap.db")
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		wait := recordCLI(t, ctx, path, "--broker", b.URL(), "--quiet")
		testbroker.Publish(t, testbroker.Connect(t, b.URL()), "x", 1, false, []byte(fmt.Sprint(i)))
		waitFor(t, 5*time.Second, func() bool { return countMessages(path) >= int64(i+1) }, fmt.Sprintf("message %d in the capture", i+1))
		cancel() // Ctrl-C is a normal stop
		if code, _, stderr := wait(); code != 0 {
			t.Fatalf("record %d exit %d: %s", i, code, stderr)
		}
	}
	_, out, _ := runCLI(t, context.Background(), "info", "--json", path)
	var info cli.Info
	json.Unmarshal([]byte(out), &info)
	if len(info.Sessions) != 2 || info.Totals.Messages != 2 || info.Sessions[1].StopReason != "interrupted" {
		t.Fatalf("info = %+v", info)
	}

	other := filepath.Join(dir, "notes.txt")
	os.WriteFile(other, []byte("my precious notes, not a capture, do not touch\n"), 0o644)
	code, _, stderr := runCLI(t, context.Background(), "record", "--broker", b.URL(), "-o", other, "--quiet")
	data, _ := os.ReadFile(other)
	if code != exitCapture || !strings.Contains(stderr, "not an mqtape capture") || string(data) != "my precious notes, not a capture, do not touch\n" {
		t.Fatalf("exit %d, stderr %q, file %q", code, stderr, data)
	}
}

func TestErrorsAndExitCodes(t *testing.T) {
	b := startBroker(t)
	dir := t.TempDir()
	notCapture := filepath.Join(dir, "x.txt")
	os.WriteFile(notCapture, []byte("hello"), 0o644)
	closed := startBroker(t)
	closedURL := closed.URL()
	closed.Close()
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no args", nil, exitUsage, ""},
		{"unknown verb", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"info missing file", []string{"info", filepath.Join(dir, "nope.db")}, exitCapture, "no such file"},
		{"info not capture", []string{"info", notCapture}, exitCapture, "not an mqtape capture"},
		{"info directory without captures", []string{"info", dir}, exitCapture, "no *.db files in the directory"},
		{"info no arg", []string{"info"}, exitUsage, "missing capture file"},
		{"export bad format", []string{"export", "--format", "xml", notCapture}, exitUsage, "--format"},
		{"export bad filter", []string{"export", "-t", "a/#/b", notCapture}, exitUsage, "invalid topic filter"},
		{"export bad time", []string{"export", "--from", "yesterday", notCapture}, exitUsage, "--from"},
		{"record bad url", []string{"record", "-b", "gopher://x", "-o", filepath.Join(dir, "a.db")}, exitUsage, "unknown scheme"},
		{"record unreachable", []string{"record", "-b", closedURL, "--connect-timeout", "2s", "-o", filepath.Join(dir, "b.db"), "--quiet"}, exitConnection, "unreachable"},
		{"record bad flag", []string{"record", "--bogus"}, exitUsage, "unknown flag"},
		{"record password flag", []string{"record", "--password", "x", "-o", "y"}, exitUsage, "unknown flag"},
		{"record bad cafile", []string{"record", "-b", "mqtts://127.0.0.1:1", "--cafile", filepath.Join(dir, "none.pem"), "-o", filepath.Join(dir, "c.db")}, exitConnection, "CA file"},
		{"help", []string{"record", "--help"}, exitOK, ""},
	}
	_ = b
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			code, _, stderr := runCLI(t, context.Background(), tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, tt.code, stderr, tt.msg)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Fatalf("stack trace: %s", stderr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
				t.Errorf("want one clear line (plus a hint), got:\n%s", stderr)
			}
			if time.Since(start) > 5*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
	for _, f := range []string{"a.db", "b.db", "c.db"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("a failed record left %s behind", f)
		}
	}
}
