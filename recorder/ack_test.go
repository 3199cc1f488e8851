package recorder

import (
	"context"
	"path/filepath"
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
	wk, err := startWorkers(ctx, r.pipeline, c, sess, nil, nil)
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
