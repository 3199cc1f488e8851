package recorder

import (
	"runtime"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// The tests here run in a testing/synctest bubble: time only moves when
// every goroutine is durably blocked, and then jumps to the next timer. A
// spooler that acknowledges without waiting takes no time at all; each
// pause it waits for shows up as quietGap of elapsed time. The spool and
// the capture are real files (their I/O does not block durably).

// offerQoS1 queues message i as a broker's QoS 1 publish acknowledged by ack.
func offerQoS1(p *pipeline, i int, ack func()) {
	ts, off := p.stamp()
	p.offer(item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: "t", QoS: 1, PacketID: uint16(i%65535 + 1),
		Payload: make([]byte, 100)}, ack: ack})
}

// TestBrokerWindowIsLearnt: a broker with an in-flight window of 20
// (mosquitto's default) stops sending while 20 acknowledgements are
// outstanding. The spooler learns the window after at most a few quietGap
// pauses; from then on every window is acknowledged as soon as it is
// complete, without a pause. The writer commits nothing meanwhile (its
// flush interval is an hour and no batch fills up): acknowledgements come
// from the spool, not from commits.
func TestBrokerWindowIsLearnt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, c, stop := startPipeline(t, Config{FlushInterval: time.Hour, BatchSize: 4096})
		const n, window = 3000, 20
		credits := make(chan struct{}, window)
		ackedAt := make([]time.Time, 0, n) // appended by the spooler only
		start := time.Now()
		for i := range n {
			select {
			case credits <- struct{}{}: // blocks while the window is full
			case <-time.After(time.Minute):
				t.Fatalf("the broker's window stayed full after %d messages", i)
			}
			offerQoS1(p, i, func() { ackedAt = append(ackedAt, time.Now()); <-credits })
		}
		synctest.Wait() // the spooler holds at most the last window
		if s := p.stored.Load(); s != 0 {
			t.Errorf("%d messages committed before the stop; the test wants acknowledgements without commits", s)
		}
		if files, _ := storage.SpoolFiles(c.Path()); len(files) != 1 {
			t.Errorf("spool files while recording: %v, want one", files)
		}
		learnt := p.spoolTarget.Load()
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if len(ackedAt) != n {
			t.Fatalf("acknowledged %d of %d", len(ackedAt), n)
		}
		// Time moved only while the spooler waited for a pause.
		elapsed := ackedAt[n-1].Sub(start)
		pauses := int(elapsed / quietGap)
		lastPause := n - 1 // the first message acknowledged at the final instant
		for i := n - 1; i > 0 && ackedAt[i-1].Equal(ackedAt[n-1]); i-- {
			lastPause = i - 1
		}
		t.Logf("%d pauses (%v); the last before ack %d; target %d", pauses, elapsed, lastPause, learnt)
		if elapsed%quietGap != 0 || pauses > 3 {
			t.Errorf("acknowledging took %v: %d pauses of quietGap (%v), want at most 3", elapsed, pauses, quietGap)
		}
		if lastPause > 10*window {
			t.Errorf("the spooler still paused before acknowledgement %d, want no pause after the first 10 windows", lastPause)
		}
		if learnt != window {
			t.Errorf("learnt target %d, want the broker's window %d", learnt, window)
		}
		if p.stored.Load() != n {
			t.Errorf("stored %d of %d at the stop", p.stored.Load(), n)
		}
		if files, _ := storage.SpoolFiles(c.Path()); len(files) != 0 {
			t.Errorf("spool files left after a clean stop: %v", files)
		}
	})
}

