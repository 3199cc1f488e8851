package recorder

import (
	"context"
	"fmt"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// writer owns the session: it moves queued messages into batches and
// commits a batch when it is full (BatchSize), when the queue reaches its
// byte limit, and at every FlushInterval tick. Acknowledgements do not wait
// for it (the spooler sends them). When ctx is cancelled (after
// stopIntake) it drains the queue, commits and returns.
func (p *pipeline) writer(ctx context.Context, sess *storage.Session, spool *storage.Spool, split *splitter) error {
	b := batcher{p: p, sess: sess, spool: spool, split: split, seen: make(map[string]struct{}),
		batch: make([]storage.Message, 0, p.cfg.BatchSize)}
	tick := p.clock.NewTicker(p.cfg.FlushInterval)
	defer tick.Stop()
	for {
		commit := false
		select {
		case <-p.ready:
			// A full batch is waiting (take commits it; the rest waits for
			// more, a commit costs the same for 10 messages as for 4096),
			// or the queue's byte limit was reached (commit everything,
			// which frees the bytes).
			commit = p.pressed.Swap(false)
		case <-tick.Chan():
			commit = true
		case <-ctx.Done():
			if err := b.take(); err != nil {
				return err
			}
			return b.flush()
		}
		if err := b.take(); err != nil {
			return err
		}
		if commit {
			if err := b.flush(); err != nil {
				return err
			}
		}
		if err := b.rotateIfDue(); err != nil {
			return err
		}
	}
}

// rotateIfDue starts the next part when the one being written is full or
// old enough (--split-size, --split-every).
func (b *batcher) rotateIfDue() error {
	if b.split == nil || b.rotating || !b.p.accepting.Load() {
		return nil // not while stopping, nor inside a rotation
	}
	due, err := b.split.due(b.p.clock.Now())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWriter, err)
	}
	if !due {
		return nil
	}
	b.rotating = true
	defer func() { b.rotating = false }()
	return b.rotate()
}

// batcher is the writer's state between commits.
type batcher struct {
	p           *pipeline
	sess        *storage.Session
	spool       *storage.Spool // nil: nothing is spooled (Tap)
	batch       []storage.Message
	queuedBytes int64
	seen        map[string]struct{} // topics committed so far
	lastDropped int64
	split       *splitter // nil: one capture
	base        int64     // offset (since the pipeline's start) at which sess began
	rotating    bool      // inside rotate (its take must not rotate again)
}

// take moves what is queued into the batch, committing full batches.
func (b *batcher) take() error {
	for {
		select {
		case it := <-b.p.queue:
			b.batch = append(b.batch, it.m)
			b.queuedBytes += int64(len(it.m.Payload))
			if len(b.batch) >= b.p.cfg.BatchSize {
				if err := b.flush(); err != nil {
					return err
				}
				// A flood fills parts between the writer's wake-ups.
				if err := b.rotateIfDue(); err != nil {
					return err
				}
			}
		default:
			return nil
		}
	}
}

