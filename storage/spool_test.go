package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/mqtape/mqtape/mqtt"
)

// spoolSession begins a session in a new capture and opens its spool.
func spoolSession(t *testing.T) (*Capture, *Session, *Spool) {
	t.Helper()
	c, err := OpenWrite(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := c.BeginSession(context.Background(), SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "c", Protocol: 5, Version: "t", Host: "h",
		StartedNS: time.Now().UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := c.OpenSpool(s)
	if err != nil {
		t.Fatal(err)
	}
	return c, s, sp
}

// crashedSpool spools msgs and leaves the files as a killed recorder does.
func crashedSpool(t *testing.T, msgs []Message) (*Capture, *Session) {
	t.Helper()
	c, s, sp := spoolSession(t)
	if err := sp.Append(msgs); err != nil {
		t.Fatal(err)
	}
	sp.Release()
	s.closeStmts()
	return c, s
}

func spoolMsgs(from, to, size int) []Message {
	var out []Message
	for i := from; i < to; i++ {
		m := Message{TimeNS: 1_000_000 + int64(i), OffsetNS: int64(i), Topic: fmt.Sprintf("t/%d", i%3), QoS: byte(1 + i%2),
			Retain: i%5 == 0, FromStore: i%10 == 0, Dup: i%7 == 0, PacketID: uint16(i + 1), Payload: bytes.Repeat([]byte{byte(i)}, size)}
		if i%4 == 0 {
			pf := byte(1)
			m.Props = &mqtt.Properties{ContentType: "text/plain", PayloadFormat: &pf, CorrelationData: []byte{0, 1, 2},
				UserProperties: []mqtt.UserProperty{{Key: "k", Value: "v"}, {Key: "k", Value: "v2"}}}
		}
		out = append(out, m)
	}
	return out
}

// TestSpoolRecoversWhatWasNotCommitted: a recorder killed after spooling
// 100 messages and committing 60 of them; the next recording's
// RecoverSpool adds the other 40 to the same session, in order, with every
// field, records a spool_recovered event, deletes the spool, and a second
// recovery finds nothing.
func TestSpoolRecoversWhatWasNotCommitted(t *testing.T) {
	ctx := context.Background()
	c, s, sp := spoolSession(t)
	msgs := spoolMsgs(0, 100, 50)
	if err := sp.Append(msgs[:30]); err != nil {
		t.Fatal(err)
	}
	if err := sp.Append(msgs[30:]); err != nil {
		t.Fatal(err)
	}
	committed := append([]Message(nil), msgs[:60]...)
	if err := s.Write(ctx, committed, nil, 1); err != nil {
		t.Fatal(err)
	}
	sp.Release() // the process dies: its files stay, unlocked
	s.closeStmts()

	rep, err := c.RecoverSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 40 || rep.Committed != 60 || rep.Files != 1 || len(rep.Lost)+len(rep.Busy)+len(rep.Orphans) != 0 {
		t.Fatalf("report %+v, want 40 recovered, 60 committed, 1 file", rep)
	}
	got, err := c.Page(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 100 {
		t.Fatalf("%d messages after recovery, want 100", len(got))
	}
	for i, m := range got {
		w := msgs[i]
		if m.Session != s.ID() || m.TimeNS != w.TimeNS || m.OffsetNS != w.OffsetNS || m.Topic != w.Topic || m.QoS != w.QoS ||
			m.Retain != w.Retain || m.FromStore != w.FromStore || m.Dup != w.Dup || m.PacketID != w.PacketID || !bytes.Equal(m.Payload, w.Payload) ||
			(m.Props == nil) != (w.Props == nil) || m.Props != nil && (m.Props.ContentType != w.Props.ContentType || len(m.Props.UserProperties) != 2 || !bytes.Equal(m.Props.CorrelationData, w.Props.CorrelationData)) {
			t.Fatalf("message %d = %+v, want %+v", i, m, w)
		}
	}
	events, _ := c.Events(ctx, s.ID())
	found := false
	for _, e := range events {
		found = found || e.Kind == EventSpoolRecovered && e.TimeNS == msgs[99].TimeNS
	}
	if !found {
		t.Errorf("no spool_recovered event at the last message's time: %+v", events)
	}
	sessions, _ := c.Sessions(ctx)
	if sessions[0].LastNS != msgs[99].TimeNS || sessions[0].Closed() {
		t.Errorf("session after recovery: last_ns %d (want the last message's %d), closed %v", sessions[0].LastNS, msgs[99].TimeNS, sessions[0].Closed())
	}
	if files, _ := SpoolFiles(c.Path()); len(files) != 0 {
		t.Errorf("spool files after recovery: %v", files)
	}
	if rep, err := c.RecoverSpool(ctx); err != nil || rep.Recovered != 0 || rep.Files != 0 {
		t.Errorf("second recovery: %+v %v", rep, err)
	}
}

// TestSpoolTornTail: a record cut short (a power loss can leave one) ends
// its file: the records before it are recovered and the loss is reported.
func TestSpoolTornTail(t *testing.T) {
	ctx := context.Background()
	c, _ := crashedSpool(t, spoolMsgs(0, 10, 20))
	files, _ := SpoolFiles(c.Path())
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := appendSpoolRecord(nil, &spoolMsgs(10, 11, 20)[0])
	f.Write(rec[:len(rec)-5])
	f.Close()
	rep, err := c.RecoverSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 10 || len(rep.Lost) != 1 {
		t.Fatalf("report %+v, want 10 recovered and one loss", rep)
	}
	if n, _ := c.Count(ctx, Query{}); n != 10 {
		t.Errorf("%d messages, want 10", n)
	}
}

// TestSpoolOfALiveRecorderIsLeftAlone: a spool whose recorder still runs
// (its file is locked) is not taken by another recording into the same
// capture.
func TestSpoolOfALiveRecorderIsLeftAlone(t *testing.T) {
	ctx := context.Background()
	c, _, sp := spoolSession(t)
	defer sp.Close()
	if err := sp.Append(spoolMsgs(0, 5, 10)); err != nil {
		t.Fatal(err)
	}
	other, err := OpenWrite(c.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	rep, err := other.RecoverSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recovered != 0 || len(rep.Busy) != 1 {
		t.Fatalf("report %+v, want the live spool left alone", rep)
	}
	if files, _ := SpoolFiles(c.Path()); len(files) != 1 {
		t.Errorf("spool files: %v", files)
	}
}

// TestSpoolRotates: the spool starts a new file every spoolSegmentBytes and
// deletes full files once their messages are committed.
func TestSpoolRotates(t *testing.T) {
	c, _, sp := spoolSession(t)
	msgs := spoolMsgs(0, 40, 512<<10) // 20 MiB
	for i := range msgs {
		if err := sp.Append(msgs[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := SpoolFiles(c.Path())
	if len(files) != 3 {
		t.Fatalf("%d spool files for 20 MiB, want 3: %v", len(files), files)
	}
	sp.Committed(msgs[20].TimeNS) // the first file (16 messages) is committed, the second not
	if files, _ := SpoolFiles(c.Path()); len(files) != 2 {
		t.Errorf("after a commit: %v, want the first file deleted", files)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if files, _ := SpoolFiles(c.Path()); len(files) != 0 {
		t.Errorf("after Close: %v", files)
	}
}

// TestSpoolOrphans: a file named like a spool but not one, and a spool of a
// session the capture does not have, are reported and left alone.
func TestSpoolOrphans(t *testing.T) {
	ctx := context.Background()
	c, _, sp := spoolSession(t)
	sp.Close()
	junk := c.Path() + "-spool-1-000009"
	os.WriteFile(junk, []byte("not a spool"), 0o600)
	stranger := c.Path() + "-spool-77-000001"
	var hdr bytes.Buffer
	hdr.WriteString(spoolMagic)
	hdr.Write([]byte{0, 0, 0, 0, 0, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0, 1})
	os.WriteFile(stranger, hdr.Bytes(), 0o600)
	stub := c.Path() + "-spool-1-000010" // a recorder killed while creating it
	os.WriteFile(stub, []byte(spoolMagic[:5]), 0o600)
	rep, err := c.RecoverSpool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Orphans) != 2 || rep.Recovered != 0 || rep.Files != 1 {
		t.Fatalf("report %+v, want two orphans and the stub deleted", rep)
	}
	if _, err := os.Stat(stub); err == nil {
		t.Error("the stub spool file was not deleted")
	}
	for _, f := range []string{junk, stranger} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestSpoolOfAReplacedCapture: a killed recorder's spool stays beside a
// capture that the user then deletes; a new capture at the same path gets
// session 1 again. The stale spool is not taken for the new session (its
// start differs), and the new session's spool does not collide with it.
func TestSpoolOfAReplacedCapture(t *testing.T) {
	ctx := context.Background()
	c, _ := crashedSpool(t, spoolMsgs(0, 5, 10))
	path := c.Path()
	c.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	c2, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	rep, err := c2.RecoverSpool(ctx)
	if err != nil || rep.Recovered != 0 || len(rep.Orphans) != 1 {
		t.Fatalf("recovery into the new capture: %+v %v; want the stale spool left alone as an orphan", rep, err)
	}
	s2, err := c2.BeginSession(ctx, SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "c", Protocol: 4, Version: "t", Host: "h",
		StartedNS: time.Now().UnixNano() + 1})
	if err != nil {
		t.Fatal(err)
	}
	sp2, err := c2.OpenSpool(s2)
	if err != nil {
		t.Fatalf("a stale spool file blocks the new session's spool: %v", err)
	}
	defer sp2.Close()
	if err := sp2.Append(spoolMsgs(100, 101, 10)); err != nil {
		t.Fatal(err)
	}
	if files, _ := SpoolFiles(path); len(files) != 2 {
		t.Errorf("spool files %v, want the stale one and the new one", files)
	}
}

// FuzzSpoolRecord: decoding never panics, and what encodes decodes back.
func FuzzSpoolRecord(f *testing.F) {
	for _, m := range spoolMsgs(0, 5, 3) {
		b, _ := appendSpoolRecord(nil, &m)
		f.Add(b[8:])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := parseSpoolRecord(body)
		if err != nil {
			return
		}
		b, err := appendSpoolRecord(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := parseSpoolRecord(b[8:])
		if err != nil || m2.Topic != m.Topic || !bytes.Equal(m2.Payload, m.Payload) || m2.TimeNS != m.TimeNS {
			t.Fatalf("round trip: %+v → %+v (%v)", m, m2, err)
		}
	})
}

// TestCheckNotesSpoolFiles: check reports a killed recorder's spool files
// as a note (not damage).
func TestCheckNotesSpoolFiles(t *testing.T) {
	c, _ := crashedSpool(t, spoolMsgs(0, 3, 10))
	rep, err := Check(context.Background(), c.Path(), CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, n := range rep.Notes {
		found = found || n.Check == "spool"
	}
	if !found || !rep.OK() {
		t.Errorf("check: notes %+v, problems %+v; want a spool note and no problem", rep.Notes, rep.Problems)
	}
}

// TestBeginSessionRecoversSpoolFirst: any new session (serve, import, not
// only record) first adds a killed recorder's spool to its session, so
// that every session's seq range holds only its own messages.
func TestBeginSessionRecoversSpoolFirst(t *testing.T) {
	ctx := context.Background()
	c, s := crashedSpool(t, spoolMsgs(0, 10, 10))
	s2, err := c.BeginSession(ctx, SessionInfo{Source: "broker", Broker: "mqtt://x", ClientID: "serve", Protocol: 4, Version: "t", Host: "h", StartedNS: time.Now().UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Write(ctx, spoolMsgs(50, 51, 10), nil, 1); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Page(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 11 || msgs[9].Session != s.ID() || msgs[10].Session != s2.ID() {
		t.Fatalf("%d messages; want the 10 recovered ones of session %d before session %d's", len(msgs), s.ID(), s2.ID())
	}
}

// TestSpoolHostileLength: a record claiming more bytes than the file has
// ends the file as damaged, without allocating what it claims.
func TestSpoolHostileLength(t *testing.T) {
	c, _ := crashedSpool(t, spoolMsgs(0, 2, 10))
	files, _ := SpoolFiles(c.Path())
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0x0f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2, 3})
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rep, err := c.RecoverSpool(context.Background())
	runtime.ReadMemStats(&after)
	if err != nil || rep.Recovered != 2 || len(rep.Lost) != 1 {
		t.Fatalf("report %+v %v, want 2 recovered and the bad record reported", rep, err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Errorf("recovery allocated %d MiB for a record claiming 256 MiB in a small file", grew>>20)
	}
}
