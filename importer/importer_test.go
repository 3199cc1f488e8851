package importer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
)

// importString imports input into a new capture and returns its messages,
// sessions and events.
func importString(t *testing.T, input []byte, opts Options) (Result, []storage.Message, []storage.SessionInfo, []storage.Event, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "out.db")
	c, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	res, runErr := New(c, opts).Run(context.Background(), bytes.NewReader(input))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	msgs, err := r.Page(ctx, storage.Query{})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := r.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events, err := r.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariant(t, msgs)
	return res, msgs, sessions, events, runErr
}

// checkInvariant verifies the format's ordering guarantee.
func checkInvariant(t *testing.T, msgs []storage.Message) {
	t.Helper()
	for i := 1; i < len(msgs); i++ {
		a, b := msgs[i-1], msgs[i]
		if a.Session == b.Session && (b.TimeNS < a.TimeNS || b.OffsetNS < a.OffsetNS) {
			t.Fatalf("order broken at seq %d: %+v then %+v", b.Seq, a, b)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		head string
		want Format
	}{
		{"\xd4\xc3\xb2\xa1\x02\x00\x04\x00", FormatPcap},
		{"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00", FormatPcap},
		{"\xa1\xb2\x3c\x4d", FormatPcap},
		{`{"seq":1,"session":1,"topic":"a","payload_b64":""}` + "\n", FormatJSONL},
		{"\n\n" + `{"topic":"a","payload":"x"}`, FormatJSONL},
		{`{"tst":"2026-11-26T01:43:27.309783Z+0000","topic":"a/b","qos":0}` + "\n", FormatMosquitto},
		{"home/kitchen/temp 21.5\nhome/x y\n", FormatMosquitto},
		{"", ""},
		{"\x00\x01\x02\x03binary", ""},
		{`{"no":"topic"}`, ""},
		{`{"broken":`, ""},
		{"justoneword\n", ""},
		{"SQLite format 3\x00\x10\x00\x02\x02 rest\n", ""},
		{"topic \x00\x01binary\n", ""},
	}
	for _, tt := range tests {
		got, err := Detect([]byte(tt.head))
		if got != tt.want || (err == nil) != (tt.want != "") {
			t.Errorf("Detect(%q) = %q, %v; want %q", tt.head, got, err, tt.want)
		}
		if err != nil && !errors.Is(err, ErrUnknownFormat) {
			t.Errorf("Detect(%q): error %v is not ErrUnknownFormat", tt.head, err)
		}
	}
}

func TestJSONL(t *testing.T) {
	in := strings.Join([]string{
		// An export: every field, two sessions.
		`{"seq":1,"session":1,"time":"x","ts_ns":1000000000000000000,"offset_ns":5000,"topic":"s/1","qos":1,"retain":true,"dup":false,"packet_id":0,"from_store":true,"client_id":"","payload_b64":"b24=","payload":"on"}`,
		`{"seq":2,"session":1,"ts_ns":1000000000000002000,"offset_ns":7000,"topic":"bin","qos":2,"retain":false,"dup":true,"packet_id":65535,"from_store":false,"client_id":"dev-7","payload_b64":"AP8Q"}`,
		``,
		`{"seq":3,"session":1,"ts_ns":1000000000000001000,"offset_ns":6000,"topic":"late","payload_b64":""}`,
		`not json`,
		`{"topic":"a/+/b"}`,
		`{"topic":"q","qos":3}`,
		`{"seq":4,"session":2,"ts_ns":1000000009000000000,"offset_ns":1000,"topic":"s/1","payload":"second session"}`,
		// Hand-written: time as RFC 3339, inline JSON payload, 0/1 flags.
		`{"session":2,"time":"2001-09-09T01:46:49.5Z","topic":"h","payload":{"t": 21.5},"retain":1}`,
		`{"session":2,"topic":"no time","payload":"x"}`,
		`{"session":2,"topic":"p","properties":{"content_type":"text/plain"}}`,
	}, "\n") + "\n"
	res, msgs, sessions, events, err := importString(t, []byte(in), Options{Name: "in.jsonl"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Format != FormatJSONL || res.Messages != 7 || res.Bad != 3 || len(res.Sessions) != 2 || res.Clamped != 1 {
		t.Fatalf("result = %+v", res)
	}
	if len(res.Notes) != 0 {
		t.Errorf("notes = %q", res.Notes)
	}
	if p := msgs[6].Props; p == nil || p.ContentType != "text/plain" || msgs[0].Props != nil {
		t.Errorf("properties: %+v, %+v", p, msgs[0].Props)
	}
	want := []storage.Message{
		{Seq: 1, Session: 1, TimeNS: 1e18, OffsetNS: 5000, Topic: "s/1", QoS: 1, Retain: true, FromStore: true, Payload: []byte("on")},
		{Seq: 2, Session: 1, TimeNS: 1e18 + 2000, OffsetNS: 7000, Topic: "bin", QoS: 2, Dup: true, PacketID: 65535, ClientID: "dev-7", Payload: []byte{0, 0xff, 0x10}},
		{Seq: 3, Session: 1, TimeNS: 1e18 + 2000, OffsetNS: 7000, Topic: "late", Payload: []byte{}}, // clamped
		{Seq: 4, Session: 2, TimeNS: 1e18 + 9e9, OffsetNS: 1000, Topic: "s/1", Payload: []byte("second session")},
		{Seq: 5, Session: 2, TimeNS: 1e18 + 9.5e9, OffsetNS: 0.5e9 + 1000, Topic: "h", Retain: true, Payload: []byte(`{"t": 21.5}`)},
		{Seq: 6, Session: 2, TimeNS: 1e18 + 9.5e9, OffsetNS: 0.5e9 + 1000, Topic: "no time", Payload: []byte("x")},
		{Seq: 7, Session: 2, TimeNS: 1e18 + 9.5e9, OffsetNS: 0.5e9 + 1000, Topic: "p", Payload: []byte{}},
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages", len(msgs))
	}
	for i := range want {
		if !sameMessage(msgs[i], want[i]) {
			t.Errorf("message %d:\n got %+v\nwant %+v", i, msgs[i], want[i])
		}
	}
	if sessions[0].StartedNS != 1e18-5000 || sessions[1].StartedNS != 1e18+9e9-1000 || sessions[0].Source != "import" ||
		sessions[0].StopReason != "import" || sessions[0].EndedNS != 1e18+2000 {
		t.Errorf("sessions = %+v", sessions)
	}
	// The second session's messages carry MQTT 5 properties: it is an
	// MQTT 5 session (play replays it as MQTT 5); the first is not.
	if sessions[0].Protocol == 5 || sessions[1].Protocol != 5 {
		t.Errorf("protocols %d, %d; want the second session 5", sessions[0].Protocol, sessions[1].Protocol)
	}
	var problems, summaries int
	for _, e := range events {
		switch e.Kind {
		case EventProblem:
			problems++
			if e.Session != 1 || !strings.HasPrefix(e.Detail, "line ") {
				t.Errorf("problem event %+v", e)
			}
		case EventImport:
			summaries++
		}
	}
	if problems != 3 || summaries != 1 {
		t.Errorf("events = %+v", events)
	}
}

func sameMessage(a, b storage.Message) bool {
	return a.Seq == b.Seq && a.Session == b.Session && a.TimeNS == b.TimeNS && a.OffsetNS == b.OffsetNS &&
		a.Topic == b.Topic && a.QoS == b.QoS && a.Retain == b.Retain && a.FromStore == b.FromStore && a.Dup == b.Dup &&
		a.PacketID == b.PacketID && a.ClientID == b.ClientID && bytes.Equal(a.Payload, b.Payload)
}

func TestMosquitto(t *testing.T) {
	mtime := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		file   string
		msgs   int64
		bad    int64
		check  func(t *testing.T, msgs []storage.Message)
		reason string
	}{
		{"mosquitto-j.txt", 6, 1, func(t *testing.T, msgs []storage.Message) {
			m := msgs[0]
			if m.Topic != "home/a" || !m.Retain || !m.FromStore || string(m.Payload) != "online" ||
				m.TimeNS != time.Date(2026, 11, 26, 3, 4, 32, 930903000, time.UTC).UnixNano() || m.OffsetNS != 0 {
				t.Errorf("first = %+v", m)
			}
			if string(msgs[2].Payload) != "" || string(msgs[3].Payload) != "line1\nline2" {
				t.Errorf("payloads %q %q", msgs[2].Payload, msgs[3].Payload)
			}
			if got := msgs[4].Payload; !bytes.Equal(got, []byte("a\xffb\x01\x7f\xc3\xa9\"\\")) {
				t.Errorf("raw bytes = %q", got)
			}
			if string(msgs[5].Payload) != "ünï €" {
				t.Errorf("unicode = %q", msgs[5].Payload)
			}
		}, "binary payload with a NUL cut by mosquitto_sub"},
		{"mosquitto-J.txt", 2, 3, func(t *testing.T, msgs []storage.Message) {
			if string(msgs[0].Payload) != `{"t":21.5}` {
				t.Errorf("%%J payload %q", msgs[0].Payload)
			}
		}, "%J prints empty lines for non-JSON payloads"},
		{"mosquitto-j-v5.txt", 4, 0, func(t *testing.T, msgs []storage.Message) {
			if m := msgs[1]; m.QoS != 1 || m.PacketID != 1 || string(m.Payload) != "hi" || m.Props == nil || m.Props.ContentType != "text/plain" {
				t.Errorf("qos 1 = %+v", m)
			}
			p := msgs[3].Props
			if p == nil || fmt.Sprint(p.UserProperties) != "[{k v} {k v2}]" || p.ContentType != "text/plain" || *p.PayloadFormat != 1 ||
				*p.MessageExpiry != 60 || p.ResponseTopic != "resp/x" || string(p.CorrelationData) != "abc" {
				t.Errorf("properties = %+v", p)
			}
			if msgs[0].Props != nil {
				t.Errorf("no properties = %+v", msgs[0].Props)
			}
		}, ""},
		{"mosquitto-v.txt", 5, 2, func(t *testing.T, msgs []storage.Message) {
			if msgs[0].Topic != "home/a" || string(msgs[0].Payload) != "online" || msgs[0].TimeNS != mtime.UnixNano() {
				t.Errorf("first = %+v", msgs[0])
			}
			if len(msgs[2].Payload) != 0 {
				t.Errorf("(null) = %q", msgs[2].Payload)
			}
		}, "continuation lines of multi-line payloads"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			res, msgs, _, _, err := importString(t, in, Options{Time: mtime})
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != FormatMosquitto || res.Messages != tt.msgs || res.Bad != tt.bad {
				t.Fatalf("result = %+v (%s)", res, tt.reason)
			}
			tt.check(t, msgs)
		})
	}
}

func TestNothingImported(t *testing.T) {
	for _, in := range []string{"", "{\"topic\":\"a/#\"}\n"} {
		_, _, sessions, _, err := importString(t, []byte(in), Options{Format: FormatJSONL})
		if !errors.Is(err, ErrNothingImported) || len(sessions) != 0 {
			t.Errorf("%q: err %v, %d sessions", in, err, len(sessions))
		}
	}
	if _, _, _, _, err := importString(t, []byte("\x00\x01"), Options{}); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("binary input: %v", err)
	}
}

