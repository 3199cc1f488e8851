package recorder

import (
	"context"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// startRecorder begins a session of a Recorder on a new capture in a
// temporary directory and starts its writer and spooler, the way Run does
// (no broker: tests offer messages themselves).
func startRecorder(t *testing.T, cfg Config) (*Recorder, *workers, *storage.Session) {
	t.Helper()
	ctx := context.Background()
	c, err := storage.OpenWrite(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cfg.defaults()
	r := &Recorder{pipeline: newPipeline(cfg), capture: c}
	r.start = time.Now()
	sess, err := r.begin(ctx, c, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "t", Protocol: 4, Version: "t", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	r.accepting.Store(true)
	wk, err := r.startWorkers(ctx, sess, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, wk, sess
}

// startPipeline is startRecorder with a function that stops intake and the
// workers and ends the session.
func startPipeline(t *testing.T, cfg Config) (p *pipeline, c *storage.Capture, stop func() error) {
	t.Helper()
	r, wk, sess := startRecorder(t, cfg)
	return r.pipeline, r.capture, func() error {
		r.stopIntake()
		err := wk.stop()
		if err2 := r.end(context.Background(), sess, "test", err); err == nil {
			err = err2
		}
		return err
	}
}

// TestAcksDoNotWaitForCommits: a broker with an in-flight window of 20
// (mosquitto's default) gets every acknowledgement from the spool, while
// the writer commits nothing (its flush interval is an hour and no batch
// fills up). Before the spool, the recorder acknowledged only after each
// commit, and such a broker waited for every commit.
func TestAcksDoNotWaitForCommits(t *testing.T) {
	p, c, stop := startPipeline(t, Config{FlushInterval: time.Hour, BatchSize: 4096})
	const n, window = 3000, 20
	credits := make(chan struct{}, window)
	var acked atomic.Int64
	payload := make([]byte, 100)
	for i := range n {
		select {
		case credits <- struct{}{}: // blocks while the window is full
		case <-time.After(10 * time.Second):
			t.Fatalf("the broker's window stayed full after %d messages (%d acknowledged)", i, acked.Load())
		}
		ts, off := p.stamp()
		p.offer(item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: "w", QoS: 1, PacketID: uint16(i%65535 + 1), Payload: payload},
			ack: func() { acked.Add(1); <-credits }})
	}
	for i := 0; acked.Load() < n; i++ {
		if i > 10000 {
			t.Fatalf("%d of %d acknowledged", acked.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
	if p.stored.Load() != 0 {
		t.Errorf("%d messages committed before the stop; the test wants acknowledgements without commits", p.stored.Load())
	}
	files, _ := storage.SpoolFiles(c.Path())
	if len(files) != 1 {
		t.Errorf("spool files while recording: %v, want one", files)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if p.stored.Load() != n {
		t.Errorf("stored %d of %d at the stop", p.stored.Load(), n)
	}
	if files, _ := storage.SpoolFiles(c.Path()); len(files) != 0 {
		t.Errorf("spool files left after a clean stop: %v", files)
	}
}

// TestSpoolGroupsGrowOnAStream: a broker that does not wait for
// acknowledgements (20,000 messages as fast as they can be queued) gets
// them in large groups — one spool write and one acknowledgement write per
// group, not per message, which is what keeps QoS 1 recording as cheap as
// it was before the spool.
func TestSpoolGroupsGrowOnAStream(t *testing.T) {
	p, _, stop := startPipeline(t, Config{})
	const n = 20000
	var acked atomic.Int64
	payload := make([]byte, 64)
	for i := range n {
		ts, off := p.stamp()
		p.offer(item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: "s", QoS: 1, PacketID: uint16(i%65535 + 1), Payload: payload},
			ack: func() { acked.Add(1) }})
		runtime.Gosched() // like a network goroutine between packets: the spooler gets to run
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if acked.Load() != n {
		t.Fatalf("acknowledged %d of %d", acked.Load(), n)
	}
	if w := p.spoolWrites.Load(); w > n/20 {
		t.Errorf("%d spool writes for %d messages (target now %d); want groups of 20 or more on average", w, n, p.spoolTarget.Load())
	}
}

// TestAcksInArrivalOrder: messages that are acknowledged without being
// stored (a redelivery already in the capture) are acknowledged in turn,
// after the messages that arrived before them (MQTT 4.6).
func TestAcksInArrivalOrder(t *testing.T) {
	p, _, stop := startPipeline(t, Config{})
	var order []int
	done := make(chan struct{})
	const n = 500
	for i := range n {
		ack := func() {
			order = append(order, i) // acks run on the spooler goroutine only
			if len(order) == n {
				close(done)
			}
		}
		if i%7 == 3 {
			p.addPending(item{ack: ack, ackOnly: true})
			continue
		}
		ts, off := p.stamp()
		p.offer(item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: "o", QoS: 1, Payload: []byte{byte(i)}}, ack: ack})
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not every message was acknowledged")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for i, v := range order {
		if v != i {
			t.Fatalf("acknowledgement %d was for message %d", i, v)
		}
	}
}

// TestSpoolFailureStopsAcks: when the spool cannot be written (here it is
// closed under the spooler; a full disk does the same), nothing more is
// acknowledged and the recording stops with an error. The writer still
// commits what was queued, and the spool files are deleted.
func TestSpoolFailureStopsAcks(t *testing.T) {
	r, wk, _ := startRecorder(t, Config{})
	c := r.capture
	wk.spool.Release() // every later Append fails
	var acked atomic.Int64
	ts, off := r.stamp()
	r.offer(item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: "f", QoS: 1, Payload: []byte("x")}, ack: func() { acked.Add(1) }})
	select {
	case <-wk.failed:
	case <-time.After(10 * time.Second):
		t.Fatal("a failing spool did not stop the recording")
	}
	r.stopIntake()
	if err := wk.stop(); err == nil {
		t.Error("stop after a spool failure returned no error")
	}
	if acked.Load() != 0 {
		t.Errorf("%d messages acknowledged although the spool failed", acked.Load())
	}
	if r.stored.Load() != 1 {
		t.Errorf("stored %d messages, want the one queued", r.stored.Load())
	}
	if files, _ := storage.SpoolFiles(c.Path()); len(files) != 0 {
		t.Errorf("spool files left although everything was committed: %v", files)
	}
}
