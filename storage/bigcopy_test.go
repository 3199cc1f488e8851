package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// bigTestPayload is the size of the huge payload of the tests below: big
// enough that a copy of it through Go stands out of everything else the
// operations allocate.
const bigTestPayload = 32 << 20

// bigInput writes a capture of one session holding a huge payload of
// random bytes, retained and then live, between small messages (a
// retained-store message among them), and returns its path and messages.
func bigInput(t *testing.T, dir string) (string, []Message) {
	t.Helper()
	big := make([]byte, bigTestPayload)
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < len(big); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			big[i+j] = byte(v >> (8 * j))
		}
	}
	msgs := []Message{
		{OffsetNS: 0, Topic: "state", QoS: 1, Retain: true, FromStore: true, Payload: []byte("on")},
		{OffsetNS: 0, Topic: "big", QoS: 1, Retain: true, FromStore: true, Payload: big, ClientID: "cam"},
		{OffsetNS: 1e9, Topic: "small", Payload: []byte("a")},
		{OffsetNS: 2e9, Topic: "big/live", QoS: 2, Payload: big[:bigPayload+1], PacketID: 7},
		{OffsetNS: 3e9, Topic: "small", Payload: []byte("b")},
	}
	path := writeSessions(t, filepath.Join(dir, "big.db"), testSession{
		info: SessionInfo{Source: "subscriber", Broker: "mqtt://a", StartedNS: t0, Protocol: 5}, msgs: msgs})
	_, got, _ := readAll(t, path)
	return path, got
}

// goAllocs returns how many bytes of Go memory fn allocated.
func goAllocs(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// sameMessages fails unless got are want rebased: same topics, payloads,
// flags and client ids, times at least start.
func sameMessages(t *testing.T, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d:\n%s", len(got), len(want), describeMsgs(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Topic != w.Topic || !bytes.Equal(g.Payload, w.Payload) || g.QoS != w.QoS || g.Retain != w.Retain ||
			g.FromStore != w.FromStore || g.PacketID != w.PacketID || g.ClientID != w.ClientID {
			t.Errorf("message %d: %s (%d bytes, qos %d, retain %v, store %v, id %d, client %q), want %s (%d bytes, qos %d, retain %v, store %v, id %d, client %q)",
				i, g.Topic, len(g.Payload), g.QoS, g.Retain, g.FromStore, g.PacketID, g.ClientID,
				w.Topic, len(w.Payload), w.QoS, w.Retain, w.FromStore, w.PacketID, w.ClientID)
		}
	}
}

// TestHugePayloadsCopiedInSQLite: cut (whole, and a slice that carries the
// huge retained payload to its start), merge (with the retained copy every
// input got left out once) and recover copy a huge payload exactly, and
// mqtape allocates far less than the payload in Go while doing it (reading
// and binding it took four to five copies of it); merge reads a huge
// retained-store payload into Go once, to hash it.
func TestHugePayloadsCopiedInSQLite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in, msgs := bigInput(t, dir)
	other := filepath.Join(dir, "other.db")
	copyFile(t, in, other)
	files := dirNames(t, dir)
	defer func() {
		if after := dirNames(t, dir); !slices.Equal(after, files) {
			t.Errorf("files beside the inputs: %v, before %v", after, files)
		}
	}()
	carried := []Message{msgs[0], msgs[1], msgs[3], msgs[4]}
	carried[1].PacketID = 0 // a carried retained message has none
	cases := []struct {
		name string
		run  func(out string) error
		want []Message
		// hashed counts the huge retained-store payloads merge reads
		// into Go, one at a time, to leave out the copies every input got.
		hashed uint64
	}{
		{"cut", func(out string) error {
			ic, oc := openPair(t, in, out)
			_, err := Cut(ctx, ic, oc, CutOptions{})
			return err
		}, msgs, 0},
		{"cut from 1.5s", func(out string) error {
			ic, oc := openPair(t, in, out)
			_, err := Cut(ctx, ic, oc, CutOptions{Select: Query{FromOffset: ptr(int64(15e8))}})
			return err
		}, carried, 0},
		{"merge", func(out string) error {
			ic, oc := openPair(t, in, out)
			c2 := openRead(t, other)
			_, err := Merge(ctx, []*Capture{ic, c2}, oc, MergeOptions{})
			return err
		}, []Message{msgs[0], msgs[1], msgs[2], msgs[2], msgs[3], msgs[3], msgs[4], msgs[4]}, 2},
		{"recover", func(out string) error {
			_, err := Recover(ctx, in, out)
			return err
		}, msgs, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.db")
			var err error
			alloc := goAllocs(func() { err = tc.run(out) })
			if err != nil {
				t.Fatal(err)
			}
			if alloc > tc.hashed*bigTestPayload+bigTestPayload/2 {
				t.Errorf("allocated %d MiB in Go for a %d MiB payload: it went through Go", alloc>>20, bigTestPayload>>20)
			}
			_, got, _ := readAll(t, out)
			sameMessages(t, got, tc.want)
			mustCheck(t, out)
		})
	}
}

