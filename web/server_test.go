package web_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/web"
)

// page is /api/messages' answer.
type page struct {
	Messages []export.Record `json:"messages"`
	Next     *int64          `json:"next"`
	Error    string          `json:"error"`
}

// serve serves the capture at path over real TCP, decoding with rules.
func serve(t *testing.T, path string, opts web.Options, rules ...string) *httptest.Server {
	t.Helper()
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r, err := decode.ParseRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := decode.NewRegistry(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.Source, opts.Decode = c, export.NewResolver(c, reg).Decode
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	ts := httptest.NewServer(web.New(opts))
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, u string, v any) (int, http.Header) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v in %s", u, err, body)
		}
	}
	return resp.StatusCode, resp.Header
}

func TestMessagesPagesBySeq(t *testing.T) {
	ts := serve(t, writeOffsets(t, 25), web.Options{})
	var seqs []int64
	after := "0"
	for range 10 {
		var p page
		if code, _ := get(t, ts.URL+"/api/messages?limit=10&after="+after, &p); code != 200 {
			t.Fatalf("status %d: %s", code, p.Error)
		}
		for _, r := range p.Messages {
			seqs = append(seqs, r.Seq)
		}
		if p.Next == nil {
			break
		}
		after = fmt.Sprint(*p.Next)
	}
	if len(seqs) != 25 || seqs[0] != 1 || seqs[24] != 25 {
		t.Fatalf("paged seqs %v, want 1..25", seqs)
	}
	var back page
	get(t, ts.URL+"/api/messages?limit=3&before=10", &back)
	if len(back.Messages) != 3 || back.Messages[0].Seq != 9 || back.Messages[2].Seq != 7 {
		t.Fatalf("before=10 gave %+v, want 9, 8, 7", back.Messages)
	}
}

func TestMessagesFilterLanguage(t *testing.T) {
	ts := serve(t, writeOffsets(t, 30), web.Options{})
	for _, tc := range []struct {
		q    string
		want []int64
	}{
		{"dev/1 qos>=1", []int64{2, 5, 8, 11, 14, 17, 20, 23, 26, 29}},
		{"dev/# .n>=27", []int64{28, 29, 30}},
		{"payload:1 !dev/0", []int64{2, 11, 12, 14, 15, 17, 18, 20}},
		{"dev/2 5s..10s", []int64{6, 9}},
	} {
		var p page
		code, _ := get(t, ts.URL+"/api/messages?q="+url.QueryEscape(tc.q), &p)
		var got []int64
		for _, r := range p.Messages {
			got = append(got, r.Seq)
		}
		if code != 200 || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("q=%s: %d %v %s, want %v", tc.q, code, got, p.Error, tc.want)
		}
	}
}

func TestBadParametersAre400(t *testing.T) {
	ts := serve(t, writeOffsets(t, 3), web.Options{})
	for _, tc := range []struct{ query, want string }{
		{"q=" + url.QueryEscape("payload~("), "q: bad filter: payload~(: missing closing )"},
		{"q=" + url.QueryEscape(".celsius"), "needs an operator"},
		{"q=" + url.QueryEscape(`"open`), "unclosed quote"},
		{"limit=0", `limit="0": use 1 to 1000`},
		{"limit=1001", `limit="1001": use 1 to 1000`},
		{"limit=ten", `limit="ten"`},
		{"after=-1", `after="-1": not a seq`},
		{"before=x", `before="x": not a seq`},
	} {
		var e struct{ Error string }
		code, h := get(t, ts.URL+"/api/messages?"+tc.query, &e)
		if code != 400 || !strings.Contains(e.Error, tc.want) || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("%s: %d %q, want 400 with %q", tc.query, code, e.Error, tc.want)
		}
	}
	var p page
	if code, _ := get(t, ts.URL+"/api/messages?limit=1000", &p); code != 200 || len(p.Messages) != 3 || p.Next != nil {
		t.Errorf("limit=1000: %d, %d messages, next %v", code, len(p.Messages), p.Next)
	}
}