// flush commits the batch and the pending events in one transaction.
func (b *batcher) flush() error {
	p := b.p
	events := p.takeEvents()
	if len(b.batch) == 0 && len(events) == 0 {
		return nil
	}
	p.commits++
	if base := b.base; base > 0 {
		for i := range events {
			// Stamped before a rotation, written after it: at the part's start.
			events[i].OffsetNS = max(0, events[i].OffsetNS-base)
		}
	}
	// Never cancelled: a stop must not abandon a half-written batch.
	if err := b.sess.Write(context.Background(), b.batch, events, p.clock.Now().UnixNano()); err != nil {
		return fmt.Errorf("%w: %w", ErrWriter, err)
	}
	var bytes int64
	for i := range b.batch {
		if b.split != nil {
			b.split.retained.Observe(&b.batch[i])
		}
		bytes += int64(len(b.batch[i].Payload))
		if _, ok := b.seen[b.batch[i].Topic]; !ok {
			b.seen[b.batch[i].Topic] = struct{}{}
			p.topics.Add(1)
		}
	}
	if b.spool != nil && len(b.batch) > 0 {
		b.spool.Committed(b.batch[len(b.batch)-1].TimeNS)
	}
	p.queued.Add(-b.queuedBytes)
	p.bytes.Add(bytes)
	n := p.stored.Add(int64(len(b.batch)))
	clear(b.batch) // let payloads be collected
	b.batch, b.queuedBytes = b.batch[:0], 0
	if d := p.dropped.Load(); d != b.lastDropped {
		b.lastDropped = d
		if err := b.sess.SetDropped(context.Background(), d); err != nil {
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

// ackFlusher is implemented by connections that can send the
// acknowledgements made so far at once (mqttclient's MQTT 3.1.1 client;
// without it acknowledgements go out as they are made).
type ackFlusher interface{ FlushAcks() }

const (
	// quietGap is how long the stream of messages waiting for
	// acknowledgement must pause before the spooler acknowledges fewer
	// than its target. Go's timers fire about a millisecond late on an
	// idle process, so shorter gaps buy nothing.
	quietGap = time.Millisecond
	// maxHold bounds how long a message waits for its acknowledgement.
	maxHold = 10 * time.Millisecond
	// maxTarget bounds a group.
	maxTarget = 4096
)

// spooler appends the messages waiting for acknowledgement to the spool in
// groups, one write(2) per group, then acknowledges them in arrival order
// and flushes the acknowledgements (one more write). The group's size
// adapts to the broker, so that a streaming broker costs two system calls
// per group, not per message, and a broker with a small in-flight window
// (mosquitto's 20) never waits:
//   - The spooler acts when target messages wait. When more than the
//     target arrived meanwhile, the broker keeps sending whatever we
//     acknowledge: the target doubles (up to maxTarget).
//   - When the stream pauses for quietGap with fewer than the target
//     waiting, the broker waits for their acknowledgements: they are
//     handled, and the target becomes their number (the broker's window),
//     so that from then on each window is acknowledged as soon as it is
//     complete. At low rates every pause acknowledges.
//   - No message waits longer than maxHold.
//
// When ctx is cancelled (after stopIntake) it handles what is still pending
// and returns. After an error nothing more is acknowledged: the broker
// keeps those messages (a persistent session gets them again).
func (p *pipeline) spooler(ctx context.Context, spool *storage.Spool, flush ackFlusher) error {
	g := grouper{p: p, spool: spool, flush: flush, quiet: p.clock.NewTimer(time.Hour)}
	g.quiet.Stop()
	for {
		select {
		case <-p.spoolWake:
			if err := g.woken(); err != nil {
				return err
			}
		case <-g.quietC:
			g.quietC = nil
			if err := g.paused(); err != nil {
				return err
			}
		case <-ctx.Done():
			if err := g.handle(); err != nil {
				return err
			}
			if p.pendingLen() == 0 {
				return nil
			}
		}
	}
}

// grouper is the spooler's state.
type grouper struct {
	p      *pipeline
	spool  *storage.Spool
	flush  ackFlusher
	quiet  clockTimer
	quietC <-chan time.Time // non-nil while the quiet timer runs
	// armed is how many waited when the quiet timer was last set;
	// firstSince is when the oldest of them arrived.
	armed      int
	firstSince time.Time
	items      []item
	msgs       []storage.Message
	done       uint64 // items handled so far (compared with a seam's at)
}

// woken: target messages wait, or the first of a group arrived.
func (g *grouper) woken() error {
	n, target := g.p.pendingLen(), int(g.p.spoolTarget.Load())
	switch {
	case n == 0:
		if seam := g.p.currentSeam(); seam != nil && seam.at == g.done {
			return g.handle() // a rotation waits for the seam
		}
		return nil
	case n >= target:
		if n > target {
			g.p.spoolTarget.Store(int64(min(2*target, maxTarget)))
		}
		return g.handle()
	case g.quietC == nil:
		g.arm(n)
		g.firstSince = g.p.clock.Now()
	}
	return nil
}

// paused: the quiet timer fired.
func (g *grouper) paused() error {
	n, target := g.p.pendingLen(), int(g.p.spoolTarget.Load())
	if n > g.armed && n < target && g.p.clock.Now().Sub(g.firstSince) < maxHold {
		g.arm(n) // still arriving: keep gathering
		return nil
	}
	if n > 0 && n < target {
		g.p.spoolTarget.Store(int64(n)) // the broker waits for these: its window
	}
	return g.handle()
}

func (g *grouper) arm(n int) {
	g.armed = n
	g.quiet.Reset(quietGap)
	g.quietC = g.quiet.Chan()
}

// handle writes what waits to the spool, then acknowledges it; at a
// rotation's seam it switches to the next part's spool.
func (g *grouper) handle() error {
	if g.quietC != nil {
		g.quiet.Stop()
		g.quietC = nil
	}
	p := g.p
	p.pendMu.Lock()
	items := p.pending
	p.pending = g.items[:0]
	p.pendMu.Unlock()
	rest := items
	for {
		seam := p.currentSeam()
		n := len(rest)
		if seam != nil && g.done+uint64(n) > seam.at {
			n = int(seam.at - g.done)
		}
		if err := g.spoolAndAck(rest[:n]); err != nil {
			return err
		}
		g.done += uint64(n)
		rest = rest[n:]
		if seam == nil || g.done != seam.at {
			break
		}
		if err := g.switchSpool(seam); err != nil {
			return err
		}
	}
	clear(items)
	g.items = items[:0]
	return nil
}

// switchSpool passes a rotation's seam: everything before it is in the old
// spool and acknowledged; the next part's spool takes over.
func (g *grouper) switchSpool(seam *spoolSeam) error {
	close(seam.oldDone)
	next := <-seam.next // ready before the seam was set: no wait
	g.p.seamMu.Lock()
	if g.p.seam == seam { // the next rotation may have set its seam already
		g.p.seam = nil
	}
	g.p.seamMu.Unlock()
	g.spool = next
	return nil
}

// spoolAndAck appends items to the spool in one write, then acknowledges
// them in order.
func (g *grouper) spoolAndAck(items []item) error {
	if len(items) == 0 {
		return nil
	}
	p := g.p
	g.msgs = g.msgs[:0]
	for i := range items {
		if !items[i].ackOnly {
			g.msgs = append(g.msgs, items[i].m)
		}
	}
	if err := g.spool.Append(g.msgs); err != nil {
		return fmt.Errorf("%w: %w", ErrWriter, err)
	}
	p.spoolWrites.Add(1)
	for i := range items {
		items[i].ack()
	}
	p.acked.Add(uint64(len(items)))
	if g.flush != nil {
		g.flush.FlushAcks()
	}
	clear(g.msgs)
	return nil
}

func (p *pipeline) pendingLen() int {
	p.pendMu.Lock()
	defer p.pendMu.Unlock()
	return len(p.pending)
}
