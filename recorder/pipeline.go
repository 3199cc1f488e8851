package recorder

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// ErrWriter wraps a failure to write the capture.
var ErrWriter = errors.New("write capture")

// pipeline is the part shared by the subscriber Recorder and the broker
// Tap: a bounded queue filled by network goroutines without blocking them
// for long, and one writer goroutine that commits batches to a session and
// then runs the messages' acknowledgements.
type pipeline struct {
	cfg   Config
	start time.Time
	queue chan item
	// ready wakes the writer before its next tick: a full batch is
	// waiting, or enough messages whose acknowledgement the broker waits
	// for (see ackTarget). Without it the writer would wake for every
	// message at high rates, and a goroutine wakeup costs more than
	// storing the message.
	ready chan struct{}
	// unacked counts queued and committing messages the broker waits to
	// have acknowledged; ackTarget is how many of them the writer lets
	// gather before it commits (the writer adapts it: see writer).
	unacked, ackTarget atomic.Int64
	// quietGap is how long the stream of messages waiting for
	// acknowledgement must pause before the writer commits fewer than
	// ackTarget of them (defaultQuietGap; tests lengthen it so that a
	// descheduled test goroutine does not look like a pause).
	quietGap time.Duration
	// commits and pauseCommits count transactions, and those started by a
	// pause in the stream (owned by the writer; read by tests after it
	// returned).
	commits, pauseCommits int

	queued    atomic.Int64 // payload bytes in the queue
	accepting atomic.Bool
	handling  sync.RWMutex // held (read) while queueing; stop takes it to end intake

	received, stored, bytes, topics, dropped atomic.Int64

	mu       sync.Mutex
	events   []storage.Event
	countHit chan struct{}
}

// item is a message waiting for the writer.
type item struct {
	m   storage.Message
	ack func() // nil: nothing to acknowledge
}

func newPipeline(cfg Config) *pipeline {
	p := &pipeline{cfg: cfg, queue: make(chan item, cfg.QueueLen), ready: make(chan struct{}, 1), countHit: make(chan struct{})}
	p.ackTarget.Store(1)
	p.quietGap = defaultQuietGap
	return p
}

// stamp returns the wall time and offset of now: wall time is derived from
// the monotonic clock, so it never jumps backwards within a session.
func (p *pipeline) stamp() (ts, off int64) {
	o := int64(time.Since(p.start))
	return p.start.UnixNano() + o, o
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
	if it.ack != nil {
		p.unacked.Add(1)
	}
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
		if it.ack != nil {
			p.unacked.Add(-1)
		}
		p.drop(it, "writer behind for 1s (queue full)")
	}
	return true
}