// TestTrickleIsAcknowledgedAfterQuietGap: after a window of 20 was learnt,
// a single message followed by a pause longer than quietGap is
// acknowledged quietGap after it arrived (the spooler takes the pause for
// a window of one), not at the next commit (FlushInterval); the messages
// after it are acknowledged at once.
func TestTrickleIsAcknowledgedAfterQuietGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _, stop := startPipeline(t, Config{FlushInterval: time.Second})
		p.spoolTarget.Store(20) // as TestBrokerWindowIsLearnt leaves it
		for i := range 5 {
			acked := make(chan time.Time, 1)
			sent := time.Now()
			offerQoS1(p, i, func() { acked <- time.Now() })
			time.Sleep(5 * quietGap)
			var delay time.Duration
			select {
			case at := <-acked:
				delay = at.Sub(sent)
			default:
				t.Fatalf("message %d not acknowledged %v after it arrived", i, 5*quietGap)
			}
			want := time.Duration(0)
			if i == 0 {
				want = quietGap
			}
			if delay != want {
				t.Errorf("message %d acknowledged after %v, want %v", i, delay, want)
			}
		}
		if s := p.stored.Load(); s != 0 {
			t.Errorf("%d messages committed before FlushInterval", s)
		}
		if tg := p.spoolTarget.Load(); tg != 1 {
			t.Errorf("target %d after a trickle, want 1", tg)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestNoAckWaitsLongerThanMaxHold: with a large target (learnt from a
// stream) and messages arriving every half quietGap, so that the stream
// never pauses and never reaches the target, no message waits more than
// maxHold + quietGap for its acknowledgement.
func TestNoAckWaitsLongerThanMaxHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _, stop := startPipeline(t, Config{FlushInterval: time.Hour})
		p.spoolTarget.Store(maxTarget)
		const n = 400
		var worst atomic.Int64
		var acked atomic.Int64
		for i := range n {
			sent := time.Now()
			offerQoS1(p, i, func() {
				acked.Add(1)
				if d := int64(time.Since(sent)); d > worst.Load() {
					worst.Store(d) // acks run on the spooler only
				}
			})
			time.Sleep(quietGap / 2)
		}
		time.Sleep(maxHold + quietGap)
		if a := acked.Load(); a != n {
			t.Errorf("acknowledged %d of %d within maxHold+quietGap of the last", a, n)
		}
		w := time.Duration(worst.Load())
		t.Logf("longest wait %v; target %d", w, p.spoolTarget.Load())
		if w > maxHold+quietGap {
			t.Errorf("a message waited %v for its acknowledgement, want at most %v", w, maxHold+quietGap)
		}
		if w <= quietGap {
			t.Errorf("longest wait %v: the test wants messages held beyond quietGap", w)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestWriterCommitsOnTheTick: messages short of a batch (QoS 0: nothing
// to acknowledge) are committed at the FlushInterval tick, not before.
func TestWriterCommitsOnTheTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const flush = 100 * time.Millisecond
		p, _, stop := startPipeline(t, Config{FlushInterval: flush, BatchSize: 100})
		queue := func(k int) {
			for range k {
				ts, off := p.stamp()
				p.offer(item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: "q", Payload: []byte("x")}})
			}
		}
		expect := func(when string, want int64) {
			t.Helper()
			synctest.Wait()
			if s := p.stored.Load(); s != want {
				t.Errorf("%s: %d committed, want %d", when, s, want)
			}
		}
		queue(10) // the writer's ticker started with the session, now
		expect("at once", 0)
		time.Sleep(flush - time.Nanosecond)
		expect("just before the first tick", 0)
		time.Sleep(time.Nanosecond)
		expect("at the first tick", 10)
		time.Sleep(flush / 2)
		queue(5)
		expect("between ticks", 10)
		time.Sleep(flush / 2)
		expect("at the second tick", 15)
		queue(100) // a full batch does not wait for the tick
		expect("after a full batch", 115)
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSpoolGroupsGrowOnAStream: a broker that does not wait for
// acknowledgements (20,000 messages as fast as they can be queued) gets
// them in large groups — one spool write and one acknowledgement write per
// group, not per message, which is what keeps QoS 1 recording as cheap as
// it was before the spool. In the bubble no time passes while the stream
// runs, so a stalled test goroutine cannot pass for a pause.
func TestSpoolGroupsGrowOnAStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, _, stop := startPipeline(t, Config{})
		const n = 20000
		var acked atomic.Int64
		for i := range n {
			offerQoS1(p, i, func() { acked.Add(1) })
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
	})
}
