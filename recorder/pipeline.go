package recorder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// ErrWriter wraps a failure to write the capture.
var ErrWriter = errors.New("write capture")

// pipeline is the part shared by the subscriber Recorder and the broker
// Tap: a bounded queue filled by network goroutines without blocking them
// for long, and one writer goroutine that commits batches to a session.
//
// Messages the broker waits to have acknowledged (a Recorder's QoS 1/2)
// also go to the spooler, which appends them to the session's spool (one
// write(2) for all that arrived since its last write) and then
// acknowledges them. The broker's in-flight window so turns over as fast
// as it would for mosquitto_sub, whatever a commit costs: holding each
// acknowledgement until its commit made mosquitto (20 in flight, 1000
// queued per client by default) queue and then drop messages whenever a
// commit stalled. A killed recorder loses no acknowledged message: the
// next recording into the capture recovers the spool (see
// storage.Capture.RecoverSpool).
type pipeline struct {
	cfg   Config
	clock clock // times the spooler's groups and the writer's tick
	start time.Time
	queue chan item
	// ready wakes the writer before its next tick: a full batch, or the
	// queue's byte limit reached (then pressed is set too).
	ready   chan struct{}
	pressed atomic.Bool
	// commits counts transactions (owned by the writer; read by tests
	// after it returned).
	commits int

	// pending holds messages waiting for the spooler, in arrival order;
	// spoolWake tells it there are some.
	pendMu    sync.Mutex
	pending   []item
	spoolWake chan struct{}
	// spoolTarget is how many pending messages wake the spooler (it adapts
	// the target; see spooler).
	spoolTarget atomic.Int64
	spoolWrites atomic.Int64 // groups written (for tests)
	// handed counts the items ever given to the spooler, acked those it
	// has acknowledged (a Tap's broker holds its acknowledgements until
	// acked passes what was handed before them).
	handed, acked atomic.Uint64

	queued    atomic.Int64 // payload bytes in the queue
	lastTS    atomic.Int64 // newest stamp handed out (stamps strictly increase)
	accepting atomic.Bool
	handling  sync.RWMutex // held (read) while queueing; stop takes it to end intake

	received, stored, bytes, topics, dropped atomic.Int64

	mu       sync.Mutex
	events   []storage.Event
	countHit chan struct{}

	// partBase is the offset (since start) at which the part being written
	// began: messages are stamped relative to it (0 without --split);
	// seamAt the offset of the seam where it took over.
	partBase, seamAt atomic.Int64
	// seam, during a rotation, tells the spooler where the next part's
	// spool takes over (see spoolSeam).
	seamMu      sync.Mutex
	seam        *spoolSeam
	spoolerExit chan struct{} // closed when the spooler has returned
	// part is the part being written, for the goroutines other than the
	// writer (the writer's batcher keeps its own).
	partMu sync.Mutex
	part   partState
}

// partState is the capture, session and spool being written.
type partState struct {
	capture *storage.Capture
	sess    *storage.Session
	spool   *storage.Spool
}

func (p *pipeline) setPart(c *storage.Capture, sess *storage.Session, spool *storage.Spool) {
	p.partMu.Lock()
	p.part = partState{c, sess, spool}
	p.partMu.Unlock()
}

func (p *pipeline) currentPart() partState {
	p.partMu.Lock()
	defer p.partMu.Unlock()
	return p.part
}

// spoolSeam is where a rotation switches spools: the first at items
// handed to the spooler (p.handed) belong to the old part; the spooler
// spools and acknowledges them into the old spool, closes oldDone, and
// goes on at once with the new part's spool, ready on next. Intake
// is held only while the seam is set: the writer never waits for the
// spooler with intake stopped (an acknowledgement can wait for the client's
// network goroutine, which waits for intake).
type spoolSeam struct {
	at      uint64
	oldDone chan struct{}
	next    chan *storage.Spool
}