// hostile are topics and payloads that must come back as the same text.
var hostile = []struct{ topic, payload string }{
	{"<script>document.title='pwned'</script>", `<img src=x onerror="document.title='pwned'">`},
	{"esc/\x1b[2J\x1b]0;title\x07", "\x1b[31mred\u009b"},
	{"bidi/\u202eevil\u2066", "line\u2028sep\u0000nul"},
	{`quote/"'\`, `{"a":"</script><script>alert(1)</script>"}`},
}

func writeHostile(t *testing.T) string {
	var msgs []storage.Message
	for i, h := range hostile {
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*time.Second, h.topic, 0, h.payload))
	}
	msgs = append(msgs, capturetest.Msg(9*time.Second, "bin", 0, "\xff\xfe\x00"))
	return capturetest.WriteOffsets(t, msgs)
}

func TestHostileDataComesBackEscaped(t *testing.T) {
	ts := serve(t, writeHostile(t), web.Options{})
	resp, err := http.Get(ts.URL + "/api/messages")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("headers %v", resp.Header)
	}
	// What a terminal (curl) or a sniffing browser acts on is escaped.
	for _, raw := range []string{"\x1b", "\x07", "\u202e", "\u2066", "\u2028", "\xc2\x9b"} {
		if bytes.Contains(body, []byte(raw)) {
			t.Errorf("the body holds %q raw: %s", raw, body)
		}
	}
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if len(p.Messages) != len(hostile)+1 {
		t.Fatalf("%d messages", len(p.Messages))
	}
	for i, h := range hostile {
		r := p.Messages[i]
		if r.Topic != h.topic || r.Payload == nil || *r.Payload != h.payload {
			t.Errorf("message %d came back as %q %v, want %q %q", i, r.Topic, r.Payload, h.topic, h.payload)
		}
	}
	if bin := p.Messages[len(hostile)]; bin.Payload != nil || bin.PayloadB64 != "//4A" {
		t.Errorf("binary payload came back as %v %q", bin.Payload, bin.PayloadB64)
	}
	// The topic list too.
	var tp struct{ Topics []struct{ Topic string } }
	get(t, ts.URL+"/api/topics", &tp)
	found := 0
	for _, x := range tp.Topics {
		for _, h := range hostile {
			if x.Topic == h.topic {
				found++
			}
		}
	}
	if found != len(hostile) {
		t.Errorf("topics %+v", tp.Topics)
	}
}

func TestTopicsCount(t *testing.T) {
	ts := serve(t, writeOffsets(t, 10), web.Options{})
	var tp struct {
		Topics []struct {
			Topic string
			Count int64
		}
		Messages int64
		MaxSeq   int64 `json:"max_seq"`
	}
	get(t, ts.URL+"/api/topics", &tp)
	if fmt.Sprint(tp.Topics) != "[{dev/0 4} {dev/1 3} {dev/2 3}]" || tp.MaxSeq != 10 || tp.Messages != 10 {
		t.Errorf("topics %+v", tp)
	}
}

func TestDecodedValues(t *testing.T) {
	msgs := []storage.Message{
		capturetest.Msg(0, "cbor/a", 0, "\xa1\x61x\x02"),           // {"x": 2}
		capturetest.Msg(time.Second, "cbor/a", 0, "\xa1\x61x\x07"), // {"x": 7}
	}
	ts := serve(t, capturetest.WriteOffsets(t, msgs), web.Options{}, "cbor/#=cbor")
	var p page
	get(t, ts.URL+"/api/messages?q="+url.QueryEscape(".x>5"), &p)
	if len(p.Messages) != 1 || p.Messages[0].Seq != 2 || string(p.Messages[0].Decoded) != `{"x":7}` {
		t.Fatalf("q=.x>5 gave %+v", p)
	}
}

func TestReadOnly(t *testing.T) {
	path := writeOffsets(t, 20)
	before := sum(t, path)
	ts := serve(t, path, web.Options{Info: func(context.Context) (any, error) { return map[string]int{"n": 1}, nil }})
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, p := range []string{"/", "/api/messages", "/api/info"} {
			req, _ := http.NewRequest(m, ts.URL+p, strings.NewReader("x"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d (Allow %q), want 405", m, p, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	}
	for _, p := range []string{"/", "/app.js", "/api/info", "/api/topics", "/api/messages?q=dev/1&limit=5"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET %s: %d, CSP %q", p, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	ts.Close()
	if after := sum(t, path); after != before {
		t.Error("serving changed the capture file")
	}
	for _, ext := range []string{"-wal", "-shm", "-journal"} {
		if _, err := os.Stat(path + ext); err == nil {
			t.Errorf("serving left %s beside the capture", ext)
		}
	}
}

func sum(t *testing.T, path string) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestToken(t *testing.T) {
	ts := serve(t, writeOffsets(t, 2), web.Options{Token: "s3cret"})
	do := func(u string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("GET", u, nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, p := range []string{"/", "/app.js", "/api/info", "/api/messages", "/api/events"} {
		if r := do(ts.URL+p, nil); r.StatusCode != 401 {
			t.Errorf("%s without a token: %d, want 401", p, r.StatusCode)
		}
		if r := do(ts.URL+p+"?token=wrong", nil); r.StatusCode != 403 {
			t.Errorf("%s with a wrong token: %d, want 403", p, r.StatusCode)
		}
	}
	r := do(ts.URL+"/?token=s3cret", nil)
	if r.StatusCode != 200 || len(r.Cookies()) != 1 || !r.Cookies()[0].HttpOnly {
		t.Fatalf("?token=: %d, cookies %v", r.StatusCode, r.Cookies())
	}
	cookie := r.Cookies()[0]
	if r := do(ts.URL+"/api/topics", map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}); r.StatusCode != 200 {
		t.Errorf("with the cookie: %d", r.StatusCode)
	}
	if r := do(ts.URL+"/api/topics", map[string]string{"Authorization": "Bearer s3cret"}); r.StatusCode != 200 {
		t.Errorf("with a bearer token: %d", r.StatusCode)
	}
}

func TestNoTokenAnswersLoopbackHostsOnly(t *testing.T) {
	ts := serve(t, writeOffsets(t, 2), web.Options{})
	for host, want := range map[string]int{"evil.example:80": 403, "localhost:1": 200, "[::1]:8": 200, "127.0.0.1": 200} {
		req, _ := http.NewRequest("GET", ts.URL+"/api/topics", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

// TestEventsFollowRecording: messages written to a capture while the
// server reads it (a recorder's WAL) arrive as events within a second.
func TestEventsFollowRecording(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.db")
	w, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	start := time.Now().UnixNano()
	sess, err := w.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "t",
		Protocol: 4, StartedNS: start, Version: "test", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	write := func(i int, topic string) {
		m := storage.Message{TimeNS: start + int64(i), OffsetNS: int64(i), Topic: topic, Payload: []byte(fmt.Sprint(i))}
		if err := sess.Write(ctx, []storage.Message{m}, nil, m.TimeNS); err != nil {
			t.Fatal(err)
		}
	}
	write(1, "old")
	ts := serve(t, path, web.Options{Poll: 50 * time.Millisecond})
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/events?follow=1&q="+url.QueryEscape("new/#"), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	began := time.Now()
	write(2, "other")
	write(3, "new/a") // a topic that did not exist when the stream began
	write(4, "new/b")
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < 2 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("stream ended after %v", got)
			}
			if d, ok := strings.CutPrefix(l, "data: {"); ok {
				var r export.Record
				if err := json.Unmarshal([]byte("{"+d), &r); err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprintf("%d %s", r.Seq, r.Topic))
			}
		case <-timeout:
			t.Fatalf("after 5 s got %v", got)
		}
	}
	if took := time.Since(began); fmt.Sprint(got) != "[3 new/a 4 new/b]" || took > time.Second {
		t.Errorf("got %v after %v, want seqs 3 and 4 within a second", got, took)
	}
}

func writeOffsets(t *testing.T, n int) string {
	var msgs []storage.Message
	for i := range n {
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*time.Second, fmt.Sprintf("dev/%d", i%3), byte(i%3),
			fmt.Sprintf(`{"n":%d}`, i)))
	}
	return capturetest.WriteOffsets(t, msgs)
}

func TestNarrowReplacesTopicTerms(t *testing.T) {
	ts := serve(t, writeOffsets(t, 3), web.Options{})
	for _, tc := range []struct{ q, topic, want string }{
		{"dev/1 qos>=1 .n>2", "dev/#", "dev/# qos>=1 .n>2"},
		{"dev/0 payload:x", "", "payload:x"},
		{"", `odd "name"/#`, `topic:"odd \"name\"/#"`},
	} {
		var r struct{ Q string }
		get(t, ts.URL+"/api/narrow?q="+url.QueryEscape(tc.q)+"&topic="+url.QueryEscape(tc.topic), &r)
		if r.Q != tc.want {
			t.Errorf("narrow(%q, %q) = %q, want %q", tc.q, tc.topic, r.Q, tc.want)
		}
	}
}

