package replay

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/mqtape/mqtape/mqtt"
)

// window bounds the publishes whose token has not completed yet (the
// broker's PUBACK/PUBCOMP for QoS 1/2, the network write for QoS 0), so
// QoS 1/2 never stalls the schedule until max are outstanding. It is a ring
// of tokens in publish order (acks arrive in order, MQTT 3.1.1 section 4.6)
// owned by the publishing goroutine: completed tokens are collected before
// each publish without blocking, and only a full ring waits for its oldest.
// No goroutine per token, no channel hand-off per message.
type window struct {
	ring    []mqtt.Token
	head, n int

	inflightN atomic.Int64 // for Progress
	failures  atomic.Int64
	errMu     sync.Mutex
	firstErr  error
}

func newWindow(max int) *window { return &window{ring: make([]mqtt.Token, max)} }

// pop removes the oldest token, which has completed, and counts its error.
func (w *window) pop() {
	tok := w.ring[w.head]
	w.ring[w.head] = nil
	w.head = (w.head + 1) % len(w.ring)
	w.n--
	w.inflightN.Add(-1)
	if err := tok.Error(); err != nil {
		w.failures.Add(1)
		w.errMu.Lock()
		if w.firstErr == nil {
			w.firstErr = err
		}
		w.errMu.Unlock()
	}
}

// collect pops the completed tokens at the head without waiting.
func (w *window) collect() {
	for w.n > 0 {
		select {
		case <-w.ring[w.head].Done():
			w.pop()
		default:
			return
		}
	}
}

// waitOldest waits until the oldest token completes.
func (w *window) waitOldest(ctx context.Context) error {
	select {
	case <-w.ring[w.head].Done():
		w.pop()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// acquire makes room for one more publish, waiting while the window is full.
func (w *window) acquire(ctx context.Context) error {
	w.collect()
	for w.n == len(w.ring) {
		if err := w.waitOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// add records the token of a publish made after acquire.
func (w *window) add(tok mqtt.Token) {
	w.ring[(w.head+w.n)%len(w.ring)] = tok
	w.n++
	w.inflightN.Add(1)
}

// inflight returns the number of outstanding publishes; safe from any goroutine.
func (w *window) inflight() int { return int(w.inflightN.Load()) }

// drain waits until every outstanding publish completed.
func (w *window) drain(ctx context.Context) error {
	for w.n > 0 {
		if err := w.waitOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// close waits for the outstanding publishes until ctx ends and returns how
// many never completed.
func (w *window) close(ctx context.Context) (unacked int64) {
	_ = w.drain(ctx)
	return int64(w.n)
}

func (w *window) err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.firstErr
}