func (p *pipeline) currentSeam() *spoolSeam {
	p.seamMu.Lock()
	defer p.seamMu.Unlock()
	return p.seam
}

// setSeam marks the seam at what was handed so far (intake held), with the
// next part's spool ready, and wakes the spooler, which may have nothing
// pending.
func (p *pipeline) setSeam(next *storage.Spool) *spoolSeam {
	s := &spoolSeam{at: p.handed.Load(), oldDone: make(chan struct{}), next: make(chan *storage.Spool, 1)}
	s.next <- next
	p.seamMu.Lock()
	p.seam = s
	p.seamMu.Unlock()
	select {
	case p.spoolWake <- struct{}{}:
	default:
	}
	return s
}

// rebase makes a message's offset relative to the part being written
// (called with intake held, so the part cannot change meanwhile). A
// message stamped just before a rotation but queued after it is stamped
// again, now: stamps stay strictly increasing (a spool recovery relies on
// it) and within the part.
func (p *pipeline) rebase(m *storage.Message) {
	base := p.partBase.Load()
	if base == 0 {
		return
	}
	if m.OffsetNS <= p.seamAt.Load() {
		ts, off := p.stamp()
		m.TimeNS, m.OffsetNS = ts, off
	}
	m.OffsetNS -= base
}

// item is a message waiting for the writer (and the spooler).
type item struct {
	m   storage.Message
	ack func() // nil: nothing to acknowledge
	// ackOnly: acknowledge in turn, do not store (a redelivery already
	// stored, a message outside the filters).
	ackOnly bool
}

func newPipeline(cfg Config) *pipeline {
	p := &pipeline{cfg: cfg, clock: realClock{}, queue: make(chan item, cfg.QueueLen), ready: make(chan struct{}, 1),
		spoolWake: make(chan struct{}, 1), countHit: make(chan struct{})}
	p.spoolTarget.Store(1)
	return p
}

// stamp returns the wall time and offset of now: wall time is derived from
// the monotonic clock, so it never jumps backwards within a session, and
// every stamp is later than the one before (a spool recovery tells what was
// committed by the receive time of the last committed message). For that,
// a Recorder's messages are stamped and queued by one goroutine at a time:
// both paho clients deliver messages from one goroutine and wait for it to
// end before they reconnect (a Tap, fed by every publisher's goroutine,
// holds a lock across both).
func (p *pipeline) stamp() (ts, off int64) {
	o := int64(time.Since(p.start))
	for {
		last := p.lastTS.Load()
		if o <= last {
			o = last + 1
		}
		if p.lastTS.CompareAndSwap(last, o) {
			return p.start.UnixNano() + o, o
		}
	}
}

func (p *pipeline) event(kind, detail string) {
	ts, off := p.stamp()
	p.mu.Lock()
	p.events = append(p.events, storage.Event{TimeNS: ts, OffsetNS: off, Kind: kind, Detail: detail})
	p.mu.Unlock()
}

func (p *pipeline) takeEvents() []storage.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	ev := p.events
	p.events = nil
	return ev
}

// offer queues a message. It returns false, without acknowledging, when the
// pipeline is stopping or --count is reached; it drops (counted, recorded as
// an event, acknowledged) when the writer stays behind for a second.
func (p *pipeline) offer(it item) bool {
	p.handling.RLock()
	defer p.handling.RUnlock()
	if !p.accepting.Load() {
		return false
	}
	p.rebase(&it.m)
	if n := p.received.Add(1); p.cfg.Count > 0 && n > p.cfg.Count {
		p.received.Add(-1)
		return false
	}
	// The writer is behind when the queue is full or holds QueueBytes of
	// payload: wait a little (TCP backpressure slows the sender), but never
	// long enough to miss keepalives, then drop (counted and recorded).
	size := int64(len(it.m.Payload))
	var deadline time.Time // set on the slow paths only
	for p.queued.Load()+size > p.cfg.QueueBytes && p.queued.Load() > 0 {
		p.pressed.Store(true)
		p.wake()
		if deadline.IsZero() {
			deadline = time.Now().Add(time.Second)
		} else if time.Now().After(deadline) {
			p.drop(it, "writer behind for 1s (queue byte limit)")
			return true
		}
		time.Sleep(time.Millisecond)
	}
	p.queued.Add(size)
	select {
	case p.queue <- it:
		p.queuedOne(it)
		return true
	default:
	}
	p.wake()
	if deadline.IsZero() {
		deadline = time.Now().Add(time.Second)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case p.queue <- it:
		p.queuedOne(it)
	case <-t.C:
		p.queued.Add(-size)
		p.drop(it, "writer behind for 1s (queue full)")
	}
	return true
}