func TestUnsafeRangesAreTermsafes(t *testing.T) {
	ts := serve(t, writeOffsets(t, 1), web.Options{})
	var u struct{ Ranges [][2]rune }
	get(t, ts.URL+"/api/unsafe", &u)
	in := func(r rune) bool {
		for _, x := range u.Ranges {
			if r >= x[0] && r <= x[1] {
				return true
			}
		}
		return false
	}
	for _, r := range []rune{0, 0x1b, 0x7f, 0x9b, 0x202e, 0x2066, 0x2028, 0x061c} {
		if !in(r) {
			t.Errorf("U+%04X is not in %v", r, u.Ranges)
		}
	}
	for _, r := range []rune{' ', 'a', 0xe9, 0x4e2d, 0x1f600} {
		if in(r) {
			t.Errorf("U+%04X is in %v", r, u.Ranges)
		}
	}
}

// pages follows /api/messages?q=Q&limit=L from cursor dir= (after or
// before) to the end, returning the seqs found in order, how many requests
// it took and how many answers were partial.
func pages(t *testing.T, base, q string, limit int, dir string) (found []int64, requests, partial int) {
	t.Helper()
	cursor := "0"
	if dir == "before" {
		cursor = "9223372036854775807"
	}
	for requests < 200 {
		var p struct {
			page
			Partial bool
		}
		requests++
		u := fmt.Sprintf("%s/api/messages?q=%s&limit=%d&%s=%s", base, url.QueryEscape(q), limit, dir, cursor)
		if code, _ := get(t, u, &p); code != 200 {
			t.Fatalf("status %d: %s", code, p.Error)
		}
		for _, r := range p.Messages {
			found = append(found, r.Seq)
		}
		if p.Partial {
			partial++
		}
		if p.Next == nil {
			break
		}
		cursor = fmt.Sprint(*p.Next)
	}
	if dir == "before" {
		slices.Reverse(found)
	}
	return found, requests, partial
}

