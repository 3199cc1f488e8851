package storage

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/mqtt"
)

func newCapture(t testing.TB) (*Capture, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.db")
	c, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

func begin(t testing.TB, c *Capture) *Session {
	t.Helper()
	s, err := c.BeginSession(context.Background(), SessionInfo{Source: "subscriber", Broker: "mqtt://127.0.0.1:1883",
		ClientID: "test", Protocol: 4, CleanSession: true, StartedNS: 1e18, Version: "test", Host: "h",
		Filters: []Filter{{Filter: "#", QoS: 2, Granted: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, path := newCapture(t)
	s := begin(t, c)
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 1<<18) // 1 MiB, binary
	in := []Message{
		{TimeNS: 1e18 + 1, OffsetNS: 1, Topic: "a/b", QoS: 0, Payload: []byte("hello")},
		{TimeNS: 1e18 + 2, OffsetNS: 2, Topic: "wohnzimmer/temperatür/🌡", QoS: 1, PacketID: 7, Dup: true, Payload: []byte{}},
		{TimeNS: 1e18 + 3, OffsetNS: 3, Topic: "bin", QoS: 2, PacketID: 65535, Retain: true, FromStore: true, Payload: big},
		{TimeNS: 1e18 + 4, OffsetNS: 4, Topic: "/lead/ trail /", QoS: 0, Payload: nil},
		{TimeNS: 1e18 + 5, OffsetNS: 5, Topic: "a/b", QoS: 1, Payload: []byte("\x00\xfe not utf8")},
	}
	if err := s.Write(ctx, in, []Event{{TimeNS: 1e18, Kind: EventConnected, Detail: "x"}}, 1e18+5); err != nil {
		t.Fatal(err)
	}
	if err := s.End(ctx, 1e18+10, "count", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Page(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("got %d messages, want %d", len(got), len(in))
	}
	for i := range in {
		w, g := in[i], got[i]
		if w.Payload == nil {
			w.Payload = []byte{}
		}
		if g.Seq != int64(i+1) || g.Session != s.ID() || g.Topic != w.Topic || g.QoS != w.QoS || g.Retain != w.Retain ||
			g.FromStore != w.FromStore || g.Dup != w.Dup || g.PacketID != w.PacketID || g.TimeNS != w.TimeNS ||
			g.OffsetNS != w.OffsetNS || !bytes.Equal(g.Payload, w.Payload) {
			t.Errorf("message %d: got %+.60v, want %+.60v", i, g, w)
		}
	}
	sessions, err := r.Sessions(ctx)
	if err != nil || len(sessions) != 1 || sessions[0].StopReason != "count" || sessions[0].EndedNS != 1e18+10 ||
		sessions[0].Filters[0].Filter != "#" {
		t.Fatalf("sessions = %+v, %v", sessions, err)
	}
	ev, err := r.Events(ctx, 0)
	if err != nil || len(ev) != 1 || ev[0].Kind != EventConnected {
		t.Fatalf("events = %+v, %v", ev, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("capture mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestQuery(t *testing.T) {
	ctx := context.Background()
	c, _ := newCapture(t)
	s := begin(t, c)
	var msgs []Message
	for i := range 100 {
		msgs = append(msgs, Message{TimeNS: 1e18 + int64(i)*1e8, OffsetNS: int64(i) * 1e8,
			Topic: fmt.Sprintf("dev/%d/temp", i%4), QoS: byte(i % 3), FromStore: i < 4, Retain: i < 4,
			Payload: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	msgs = append(msgs, Message{TimeNS: 2e18, OffsetNS: 1e10, Topic: "$SYS/x", Payload: []byte("sys")})
	if err := s.Write(ctx, msgs, nil, 2e18); err != nil {
		t.Fatal(err)
	}
	i64 := func(v int64) *int64 { return &v }
	match := func(prefix string) func(string) bool {
		return func(n string) bool { return strings.HasPrefix(n, prefix) }
	}
	tests := []struct {
		name  string
		q     Query
		count int64
		first int64
	}{
		{"all", Query{}, 101, 1},
		{"topic", Query{Match: match("dev/1/")}, 25, 2},
		{"no topic", Query{Match: match("nope")}, 0, 0},
		{"offset range", Query{FromOffset: i64(1e9), ToOffset: i64(2e9)}, 10, 11},
		{"time range", Query{FromTime: i64(1e18 + 5e9)}, 51, 51},
		{"after seq", Query{AfterSeq: 95}, 6, 96},
		{"before seq desc", Query{BeforeSeq: 10, Desc: true}, 9, 9},
		{"qos", Query{QoS: []byte{2}}, 33, 3},
		{"retained", Query{FromStore: new(true)}, 4, 1},
		{"payload", Query{PayloadContains: [][]byte{[]byte(`"n":7`)}}, 11, 8},
		{"payload matched in Go", Query{PayloadMatch: func(p []byte) bool { return bytes.Contains(p, []byte(`"n":7`)) }}, 11, 8},
		{"message matched in Go", Query{MessageMatch: func(m *Message) bool { return m.Topic != "" && bytes.Contains(m.Payload, []byte(`"n":7`)) }}, 11, 8},
		{"payload both ways", Query{PayloadContains: [][]byte{[]byte(`"n":7`)}, PayloadMatch: func(p []byte) bool { return false }}, 0, 0},
		{"qos set", Query{QoS: []byte{0, 2}}, 68, 1},
		{"no qos", Query{QoS: []byte{}}, 0, 0},
		{"no topic ids", Query{TopicIDs: []int64{}}, 0, 0},
		{"live only", Query{FromStore: new(false)}, 97, 5},
		{"session", Query{Session: s.ID()}, 101, 1},
		{"other session", Query{Session: 99}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := c.Count(ctx, tt.q)
			if err != nil || n != tt.count {
				t.Fatalf("Count = %d, %v; want %d", n, err, tt.count)
			}
			q := tt.q
			q.Limit = 1
			page, err := c.Page(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if tt.count == 0 {
				if len(page) != 0 {
					t.Fatalf("page = %v, want empty", page)
				}
				return
			}
			if len(page) != 1 || page[0].Seq != tt.first {
				t.Fatalf("first = %+v, want seq %d", page, tt.first)
			}
		})
	}
	tot, per, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Messages != 101 || tot.Topics != 5 || len(per) != 5 || per[0].Topic != "$SYS/x" || per[1].Count != 25 ||
		per[1].PeakRate != 3 || tot.PeakRate != 10 || per[1].FromStore != 1 {
		t.Fatalf("stats = %+v %+v", tot, per)
	}
}

func TestAppendSession(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	for i := range 2 {
		c, err := OpenWrite(path)
		if err != nil {
			t.Fatal(err)
		}
		s := begin(t, c)
		if err := s.Write(ctx, []Message{{Topic: "t", Payload: []byte{byte(i)}}, {Topic: fmt.Sprint("u", i)}}, nil, 1); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, _ := c.Page(ctx, Query{})
	sessions, _ := c.Sessions(ctx)
	topics, _ := c.Topics(ctx)
	if len(msgs) != 4 || len(sessions) != 2 || len(topics) != 3 || msgs[2].Session != 2 || msgs[3].Seq != 4 {
		t.Fatalf("msgs=%v sessions=%d topics=%v", msgs, len(sessions), topics)
	}
}

func TestRefusesNonCaptures(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	otherDB := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", otherDB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE x(a); INSERT INTO x VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	newer := filepath.Join(dir, "newer.db")
	c, err := OpenWrite(newer)
	if err != nil {
		t.Fatal(err)
	}
	c.w.Exec(fmt.Sprintf("PRAGMA user_version=%d", FormatVersion+1))
	c.Close()

	// A truncated capture: a real one cut in half.
	full, _ := newCapture(t)
	s := begin(t, full)
	var msgs []Message
	for range 200 {
		msgs = append(msgs, Message{Topic: "t", Payload: bytes.Repeat([]byte("x"), 500)})
	}
	s.Write(context.Background(), msgs, nil, 1)
	full.Close()
	data, _ := os.ReadFile(full.Path())
	truncated := write("truncated.db", data[:len(data)/2])

	tests := []struct {
		name     string
		path     string
		read     error // want from Open
		write    error // want from OpenWrite (nil: accepted)
		mustKeep bool
	}{
		{"missing", filepath.Join(dir, "missing.db"), ErrNotFound, nil, false},
		{"empty", write("empty.db", nil), ErrNotCapture, nil, false},
		{"text", write("text.txt", []byte("hello world, this is not a database at all, no, not at all, not one bit of it, really, not at all.")), ErrNotCapture, ErrNotCapture, true},
		{"short", write("short", []byte("SQLite")), ErrNotCapture, ErrNotCapture, true},
		{"directory", dir, ErrNotCapture, ErrNotCapture, false},
		{"other sqlite", otherDB, ErrNotCapture, ErrNotCapture, true},
		{"newer", newer, ErrNewerVersion, ErrNewerVersion, true},
		{"truncated", truncated, ErrCorrupt, ErrCorrupt, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []byte
			if tt.mustKeep {
				before, _ = os.ReadFile(tt.path)
			}
			c, err := Open(tt.path)
			if !errors.Is(err, tt.read) {
				t.Errorf("Open: %v, want %v", err, tt.read)
			}
			if err == nil {
				c.Close()
			}
			if tt.mustKeep {
				c, err = OpenWrite(tt.path)
				if !errors.Is(err, tt.write) {
					t.Errorf("OpenWrite: %v, want %v", err, tt.write)
				}
				if err == nil {
					c.Close()
				}
				after, _ := os.ReadFile(tt.path)
				if !bytes.Equal(before, after) {
					t.Error("file was modified")
				}
				if _, err := os.Stat(tt.path + "-wal"); err == nil {
					t.Error("left a -wal file behind")
				}
			}
		})
	}
}

func TestWriteFailureKeepsTopicCache(t *testing.T) {
	ctx := context.Background()
	c, _ := newCapture(t)
	s := begin(t, c)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Write(cctx, []Message{{Topic: "new/topic"}}, nil, 1); err == nil {
		t.Fatal("write with cancelled context succeeded")
	}
	if err := s.Write(ctx, []Message{{Topic: "new/topic", Payload: []byte("ok")}}, nil, 1); err != nil {
		t.Fatal(err)
	}
	m, err := c.Get(ctx, 1)
	if err != nil || m.Topic != "new/topic" {
		t.Fatalf("Get = %+v, %v", m, err)
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add("a/b", []byte("hello"), byte(1), true)
	f.Add("ü/ /", []byte{0, 0xff}, byte(2), false)
	c, _ := newCapture(f)
	s := begin(f, c)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, topic string, payload []byte, qos byte, retain bool) {
		m := []Message{{Topic: topic, Payload: payload, QoS: qos % 3, Retain: retain, TimeNS: 5}}
		if err := s.Write(ctx, m, nil, 5); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, m[0].Seq)
		if err != nil {
			t.Fatal(err)
		}
		if got.Topic != topic || !bytes.Equal(got.Payload, payload) || got.QoS != qos%3 || got.Retain != retain {
			t.Fatalf("round trip: got %+v", got)
		}
	})
}

func benchmarkInsert(b *testing.B, size int) {
	c, _ := newCapture(b)
	s := begin(b, c)
	ctx := context.Background()
	payload := bytes.Repeat([]byte("x"), size)
	batch := make([]Message, 1000)
	for i := range batch {
		batch[i] = Message{Topic: fmt.Sprintf("bench/dev/%d", i%50), QoS: 1, Payload: payload}
	}
	n := 0
	for b.Loop() {
		for i := range batch {
			batch[i].TimeNS, batch[i].OffsetNS = int64(n), int64(n)
			n++
		}
		if err := s.Write(ctx, batch, nil, 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkInsert64B(b *testing.B)  { benchmarkInsert(b, 64) }
func BenchmarkInsert1KiB(b *testing.B) { benchmarkInsert(b, 1024) }

// writeV1 creates a capture in format version 1, as mqtape 0.1 wrote it.
func writeV1(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		fmt.Sprintf("PRAGMA application_id=%d", ApplicationID),
		migrations[0],
		"PRAGMA user_version=1",
		`INSERT INTO sessions (source, broker, client_id, protocol, clean_session, started_ns, mqtape_version, host, first_seq, last_seq)
		 VALUES ('subscriber', 'mqtt://h:1883', 'old', 4, 1, 1, '0.1.0', 'h', 1, 1)`,
		"INSERT INTO topics (name) VALUES ('old/topic')",
		"INSERT INTO messages (session, ts_ns, offset_ns, topic_id, qos, retain, from_store, dup, packet_id, payload) VALUES (1, 1, 0, 1, 1, 0, 0, 0, 3, X'6869')",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOlderVersionReadsAndMigrates(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	writeV1(t, path)
	before, _ := os.ReadFile(path)

	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := r.Page(ctx, Query{})
	if err != nil || len(msgs) != 1 || string(msgs[0].Payload) != "hi" || msgs[0].ClientID != "" || r.Version() != 1 {
		t.Fatalf("v1 read: %+v %v (version %d)", msgs, err, r.Version())
	}
	r.Close()
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("reading a v1 capture modified it")
	}

	w, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	if w.Version() != 1 {
		t.Fatalf("OpenWrite migrated already (to %d): an unreachable broker would change the file", w.Version())
	}
	s := begin(t, w)
	if w.Version() != FormatVersion {
		t.Fatalf("migrated to %d, want %d", w.Version(), FormatVersion)
	}
	if err := s.Write(ctx, []Message{{Topic: "new", ClientID: "sensor-7", Payload: []byte("x")}, {Topic: "new", Payload: []byte("y")}}, nil, 2); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msgs, _ = r.Page(ctx, Query{})
	if len(msgs) != 3 || msgs[0].ClientID != "" || msgs[1].ClientID != "sensor-7" || msgs[2].ClientID != "" || string(msgs[0].Payload) != "hi" {
		t.Fatalf("after migration: %+v", msgs)
	}
	if m, err := r.Get(ctx, 2); err != nil || m.ClientID != "sensor-7" {
		t.Fatalf("Get = %+v, %v", m, err)
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, path := newCapture(t)
	s := begin(t, c)
	one, exp := byte(1), uint32(3600)
	props := &mqtt.Properties{ContentType: "application/json", PayloadFormat: &one, MessageExpiry: &exp,
		ResponseTopic: "reply/to", CorrelationData: []byte{0, 0xff, 0x10},
		UserProperties:  []mqtt.UserProperty{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "b", Value: "3"}},
		SubscriptionIDs: []int{7}}
	if err := s.Write(ctx, []Message{{Topic: "p", Props: props, Payload: []byte("{}")}, {Topic: "q"}}, nil, 1); err != nil {
		t.Fatal(err)
	}
	c.Close()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	msgs, err := r.Page(ctx, Query{})
	if err != nil || len(msgs) != 2 {
		t.Fatal(msgs, err)
	}
	got, _ := json.Marshal(msgs[0].Props)
	want := `{"content_type":"application/json","payload_format":1,"message_expiry":3600,"response_topic":"reply/to","correlation_data_b64":"AP8Q","user_properties":[{"key":"b","value":"2"},{"key":"a","value":"1"},{"key":"b","value":"3"}],"subscription_ids":[7]}`
	if string(got) != want {
		t.Errorf("props = %s\nwant     %s", got, want)
	}
	if msgs[1].Props != nil {
		t.Errorf("no props read back as %+v", msgs[1].Props)
	}
}

// Plain rows (no client id, no properties) and full rows share batches: the
// writer picks a statement per chunk of rows, so every mix must round-trip.
func TestMixedRowsRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, _ := newCapture(t)
	s := begin(t, c)
	var in []Message
	for i := range 100 { // three 32-row chunks and four single rows
		m := Message{TimeNS: int64(i), OffsetNS: int64(i), Topic: fmt.Sprintf("t/%d", i%3), QoS: byte(i % 3),
			Payload: []byte(fmt.Sprint(i))}
		if i%5 == 0 || i >= 64 && i < 96 && i%2 == 0 {
			m.ClientID = fmt.Sprintf("dev-%d", i%4)
		}
		if i%7 == 0 {
			m.Props = &mqtt.Properties{ContentType: fmt.Sprint("type-", i)}
		}
		in = append(in, m)
	}
	if err := s.Write(ctx, in[:40], nil, 1); err != nil { // a 32-row chunk, then single rows
		t.Fatal(err)
	}
	if err := s.Write(ctx, in[40:], nil, 2); err != nil {
		t.Fatal(err)
	}
	got, err := c.Page(ctx, Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("got %d messages, want %d", len(got), len(in))
	}
	for i, g := range got {
		w := in[i]
		if g.Seq != w.Seq || g.Topic != w.Topic || g.QoS != w.QoS || string(g.Payload) != string(w.Payload) ||
			g.ClientID != w.ClientID || (g.Props == nil) != (w.Props == nil) || (w.Props != nil && g.Props.ContentType != w.Props.ContentType) {
			t.Errorf("row %d: got %+v, want %+v", i, g, w)
		}
	}
}

// benchmarkSession records one whole session the way the recorder does on
// a flood (batches of 4096, two topics), including End (topic index build)
// and Close (final checkpoint), and reports the process CPU per message:
// the storage share of `mqtape record`'s CPU, without the network's noise.
func benchmarkSession(b *testing.B, size, batchSize int) {
	payload := bytes.Repeat([]byte("x"), size)
	benchmarkSessionOf(b, func(int) []byte { return payload }, batchSize, false)
}

// benchmarkSessionOf records sessions of 100,000 messages, message n with
// payload gen(n), in batches of batchSize, compressed or not.
func benchmarkSessionOf(b *testing.B, gen func(n int) []byte, batchSize int, compress bool) {
	const perSession = 100_000
	payloads := make([][]byte, perSession)
	for i := range payloads {
		payloads[i] = gen(i)
	}
	batch := make([]Message, batchSize)
	ctx := context.Background()
	var cpu time.Duration
	msgs := 0
	for b.Loop() {
		path := filepath.Join(b.TempDir(), "s.db")
		before := cpuTime()
		c, err := OpenWrite(path)
		if err != nil {
			b.Fatal(err)
		}
		c.SetCompression(compress)
		s := begin(b, c)
		for n := 0; n < perSession; {
			k := min(batchSize, perSession-n)
			for i := range k {
				batch[i] = Message{Topic: []string{"bench/a", "bench/b"}[n%2], QoS: 0, Payload: payloads[n],
					TimeNS: 1e18 + int64(n)*1000, OffsetNS: int64(n) * 1000}
				n++
			}
			if err := s.Write(ctx, batch[:k], nil, 1); err != nil {
				b.Fatal(err)
			}
		}
		if err := s.End(ctx, 2e18, "count", 0); err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - before
		msgs += perSession
		if compress {
			b.StopTimer()
			r, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			tot, _, err := r.Stats(ctx)
			r.Close()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(tot.Stored)/float64(tot.Bytes), "stored/payload")
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(msgs), "cpu-µs/msg")
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(0, "ns/op")
}

// Batches of 4096 are what a QoS 0 flood commits; batches of 100 what a
// QoS 1 flood commits (the writer commits as soon as acknowledgements wait).
func BenchmarkSession64B(b *testing.B)          { benchmarkSession(b, 64, 4096) }
func BenchmarkSession1KiB(b *testing.B)         { benchmarkSession(b, 1024, 4096) }
func BenchmarkSession64BBatch100(b *testing.B)  { benchmarkSession(b, 64, 100) }
func BenchmarkSession1KiBBatch100(b *testing.B) { benchmarkSession(b, 1024, 100) }

// Compressed (SetCompression) against stored as published: JSON telemetry
// of ~110 bytes whose readings vary, and 1 KiB of it (ten readings).
func benchmarkSessionTelemetry(b *testing.B, readings int, compress bool) {
	r := rand.New(rand.NewPCG(5, 6))
	benchmarkSessionOf(b, func(n int) []byte {
		var p []byte
		for j := range readings {
			p = append(p, telemetry(r, n%50, n*readings+j)...)
		}
		return p
	}, 4096, compress)
}

func BenchmarkSessionTelemetry(b *testing.B)        { benchmarkSessionTelemetry(b, 1, false) }
func BenchmarkSessionTelemetryZip(b *testing.B)     { benchmarkSessionTelemetry(b, 1, true) }
func BenchmarkSessionTelemetry1KiB(b *testing.B)    { benchmarkSessionTelemetry(b, 9, false) }
func BenchmarkSessionTelemetry1KiBZip(b *testing.B) { benchmarkSessionTelemetry(b, 9, true) }

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