func TestUnquoteRaw(t *testing.T) {
	tests := []struct{ in, want string }{
		{`""`, ""},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t"},
		{`"\u00e9\ud83d\ude00"`, "é😀"},
		{"\"raw\xff\x01\"", "raw\xff\x01"},
		{`"\ud83d"`, "\uFFFD"},
	}
	for _, tt := range tests {
		got, err := unquoteRaw([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("unquoteRaw(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`"`, `"a\"`, `"\x"`, `"\u12"`, `"a"b"`, `abc`} {
		if _, err := unquoteRaw([]byte(bad)); err == nil {
			t.Errorf("unquoteRaw(%q) accepted", bad)
		}
	}
}

func FuzzMosquittoLine(f *testing.F) {
	for _, s := range []string{
		`{"tst":"2026-11-26T03:04:33.384292Z+0000","topic":"home/b","qos":0,"retain":0,"payloadlen":10,"payload":"{\"t\":21.5}"}`,
		`{"tst":"2026-11-26T03:04:33.389237Z+0000","topic":"home/c","qos":0,"retain":0,"payloadlen":0,"payload":null}`,
		`{"tst":"2026-11-26T03:04:46.917905Z+0000","topic":"home/q","qos":1,"retain":0,"payloadlen":2,"mid":1,"properties":{"content-type":"text/plain"},"payload":"hi"}`,
		"{\"tst\":\"2026-11-26T03:13:42.283093Z+0000\",\"topic\":\"bin/raw\",\"qos\":0,\"retain\":0,\"payloadlen\":4,\"payload\":\"a\xffb\\u0001\"}",
		`home/a online`, `home/c (null)`, `nospace`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if m, err := parseMosquittoJSON(line); err == nil && (m.QoS > 2 || m.Topic == "" || m.Payload == nil) {
			t.Errorf("accepted a bad record: %+v", m)
		}
		if tp, _, err := parseVLine(line); err == nil && (tp == "" || strings.ContainsAny(tp, "+#")) {
			t.Errorf("accepted topic %q", tp)
		}
	})
}

// TestDetectLongFirstLine: an export whose first payload is larger than the
// 64 KiB detection looks at imports back without --format, and so does
// mosquitto_sub -F %j output.
func TestDetectLongFirstLine(t *testing.T) {
	big := strings.Repeat("z", 300<<10)
	for _, c := range []struct {
		in   string
		want Format
	}{
		{`{"seq":1,"session":1,"ts_ns":1000000000000000000,"topic":"big","payload":"` + big + `"}` + "\n" +
			`{"seq":2,"session":1,"ts_ns":1000000000000000001,"topic":"small","payload":"x"}` + "\n", FormatJSONL},
		{`{"tst":"2026-11-26T01:43:27.309783Z+0000","topic":"big","qos":0,"retain":0,"payloadlen":307200,"payload":"` + big + `"}` + "\n", FormatMosquitto},
	} {
		res, msgs, _, _, err := importString(t, []byte(c.in), Options{})
		if err != nil || res.Format != c.want || len(msgs) == 0 || string(msgs[0].Payload) != big {
			t.Errorf("%s: %v, format %q, %d messages", c.want, err, res.Format, len(msgs))
		}
	}
	// Cut in the middle of the payload, the start still decides.
	if f, err := Detect([]byte(`{"seq":1,"topic":"big","payload":"` + big[:70<<10])); f != FormatJSONL || err != nil {
		t.Errorf("Detect of a cut first line = %q, %v", f, err)
	}
	if _, err := Detect([]byte(`{"seq":1,"payload":"` + big[:70<<10])); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("a cut first line without a topic: %v", err)
	}
}

// FuzzDetect: detection never panics, fails only with ErrUnknownFormat, and
// the start of a first line cut anywhere is never taken for another format
// than the whole line.
func FuzzDetect(f *testing.F) {
	for _, s := range []string{
		`{"seq":1,"session":1,"topic":"a","payload":"x"}` + "\n",
		`{"tst":"2026-11-26T01:43:27.309783Z+0000","topic":"a/b","qos":0,"payload":{"t":[1,2,{"topic":1}]}}` + "\n",
		`{"payload":"` + strings.Repeat("p", 200) + `","topic":"late"}` + "\n",
		"home/kitchen/temp 21.5\n", "\xd4\xc3\xb2\xa1\x02\x00\x04\x00", `{"a":{"tst":1}}`, `{"topic":1} {"x":2}`,
	} {
		f.Add([]byte(s), uint16(10))
	}
	f.Fuzz(func(t *testing.T, head []byte, cut uint16) {
		whole, err := Detect(head)
		if err != nil && !errors.Is(err, ErrUnknownFormat) {
			t.Fatalf("Detect(%q): %v", head, err)
		}
		line, _, found := bytes.Cut(head, []byte("\n"))
		if !found || len(line) == 0 {
			return
		}
		k := int(cut) % len(line)
		if part, err := Detect(head[:k]); err == nil && whole != "" && part != whole {
			t.Fatalf("Detect(%q) = %q, but of its first %d bytes %q", head, whole, k, part)
		}
	})
}

// TestProblemTextBounded: a bad line whose error quotes megabytes of input
// (a 10 MB topic) is reported and stored as an event in a few hundred
// bytes, keeping what was bad and why, in every input format.
func TestProblemTextBounded(t *testing.T) {
	huge := "a/" + strings.Repeat("é", 5_000_000)
	for _, tc := range []struct {
		format Format
		line   string
	}{
		{FormatJSONL, `{"topic":"` + huge + `","ts_ns":1700000000000000000,"payload":"x"}`},
		{FormatMosquitto, `{"tst":"2023-11-14T22:13:20.000000Z+0000","topic":"` + huge + `","qos":0,"retain":0,"payloadlen":1,"payload":"x"}`},
		{FormatMosquitto, huge + " x"},
	} {
		input := tc.line + "\n" + strings.Replace(tc.line, huge, "ok", 1) + "\n"
		res, msgs, _, events, err := importString(t, []byte(input), Options{Format: tc.format})
		if err != nil || len(msgs) != 1 || res.Bad != 1 {
			t.Fatalf("%s: err %v, %d messages, %d bad", tc.format, err, len(msgs), res.Bad)
		}
		text := res.Problems[0].String()
		if len(text) > 2*maxProblemText || !strings.Contains(text, "longer than 65535 bytes") ||
			!strings.Contains(text, `"a/éé`) || !utf8.ValidString(text) {
			t.Errorf("%s: problem of %d bytes: %.300q", tc.format, len(text), text)
		}
		if !errors.Is(res.Problems[0].Err, topic.ErrInvalidName) {
			t.Errorf("%s: the shortened problem no longer wraps topic.ErrInvalidName", tc.format)
		}
		for _, e := range events {
			if len(e.Detail) > 2*maxProblemText {
				t.Errorf("%s: %s event of %d bytes", tc.format, e.Kind, len(e.Detail))
			}
		}
	}
}

// TestHugeLineAllocation: a line of many megabytes (one big payload) is
// read into memory about twice, not grown by append through a trail of
// copies (about five times its size, most of it still in the heap when
// the payload was decoded: import of a 100 MiB payload peaked at 440–597
// MB RSS, now 334).
func TestHugeLineAllocation(t *testing.T) {
	const size = 48 << 20
	input := append(bytes.Repeat([]byte("x"), size), "\nshort\n"...)
	var lines []int
	im := &Importer{}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := im.readLines(context.Background(), bufio.NewReaderSize(bytes.NewReader(input), 256<<10), func(n int, line []byte) error {
		if n == 1 && (len(line) != size || line[0] != 'x' || line[size-1] != 'x') {
			t.Errorf("line 1: %d bytes", len(line))
		}
		lines = append(lines, len(line))
		return nil
	})
	runtime.ReadMemStats(&after)
	if err != nil || len(lines) != 2 || lines[1] != 5 {
		t.Fatalf("err %v, lines %v", err, lines)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 5*size/2 {
		t.Errorf("reading a %d MiB line allocated %d MiB", size>>20, grew>>20)
	}
}