// ackInOrder acknowledges a QoS 1/2 message that is not stored, after the
// messages received before it (MQTT 4.6: acknowledgements go in the order
// the messages arrived).
func (p *pipeline) ackInOrder(m mqtt.Message) {
	p.handling.RLock()
	defer p.handling.RUnlock()
	if m.QoS == 0 || !p.accepting.Load() {
		return // stopping: not acknowledged, like a message not stored
	}
	p.addPending(item{ack: m.Ack, ackOnly: true})
}

// addPending hands an item to the spooler, waking it for the first of a
// group and when the target is reached.
func (p *pipeline) addPending(it item) {
	p.pendMu.Lock()
	p.pending = append(p.pending, it)
	n := len(p.pending)
	p.handed.Add(1)
	p.pendMu.Unlock()
	if n == 1 || int64(n) >= p.spoolTarget.Load() {
		select {
		case p.spoolWake <- struct{}{}:
		default:
		}
	}
}

// queuedOne hands a message the broker waits to have acknowledged to the
// spooler (in the order messages are queued), and wakes the writer when the
// queue holds a full batch.
func (p *pipeline) queuedOne(it item) {
	if it.ack != nil {
		p.addPending(it)
	}
	if len(p.queue) >= p.cfg.BatchSize {
		p.wake()
	}
}

// wake tells the writer not to wait for its next tick.
func (p *pipeline) wake() {
	select {
	case p.ready <- struct{}{}:
	default:
	}
}

func (p *pipeline) drop(it item, why string) {
	n := p.dropped.Add(1)
	if n == 1 || n%1000 == 0 {
		p.event(storage.EventQueueOverflow, fmt.Sprintf("%s: %s dropped so far (last topic %q)", why,
			humanize.Count(n, "message", "messages"), it.m.Topic))
	}
	if it.ack != nil {
		// Keep the broker's in-flight window moving (the drop is counted
		// and recorded), acknowledged in turn after the messages before it.
		p.addPending(item{ack: it.ack, ackOnly: true})
	}
}

// begin opens the session. Messages may already be queued (accepting was
// set before connecting).
func (p *pipeline) begin(ctx context.Context, capture *storage.Capture, info storage.SessionInfo) (*storage.Session, error) {
	info.StartedNS = p.start.UnixNano()
	sess, err := capture.BeginSession(context.WithoutCancel(ctx), info)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWriter, err)
	}
	return sess, nil
}

// stopIntake stops accepting and waits for messages being queued right now.
func (p *pipeline) stopIntake() {
	p.accepting.Store(false)
	p.handling.Lock()
	p.handling.Unlock()
}

// end writes the remaining events and closes the session.
func (p *pipeline) end(ctx context.Context, sess *storage.Session, reason string, runErr error) error {
	now := time.Now()
	if err := sess.Write(ctx, nil, p.takeEvents(), now.UnixNano()); err != nil && runErr == nil {
		runErr = fmt.Errorf("%w: %w", ErrWriter, err)
	}
	if err := sess.End(ctx, now.UnixNano(), reason, p.dropped.Load()); err != nil && runErr == nil {
		runErr = fmt.Errorf("%w: %w", ErrWriter, err)
	}
	return runErr
}
