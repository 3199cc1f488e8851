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
	return &pipeline{cfg: cfg, queue: make(chan item, cfg.QueueLen), countHit: make(chan struct{})}
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
	deadline := time.Now().Add(time.Second)
	for p.queued.Load()+size > p.cfg.QueueBytes && p.queued.Load() > 0 {
		if time.Now().After(deadline) {
			p.drop(it, "writer behind for 1s (queue byte limit)")
			return true
		}
		time.Sleep(time.Millisecond)
	}
	p.queued.Add(size)
	select {
	case p.queue <- it:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case p.queue <- it:
	case <-t.C:
		p.queued.Add(-size)
		p.drop(it, "writer behind for 1s (queue full)")
	}
	return true
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

// writer owns the session: it batches queued messages into transactions and
// runs their acknowledgements once committed. When ctx is cancelled (after
// stopIntake) it drains the queue and returns.
func (p *pipeline) writer(ctx context.Context, sess *storage.Session) error {
	batch := make([]storage.Message, 0, p.cfg.BatchSize)
	var acks []func()
	var queuedBytes int64
	seen := make(map[string]struct{})
	tick := time.NewTicker(p.cfg.FlushInterval)
	defer tick.Stop()
	lastDropped := int64(0)
	flush := func() error {
		events := p.takeEvents()
		if len(batch) == 0 && len(events) == 0 {
			return nil
		}
		// Never cancelled: a stop must not abandon a half-written batch.
		if err := sess.Write(context.Background(), batch, events, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("%w: %w", ErrWriter, err)
		}
		for _, ack := range acks {
			ack()
		}
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
	for {
		select {
		case it := <-p.queue:
			add(it)
			// Take what else is waiting, up to a batch.
		more:
			for len(batch) < p.cfg.BatchSize {
				select {
				case it := <-p.queue:
					add(it)
				default:
					break more
				}
			}
			// Commit now when the batch is full, or when the broker waits
			// for acknowledgements (its in-flight window is small).
			if len(batch) >= p.cfg.BatchSize || len(acks) > 0 {
				if err := flush(); err != nil {
					return err
				}
			}
		case <-tick.C:
			if err := flush(); err != nil {
				return err
			}
		case <-ctx.Done():
			for {
				select {
				case it := <-p.queue:
					add(it)
					if len(batch) >= p.cfg.BatchSize {
						if err := flush(); err != nil {
							return err
						}
					}
					continue
				default:
				}
				return flush()
			}
		}
	}
}