// TestHugePayloadsCompressed: a huge payload stored compressed in the
// input is copied decompressed (what it was published as), and an output
// that compresses stores a huge payload as it is; both read back exactly.
func TestHugePayloadsCompressed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	msgs := zipFixture()
	text := bytes.Repeat([]byte(`{"frame":"0123456789abcdef"}`), 3<<20/28)
	last := msgs[len(msgs)-1]
	msgs = append(msgs, Message{TimeNS: last.TimeNS + 1, OffsetNS: last.OffsetNS + 1, Topic: "big/zip", Payload: text})
	in := filepath.Join(dir, "zip.db")
	writeZip(t, in, msgs, true)
	if n := rawInt(t, in, fmt.Sprintf("SELECT count(*) FROM messages WHERE payload_size > %d AND zstd_dict IS NOT NULL", bigPayload)); n != 1 {
		t.Fatalf("%d huge payloads stored compressed, want 1", n)
	}
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			cut := filepath.Join(t.TempDir(), "cut.db")
			ic, oc := openPair(t, in, cut)
			oc.SetCompression(compress)
			if _, err := Cut(ctx, ic, oc, CutOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := oc.Close(); err != nil {
				t.Fatal(err)
			}
			rec := filepath.Join(t.TempDir(), "rec.db")
			if _, err := Recover(ctx, in, rec); err != nil {
				t.Fatal(err)
			}
			for _, out := range []string{cut, rec} {
				_, got, _ := readAll(t, out)
				samePayloads(t, got, msgs)
				mustCheck(t, out)
			}
		})
	}
}

// TestHugePayloadDamaged: a huge payload whose overflow pages are damaged
// is left out by recover (counted, with a note) while the rest is copied,
// and makes cut fail with ErrCorrupt naming the input rather than write a
// shorter copy.
func TestHugePayloadDamaged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	in := writeSessions(t, filepath.Join(dir, "in.db"), testSession{
		info: SessionInfo{Source: "subscriber", StartedNS: t0},
		msgs: []Message{
			{OffsetNS: 0, Topic: "a", Payload: []byte("1")},
			{OffsetNS: 1e9, Topic: "big", Payload: big},
			{OffsetNS: 2e9, Topic: "a", Payload: []byte("2")},
		}})
	// The payload's 64 overflow pages fill the middle of the file.
	corruptPage(t, in, pageCount(t, in)/2, 0xff)

	rep, err := Recover(ctx, in, filepath.Join(dir, "rec.db"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Messages != 2 || rep.LostMessages != 1 || !strings.Contains(strings.Join(rep.Notes, "\n"), "1 messages left out: their payload could not be read") {
		t.Fatalf("recover copied %d, lost %d; notes %q", rep.Messages, rep.LostMessages, rep.Notes)
	}
	_, got, _ := readAll(t, filepath.Join(dir, "rec.db"))
	if describeMsgs(got) != "s1 0.0s a=1\ns1 2.0s a=2" {
		t.Fatalf("recovered:\n%s", describeMsgs(got))
	}
	mustCheck(t, filepath.Join(dir, "rec.db"))

	ic, oc := openPair(t, in, filepath.Join(dir, "cut.db"))
	_, err = Cut(ctx, ic, oc, CutOptions{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), in) {
		t.Fatalf("cut of a damaged huge payload: %v, want ErrCorrupt naming %s", err, in)
	}
}

// TestHugePayloadFromLiveCapture: cut copies a huge payload that is still
// only in the write-ahead log of a capture being recorded.
func TestHugePayloadFromLiveCapture(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in := filepath.Join(dir, "live.db")
	live, err := OpenWrite(in)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	s, err := live.BeginSession(ctx, SessionInfo{Source: "subscriber", StartedNS: t0})
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xa5, 0x5a, 0}, bigPayload)
	msgs := []Message{{TimeNS: t0, Topic: "big", Payload: big}, {TimeNS: t0 + 1, OffsetNS: 1, Topic: "a", Payload: []byte("1")}}
	if err := s.Write(ctx, msgs, nil, t0+1); err != nil {
		t.Fatal(err)
	}
	if !walHasData(in) {
		t.Fatal("the test needs the payload in the write-ahead log")
	}
	out := filepath.Join(dir, "cut.db")
	ic, oc := openPair(t, in, out)
	if _, err := Cut(ctx, ic, oc, CutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := oc.Close(); err != nil {
		t.Fatal(err)
	}
	_, got, _ := readAll(t, out)
	samePayloads(t, got, msgs)
}
