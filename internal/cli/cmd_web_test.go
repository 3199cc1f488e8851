package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

func TestParseWeb(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
		chk  func(webOptions) bool
	}{
		{[]string{"c.db"}, true, func(o webOptions) bool { return o.file == "c.db" && o.listen == "127.0.0.1:0" && o.token == "" }},
		{[]string{"--listen", "127.0.0.1:8080", "--token", "t", "c.db"}, true, func(o webOptions) bool {
			return o.listen == "127.0.0.1:8080" && o.token == "t"
		}},
		{[]string{"--listen", "localhost:0", "c.db"}, true, func(o webOptions) bool { return o.token == "" }},
		{[]string{"--listen", "[::1]:0", "c.db"}, true, func(o webOptions) bool { return o.token == "" }},
		// Not loopback: a token is generated.
		{[]string{"--listen", "0.0.0.0:8080", "c.db"}, true, func(o webOptions) bool { return len(o.token) == 32 }},
		{[]string{"--listen", ":8080", "c.db"}, true, func(o webOptions) bool { return len(o.token) == 32 }},
		{[]string{"--listen", "192.0.2.1:80", "--token", "mine", "c.db"}, true, func(o webOptions) bool { return o.token == "mine" }},
		{[]string{"--listen", "8080", "c.db"}, false, nil},
		{[]string{"--listen", "127.0.0.1:70000", "c.db"}, false, nil},
		{[]string{}, false, nil},
		{[]string{"a.db", "b.db"}, true, func(o webOptions) bool { return len(o.inputs) == 2 }}, // read as one
	}
	for _, tt := range tests {
		o, err := parseWeb(tt.args, testIO())
		if (err == nil) != tt.ok || (tt.ok && !tt.chk(o)) || (err != nil && exitCode(err) != exitUsage) {
			t.Errorf("parseWeb(%q) = %+v, %v", tt.args, o, err)
		}
	}
}

// TestWebInfoIsInfoJSON: /api/info is what info --json prints.
func TestWebInfoIsInfoJSON(t *testing.T) {
	path := capturetest.WriteBig(t, 300)
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"info", "--json", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("info: %d %s", code, stderr.String())
	}
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg, _ := decode.NewRegistry(nil, nil)
	srv, err := webServer(context.Background(), c, reg, webOptions{}, testIO())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/api/info")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var a, b any
	if err := json.Unmarshal(stdout.Bytes(), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("/api/info\n%s\ninfo --json\n%s", jb, ja)
	}
}

// TestWebServesUntilCancelled: mqtape web prints the URL on stdout, serves
// it, and stops with exit 0 when interrupted; a port in use is an error.
func TestWebServesUntilCancelled(t *testing.T) {
	path := capturetest.WriteBig(t, 30)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"web", path}, pw, &stderr); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	u := strings.TrimSpace(line)
	if !strings.HasPrefix(u, "http://127.0.0.1:") || !strings.HasSuffix(u, "/") {
		t.Fatalf("printed %q", u)
	}
	resp, err := http.Get(u + "api/messages?limit=5")
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Messages []struct{ Seq int64 } }
	json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if len(p.Messages) != 5 {
		t.Errorf("got %+v", p)
	}
	// The port is taken now: a second server on it fails, exit 1.
	host := strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/")
	var out2, err2 bytes.Buffer
	if code := run(ctx, []string{"web", "--listen", host, path}, &out2, &err2); code != exitError ||
		!strings.Contains(err2.String(), "listen on "+host) {
		t.Errorf("second server: exit %d, %q", code, err2.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after Ctrl-C: %s", code, stderr.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("mqtape web did not stop")
	}
	if _, err := net.Dial("tcp", host); err == nil {
		t.Error("still listening after it stopped")
	}
}

// TestWebReadsPartsAsOne: web given the parts of a split recording (a
// glob) serves them as one capture, every message once, like every
// reading verb.
func TestWebReadsPartsAsOne(t *testing.T) {
	_, parts, _ := splitFixture(t)
	glob := filepath.Join(filepath.Dir(parts[0]), "run-*.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"web", glob}, pw, &stderr); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	resp, err := http.Get(strings.TrimSpace(line) + "api/messages?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	var p struct{ Messages []struct{ Seq int64 } }
	json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if len(p.Messages) != 30 {
		t.Errorf("%d messages from the 3 parts, want the recording's 30 (carried retained rows once)", len(p.Messages))
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}