// queuedOne wakes the writer when the message just queued completes a
// batch, is the first the broker waits to have acknowledged, or makes
// ackTarget of those.
func (p *pipeline) queuedOne(it item) {
	full := len(p.queue) >= p.cfg.BatchSize
	if n := p.unacked.Load(); full || it.ack != nil && (n == 1 || n >= p.ackTarget.Load()) {
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
		p.event(storage.EventQueueOverflow, fmt.Sprintf("%s: %d messages dropped so far (last topic %q)", why, n, it.m.Topic))
	}
	if it.ack != nil {
		it.ack() // keep the broker's in-flight window moving; the drop is counted and recorded
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

// defaultQuietGap is the pipeline's quietGap. Go's timers fire about a
// millisecond late on an idle Linux process, so shorter gaps buy nothing.
const defaultQuietGap = time.Millisecond

// writer owns the session: it batches queued messages into transactions and
// runs their acknowledgements once committed. When ctx is cancelled (after
// stopIntake) it drains the queue and returns.
//
// Group commit. Messages the broker waits to have acknowledged (QoS 1 and
// 2) are committed in groups of ackTarget, which adapts to the broker:
//   - A broker that keeps sending (its in-flight window is larger than what
//     gathers while a batch commits) always has more waiting than the
//     target: the target doubles, up to BatchSize. Committing whatever
//     had arrived made batches of about 100 messages at 40k msg/s, and the
//     fixed costs of each commit (a transaction, its last pages rewritten
//     into the WAL) cost QoS 1 recording about a fifth more CPU.
//   - A broker with a small in-flight window (mosquitto's default is 20)
//     stops sending until it gets acknowledgements: when the stream pauses
//     for quietGap with fewer than the target waiting, they are committed
//     and the target becomes their number, the broker's window. From then
//     on each window is committed as soon as it is complete, without
//     waiting for a pause.
//   - At low rates every pause commits, so acknowledgements wait about
//     quietGap; the tick bounds any wait to FlushInterval.
func (p *pipeline) writer(ctx context.Context, sess *storage.Session) error {
	batch := make([]storage.Message, 0, p.cfg.BatchSize)
	var acks []func()
	var queuedBytes int64
	seen := make(map[string]struct{})
	tick := time.NewTicker(p.cfg.FlushInterval)
	defer tick.Stop()
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	var quietC <-chan time.Time // non-nil while the quiet timer runs
	gathered := 0               // len(acks) when the quiet timer was set
	// gather waits quietGap for more of what waits for acknowledgement.
	gather := func() {
		gathered = len(acks)
		quiet.Reset(p.quietGap)
		quietC = quiet.C
	}
	// The writer alone sets ackTarget; offer only reads it.
	target := func() int { return int(p.ackTarget.Load()) }
	setTarget := func(n int) { p.ackTarget.Store(int64(min(max(n, 1), p.cfg.BatchSize))) }
	lastDropped := int64(0)
	flush := func() error {
		events := p.takeEvents()
		if len(batch) == 0 && len(events) == 0 {
			return nil
		}
		if quietC != nil {
			quiet.Stop()
			quietC = nil
		}
		p.commits++
		// Never cancelled: a stop must not abandon a half-written batch.
		if err := sess.Write(context.Background(), batch, events, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("%w: %w", ErrWriter, err)
		}
		for _, ack := range acks {
			ack()
		}
		p.unacked.Add(-int64(len(acks)))
		var b int64
		for i := range batch {
			b += int64(len(batch[i].Payload))
			if _, ok := seen[batch[i].Topic]; !ok {
				seen[batch[i].Topic] = struct{}{}
				p.topics.Add(1)
			}
		}
		p.queued.Add(-queuedBytes)
		p.bytes.Add(b)
		n := p.stored.Add(int64(len(batch)))
		clear(batch) // let payloads be collected
		batch, acks, queuedBytes = batch[:0], acks[:0], 0
		if d := p.dropped.Load(); d != lastDropped {
			lastDropped = d
			if err := sess.SetDropped(context.Background(), d); err != nil {
				return fmt.Errorf("%w: %w", ErrWriter, err)
			}
		}
		if p.cfg.Count > 0 && n >= p.cfg.Count {
			select {
			case <-p.countHit:
			default:
				close(p.countHit)
			}
		}
		return nil
	}
	add := func(it item) {
		batch = append(batch, it.m)
		queuedBytes += int64(len(it.m.Payload))
		if it.ack != nil {
			acks = append(acks, it.ack)
		}
	}
	// take moves what is queued into the batch, committing full batches.
	take := func() error {
		for {
			select {
			case it := <-p.queue:
				add(it)
				if len(batch) >= p.cfg.BatchSize {
					if err := flush(); err != nil {
						return err
					}
				}
			default:
				return nil
			}
		}
	}
	// commitAcks commits what waits for acknowledgement when the target is
	// reached (growing it when more than the target was already waiting),
	// or starts gathering until the stream pauses; then again with what
	// arrived during the commit.
	commitAcks := func() error {
		for len(acks) > 0 {
			if len(acks) < target() {
				if quietC == nil {
					gather()
				}
				return nil
			}
			if len(acks) > target() {
				setTarget(2 * target())
			}
			if err := flush(); err != nil {
				return err
			}
			if err := take(); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		select {
		case <-p.ready:
			if err := take(); err != nil {
				return err
			}
			if err := commitAcks(); err != nil {
				return err
			}
		case <-quietC:
			quietC = nil
			if err := take(); err != nil {
				return err
			}
			if len(acks) > gathered && len(acks) < target() {
				gather() // still arriving: keep gathering (the tick bounds it)
				continue
			}
			if len(acks) > 0 && len(acks) < target() {
				// The stream paused: the broker waits for these.
				setTarget(len(acks))
				p.pauseCommits++
			}
			if err := commitAcks(); err != nil {
				return err
			}
		case <-tick.C:
			if err := take(); err != nil {
				return err
			}
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			if err := take(); err != nil {
				return err
			}
			return flush()
		}
	}
}
