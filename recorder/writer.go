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
func (p *pipeline) writer(ctx context.Context, sess *storage.Session, spool *storage.Spool) error {
	b := batcher{p: p, sess: sess, spool: spool, seen: make(map[string]struct{}),
		batch: make([]storage.Message, 0, p.cfg.BatchSize)}
	tick := time.NewTicker(p.cfg.FlushInterval)
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
		case <-tick.C:
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
	}
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
	// Never cancelled: a stop must not abandon a half-written batch.
	if err := b.sess.Write(context.Background(), b.batch, events, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("%w: %w", ErrWriter, err)
	}
	var bytes int64
	for i := range b.batch {
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

// spooler appends the messages waiting for acknowledgement to the spool,
// all that arrived since its last write in one write(2), then acknowledges
// them in arrival order and calls flushAcks (nil: none) to send the
// acknowledgements at once. When ctx is cancelled (after stopIntake) it
// handles what is still pending and returns. After an error nothing more
// is acknowledged: the broker keeps those messages (a persistent session
// gets them again).
func (p *pipeline) spooler(ctx context.Context, spool *storage.Spool, flushAcks func()) error {
	var items, spare []item
	var msgs []storage.Message
	for {
		select {
		case <-p.spoolWake:
		case <-ctx.Done():
		}
		p.pendMu.Lock()
		items, p.pending, spare = p.pending, spare[:0], nil
		p.pendMu.Unlock()
		if len(items) == 0 {
			if ctx.Err() != nil {
				return nil
			}
			spare = items
			continue
		}
		msgs = msgs[:0]
		for i := range items {
			if !items[i].ackOnly {
				msgs = append(msgs, items[i].m)
			}
		}
		if err := spool.Append(msgs); err != nil {
			return fmt.Errorf("%w: %w", ErrWriter, err)
		}
		for i := range items {
			items[i].ack()
		}
		if flushAcks != nil {
			flushAcks()
		}
		clear(msgs)
		clear(items)
		spare = items
	}
}
