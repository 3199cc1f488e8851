package storage

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestMaxPayloadAndPayload: Messages with MaxPayload leaves out the
// payloads over it (and only those, an empty one included), and Payload
// reads them back byte for byte.
func TestMaxPayloadAndPayload(t *testing.T) {
	ctx := context.Background()
	big := strings.Repeat("\x00big", 1000)
	path := writeSessions(t, filepath.Join(t.TempDir(), "c.db"), testSession{
		info: SessionInfo{Source: "subscriber", StartedNS: t0},
		msgs: []Message{at(0, "small"), at(1, ""), at(2, big), at(3, big[:100])},
	})
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []string
	for m, err := range c.Messages(ctx, Query{MaxPayload: 100}) {
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case m.PayloadOmitted && m.Payload != nil:
			t.Errorf("seq %d: left out, yet %d payload bytes", m.Seq, len(m.Payload))
		case m.PayloadOmitted:
			got = append(got, "omitted")
		case m.Payload == nil:
			t.Errorf("seq %d: nil payload not marked as left out", m.Seq)
		default:
			got = append(got, string(m.Payload))
		}
		err := c.Payload(ctx, m.Seq, func(p []byte) error {
			if want := []byte([]string{"small", "", big, big[:100]}[m.Seq-1]); !bytes.Equal(p, want) || p == nil {
				t.Errorf("Payload(%d) = %d bytes, want %d", m.Seq, len(p), len(want))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"small", "", "omitted", big[:100]}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("payloads %q, want %q", got, want)
	}
	// A PayloadMatch needs the payloads: MaxPayload gives way.
	matched := 0
	for m, err := range c.Messages(ctx, Query{MaxPayload: 100, PayloadMatch: func(p []byte) bool { return len(p) == len(big) }}) {
		if err != nil || m.PayloadOmitted || string(m.Payload) != big {
			t.Fatalf("seq %d: %v, omitted %v", m.Seq, err, m.PayloadOmitted)
		}
		matched++
	}
	if matched != 1 {
		t.Errorf("the payload matcher selected %d messages, want 1", matched)
	}
	stop := errors.New("stop")
	if err := c.Payload(ctx, 3, func([]byte) error { return stop }); err != stop {
		t.Errorf("Payload returned %v, not fn's error", err)
	}
	if err := c.Payload(ctx, 99, func([]byte) error { return nil }); err == nil || !strings.Contains(err.Error(), "seq 99") {
		t.Errorf("Payload of a missing seq: %v", err)
	}
}