// TestSearchStopsAtItsBudget: a filter checked in Go that matches little
// answers within its budget with a cursor, and following the cursor finds
// every match once.
func TestSearchStopsAtItsBudget(t *testing.T) {
	ts := serve(t, writeOffsets(t, 2000), web.Options{ScanBudget: time.Nanosecond})
	found, requests, partial := pages(t, ts.URL, ".n>1995", 5, "after")
	if fmt.Sprint(found) != "[1997 1998 1999 2000]" || partial == 0 {
		t.Errorf("found %v in %d requests (%d partial), want [1997 1998 1999 2000] and partial answers", found, requests, partial)
	}
}

// TestTextSearchAnswersInWindows: a payload text term (tested inside
// SQLite, reading every payload) is read in windows of seqs with the
// budget checked between them, so a search that matches little answers
// in parts; following the cursor, after= and before= alike, finds every
// match once, in order.
func TestTextSearchAnswersInWindows(t *testing.T) {
	defer web.SetScanWindow(64)()
	ts := serve(t, writeOffsets(t, 2000), web.Options{ScanBudget: time.Nanosecond})
	var want []int64
	for i := int64(99); i < 2000; i += 100 {
		want = append(want, i+1) // payload {"n":i} is seq i+1
	}
	for _, dir := range []string{"after", "before"} {
		found, requests, partial := pages(t, ts.URL, "payload:99}", 3, dir)
		if fmt.Sprint(found) != fmt.Sprint(want) || partial < 10 {
			t.Errorf("%s: found %v in %d requests (%d partial), want %v in answers of which most are partial", dir, found, requests, partial, want)
		}
	}
}
