package storage

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestStatsOfSelection: statistics of a selection count only its messages,
// and average rates are messages per second of recording in the selection
// (the sessions' durations clipped to its time range), one definition for
// info and the inspector.
func TestStatsOfSelection(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC).UnixNano()
	sec := int64(time.Second)
	// Session 1 runs 20 s: a/x every second (payload "x" or "y"), b once.
	var s1 []Message
	for i := range 10 {
		p := "x"
		if i%2 == 1 {
			p = "y"
		}
		s1 = append(s1, Message{TimeNS: t0 + int64(i)*sec, OffsetNS: int64(i) * sec, Topic: "a/x", QoS: 1, Payload: []byte(p)})
	}
	s1 = append(s1, Message{TimeNS: t0 + 15*sec, OffsetNS: 15 * sec, Topic: "b", Payload: []byte("one")})
	// Session 2 runs 10 s an hour later with 4 messages on a/x.
	t1 := t0 + int64(time.Hour)
	var s2 []Message
	for i := range 4 {
		s2 = append(s2, Message{TimeNS: t1 + int64(i)*sec, OffsetNS: int64(i) * sec, Topic: "a/x", Payload: []byte("x")})
	}
	path := filepath.Join(t.TempDir(), "stats.db")
	w, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range []struct {
		start int64
		msgs  []Message
		end   int64
	}{{t0, s1, t0 + 20*sec}, {t1, s2, t1 + 10*sec}} {
		sess, err := w.BeginSession(ctx, SessionInfo{Source: "subscriber", StartedNS: s.start, Version: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.Write(ctx, s.msgs, nil, s.end); err != nil {
			t.Fatal(err)
		}
		if err := sess.End(ctx, s.end, "test", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ptr := func(v int64) *int64 { return &v }
	tests := []struct {
		name     string
		q        Query
		messages int64
		recorded time.Duration
		topics   string // topic=count ...
		avgFirst string // AvgRate of the first topic, %.2f
	}{
		{"everything", Query{}, 15, 30 * time.Second, "a/x=14 b=1", "0.47"},
		{"one topic", Query{Match: func(s string) bool { return s == "b" }}, 1, 30 * time.Second, "b=1", "0.03"},
		{"one session", Query{Session: 1}, 11, 20 * time.Second, "a/x=10 b=1", "0.50"},
		{"time range", Query{FromTime: ptr(t0 + 2*sec), ToTime: ptr(t0 + 7*sec)}, 5, 5 * time.Second, "a/x=5", "1.00"},
		{"offsets in each session", Query{FromOffset: ptr(2 * sec), ToOffset: ptr(12 * sec)}, 10, 18 * time.Second, "a/x=10", "0.56"},
		{"payload text", Query{PayloadContains: [][]byte{[]byte("y")}}, 5, 30 * time.Second, "a/x=5", "0.17"},
		{"payload match", Query{PayloadMatch: func(p []byte) bool { return bytes.Equal(p, []byte("one")) }}, 1, 30 * time.Second, "b=1", "0.03"},
		{"message match", Query{MessageMatch: func(m *Message) bool { return m.Topic == "b" && string(m.Payload) == "one" }}, 1, 30 * time.Second, "b=1", "0.03"},
		{"seq horizon", Query{BeforeSeq: 4}, 3, 30 * time.Second, "a/x=3", "0.10"},
		{"no topic", Query{Match: func(string) bool { return false }}, 0, 30 * time.Second, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tot, per, err := c.StatsOf(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var topics, avg string
			for i, ts := range per {
				if i > 0 {
					topics += " "
				}
				topics += fmt.Sprintf("%s=%d", ts.Topic, ts.Count)
			}
			if len(per) > 0 {
				avg = fmt.Sprintf("%.2f", tot.AvgRate(per[0].Count))
			}
			if tot.Messages != tt.messages || tot.Recorded != tt.recorded || tot.Topics != len(per) || topics != tt.topics || avg != tt.avgFirst {
				t.Errorf("messages %d, recorded %s, topics %d %q, avg %s; want %d, %s, %q, %s",
					tot.Messages, tot.Recorded, tot.Topics, topics, avg, tt.messages, tt.recorded, tt.topics, tt.avgFirst)
			}
		})
	}
}
