// Package capturetest writes and reads small captures for tests: the one
// copy of the open, begin, write in batches, end and close sequence that
// tests of several packages need. (storage's own tests cannot import it.)
package capturetest

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// Session is one session to write.
type Session struct {
	// Info describes the session; empty fields get test defaults (a
	// subscriber on mqtt://127.0.0.1:1883, client "test", MQTT 3.1.1).
	Info     storage.SessionInfo
	Messages []storage.Message // written as given (TimeNS included)
	Events   []storage.Event
	// EndNS is when the session ended (0: its last message's time, or
	// its start).
	EndNS  int64
	Reason string // stop reason (default "count")
	// Batch is how many messages go in one transaction, as a recorder
	// writes them (default 500).
	Batch int
}

// Write writes the sessions, in order, into a new capture at path.
func Write(t testing.TB, path string, sessions ...Session) {
	t.Helper()
	c, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range sessions {
		info := s.Info
		if info.Source == "" {
			info.Source, info.Broker, info.ClientID, info.Protocol, info.CleanSession = "subscriber", "mqtt://127.0.0.1:1883", "test", 4, true
			info.Version, info.Host = "test", "h"
		}
		sess, err := c.BeginSession(ctx, info)
		if err != nil {
			t.Fatal(err)
		}
		msgs, events, batch := s.Messages, s.Events, max(s.Batch, 1)
		if s.Batch == 0 {
			batch = 500
		}
		last := info.StartedNS
		for len(msgs) > 0 || len(events) > 0 {
			n := min(len(msgs), batch)
			if n > 0 {
				last = msgs[n-1].TimeNS
			}
			if err := sess.Write(ctx, msgs[:n], events, last); err != nil {
				t.Fatal(err)
			}
			msgs, events = msgs[n:], nil
		}
		end, reason := s.EndNS, s.Reason
		if end == 0 {
			end = last
		}
		if reason == "" {
			reason = "count"
		}
		if err := sess.End(ctx, end, reason, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// Read returns every message, session and event of the capture at path.
func Read(t testing.TB, path string) ([]storage.Message, []storage.SessionInfo, []storage.Event) {
	t.Helper()
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	msgs, err := c.Page(ctx, storage.Query{})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := c.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events, err := c.Events(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	return msgs, sessions, events
}

// WriteOffsets writes sessions of messages, their times given as offsets,
// into a new capture in a temporary directory and returns its path.
// Session i starts i hours after the first and ends a minute after its
// start.
func WriteOffsets(t testing.TB, sessions ...[]storage.Message) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.db")
	c, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, msgs := range sessions {
		start := int64(1.7e18) + int64(i)*int64(time.Hour)
		for j := range msgs {
			msgs[j].TimeNS = start + msgs[j].OffsetNS
		}
		s, err := c.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "t",
			Protocol: 4, CleanSession: true, StartedNS: start, Version: "test", Host: "h"})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, msgs, nil, start+int64(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.End(ctx, start+int64(time.Minute), "count", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// Msg is a message at offset off (its time is set when written).
func Msg(off time.Duration, topic string, qos byte, payload string) storage.Message {
	return storage.Message{OffsetNS: int64(off), Topic: topic, QoS: qos, Payload: []byte(payload)}
}

// WriteBig writes n messages of 200 bytes (about 10 pages of 64 KiB per
// 3000 messages) in one closed session into a new capture in a temporary
// directory and returns its path.
func WriteBig(t testing.TB, n int) string {
	t.Helper()
	var msgs []storage.Message
	for i := range n {
		p := bytes.Repeat([]byte{'.'}, 200)
		copy(p, fmt.Sprintf("msg %d ", i))
		msgs = append(msgs, Msg(time.Duration(i)*time.Millisecond, fmt.Sprintf("dev/%d", i%9), byte(i%3), string(p)))
	}
	return WriteOffsets(t, msgs)
}

// WriteParts writes msgs (their times given as offsets from the
// recording's start) as a split recording into dir, a new part starting at
// each index in cuts, the way record --split-size writes one
// (storage.CreatePart, storage.EndPart: each part after the first starts
// with the retained state carried forward). It returns the parts' paths
// and the path of one unsplit capture of the same messages (whole.db).
func WriteParts(t testing.TB, dir, recording string, msgs []storage.Message, cuts ...int) (parts []string, whole string) {
	t.Helper()
	const start = int64(1.7e18)
	for i := range msgs {
		msgs[i].TimeNS = start + msgs[i].OffsetNS
	}
	info := storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "t", Protocol: 4, CleanSession: true,
		StartedNS: start, Version: "test", Host: "h"}
	whole = filepath.Join(dir, "whole.db")
	Write(t, whole, Session{Info: info, Messages: append([]storage.Message(nil), msgs...)})
	ctx := context.Background()
	bounds := append(append([]int{0}, cuts...), len(msgs))
	var state storage.RetainedState
	prev := ""
	for k := 0; k+1 < len(bounds); k++ {
		path := filepath.Join(dir, storage.PartName("run.db", k+1, time.Time{}))
		if k > 0 {
			info.StartedNS = (msgs[bounds[k]-1].TimeNS + msgs[bounds[k]].TimeNS) / 2
		}
		c, sess, err := storage.CreatePart(ctx, path, info, storage.PartStart{Recording: recording, Number: k + 1,
			Previous: prev, Retained: state.Messages()})
		if err != nil {
			t.Fatal(err)
		}
		part := append([]storage.Message(nil), msgs[bounds[k]:bounds[k+1]]...)
		for i := range part {
			part[i].OffsetNS = part[i].TimeNS - info.StartedNS
			state.Observe(&part[i])
		}
		last := part[len(part)-1].TimeNS
		if err := sess.Write(ctx, part, nil, last); err != nil {
			t.Fatal(err)
		}
		if k+2 < len(bounds) {
			next := filepath.Join(dir, storage.PartName("run.db", k+2, time.Time{}))
			err = storage.EndPart(ctx, c, sess, storage.PartLink{Recording: recording, Part: k + 1, Next: next}, last+1, 0)
		} else if err = sess.End(ctx, last, "count", 0); err == nil {
			err = c.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		parts, prev = append(parts, path), path
	}
	return parts, whole
}
