package recorder

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// testQuietGap stands for the pipeline's 1 ms quietGap in these tests: a
// test goroutine descheduled for a millisecond on a busy machine (-race,
// packages tested in parallel) must not look like a broker waiting.
const testQuietGap = 30 * time.Millisecond

// runWindowed feeds n QoS 1 messages into a pipeline the way a broker with
// an in-flight window of window messages does (0: no window), pausing
// pause(i) after message i, and returns the pipeline after its writer has
// stored them all, with each message's time from queued to acknowledged.
func runWindowed(t *testing.T, cfg Config, n, window int, pause func(i int) time.Duration) (*pipeline, []time.Duration) {
	t.Helper()
	ctx := context.Background()
	c, err := storage.OpenWrite(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfg.defaults()
	p := newPipeline(cfg)
	p.quietGap = testQuietGap
	p.start = time.Now()
	sess, err := p.begin(ctx, c, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://x", ClientID: "t", Protocol: 4, Version: "t", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	p.accepting.Store(true)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.writer(wctx, sess) }()

	credits := make(chan struct{}, max(window, 1))
	var acked atomic.Int64
	latency := make([]time.Duration, n) // each written by its ack, read after all acked
	payload := make([]byte, 100)
	for i := range n {
		if window > 0 {
			credits <- struct{}{} // blocks while the window is full
		}
		ts, off := p.stamp()
		queued := time.Now()
		p.offer(item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: "w", QoS: 1, PacketID: uint16(i%65535 + 1), Payload: payload},
			ack: func() {
				latency[i] = time.Since(queued)
				acked.Add(1)
				if window > 0 {
					<-credits
				}
			}})
		if d := pause(i); d > 0 {
			time.Sleep(d)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for acked.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	p.stopIntake()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.end(ctx, sess, "test", nil); err != nil {
		t.Fatal(err)
	}
	if acked.Load() != int64(n) || p.stored.Load() != int64(n) {
		t.Fatalf("acked %d, stored %d of %d", acked.Load(), p.stored.Load(), n)
	}
	return p, latency
}

func noPause(int) time.Duration { return 0 }

// TestGroupCommitLearnsTheBrokersWindow: with a broker that stops at 20
// unacknowledged messages, the writer learns the window from the first
// pauses and then commits each window as soon as it is complete, without
// waiting for a pause every time (which would cost quietGap per window).
func TestGroupCommitLearnsTheBrokersWindow(t *testing.T) {
	p, _ := runWindowed(t, Config{}, 4000, 20, noPause)
	// Committing at every pause would make 200 pause commits here. A few
	// more than the first come from this test goroutine being descheduled
	// for longer than testQuietGap on a loaded machine.
	if p.pauseCommits > 20 {
		t.Errorf("%d of %d commits waited for a pause (ack target now %d); want the window learnt after a few",
			p.pauseCommits, p.commits, p.ackTarget.Load())
	}
}

// TestGroupCommitGrowsOnAStream: a broker that never waits for
// acknowledgements, sending 20 messages about every millisecond, gets them
// in large groups, not a commit for whatever arrived during the previous
// one. (A stream with pauses longer than quietGap looks like a broker
// waiting for its window to be acknowledged, and is committed at every
// pause: that costs CPU, never throughput.)
func TestGroupCommitGrowsOnAStream(t *testing.T) {
	pace := func(i int) time.Duration {
		if i%20 == 19 {
			return 100 * time.Microsecond // about a millisecond: see defaultQuietGap
		}
		return 0
	}
	p, _ := runWindowed(t, Config{}, 20000, 0, pace)
	if p.commits > 100 {
		t.Errorf("%d commits for 20000 messages (ack target %d); want large groups", p.commits, p.ackTarget.Load())
	}
}

// TestGroupCommitTrickle: after a stream made the groups large, messages
// arriving one by one, further apart than quietGap, are each committed and
// acknowledged after a pause, not after the flush interval, and the
// target comes back down to one.
func TestGroupCommitTrickle(t *testing.T) {
	const stream, trickle = 5000, 8
	pause := func(i int) time.Duration {
		if i >= stream-1 {
			return 3 * testQuietGap
		}
		return 0
	}
	p, latency := runWindowed(t, Config{FlushInterval: 5 * time.Second}, stream+trickle, 0, pause)
	var worst time.Duration
	for _, d := range latency[stream:] {
		worst = max(worst, d)
	}
	if worst > 2*time.Second {
		t.Errorf("a message of the trickle waited %v for its acknowledgement (flush interval 5s, quiet gap %v)", worst, testQuietGap)
	}
	if p.ackTarget.Load() != 1 {
		t.Errorf("ack target %d after a trickle, want 1", p.ackTarget.Load())
	}
}
