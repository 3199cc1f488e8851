package storage

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// t0 is the start of the first session of the test captures.
const t0 = int64(1_790_000_000_000_000_000)

// testSession is one session of a capture written by writeSessions:
// message and event times are info.StartedNS plus their offsets.
type testSession struct {
	info   SessionInfo
	msgs   []Message
	events []Event
}

// writeSessions writes a new capture at path and returns path.
func writeSessions(t *testing.T, path string, sessions ...testSession) string {
	t.Helper()
	ctx := context.Background()
	c, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ts := range sessions {
		start := ts.info.StartedNS
		s, err := c.BeginSession(ctx, ts.info)
		if err != nil {
			t.Fatal(err)
		}
		msgs := make([]Message, len(ts.msgs))
		end := start
		for i, m := range ts.msgs {
			m.TimeNS = start + m.OffsetNS
			msgs[i], end = m, m.TimeNS
		}
		events := make([]Event, len(ts.events))
		for i, e := range ts.events {
			e.TimeNS = start + e.OffsetNS
			events[i] = e
		}
		if err := s.Write(ctx, msgs, events, end); err != nil {
			t.Fatal(err)
		}
		if err := s.End(ctx, end, "test", ts.info.Dropped); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// openPair opens in for reading and a new capture out for writing.
func openPair(t *testing.T, in, out string) (*Capture, *Capture) {
	t.Helper()
	ic, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ic.Close() })
	oc, err := OpenWrite(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { oc.Close() })
	return ic, oc
}

// describeMsgs renders messages one a line: session, offset, topic=payload
// and whether they come from the retained store.
func describeMsgs(msgs []Message) string {
	var out []string
	for _, m := range msgs {
		flag := ""
		if m.FromStore {
			flag = " (store)"
		}
		out = append(out, fmt.Sprintf("s%d %.1fs %s=%s%s", m.Session, float64(m.OffsetNS)/1e9, m.Topic, m.Payload, flag))
	}
	return strings.Join(out, "\n")
}

// describeEvents renders events one a line: session, offset and kind.
func describeEvents(events []Event) string {
	var out []string
	for _, e := range events {
		out = append(out, fmt.Sprintf("s%d %.1fs %s", e.Session, float64(e.OffsetNS)/1e9, e.Kind))
	}
	return strings.Join(out, "\n")
}

func ptr[T any](v T) *T { return &v }
