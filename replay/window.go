package replay

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/mqtape/mqtape/mqttclient"
)

// window bounds the publishes whose token has not completed yet (the
// broker's PUBACK/PUBCOMP for QoS 1/2, the network write for QoS 0), so
// QoS 1/2 never stalls the schedule until max are outstanding. One reaper
// goroutine waits on the tokens in publish order (acks arrive in order,
// MQTT 3.1.1 section 4.6) and counts failures.
type window struct {
	slots   chan struct{} // one element per outstanding publish
	pending chan mqttclient.Token
	abort   chan struct{}
	done    chan struct{}

	failures atomic.Int64
	errMu    sync.Mutex
	firstErr error
}

func newWindow(n int) *window {
	w := &window{slots: make(chan struct{}, n), pending: make(chan mqttclient.Token, n),
		abort: make(chan struct{}), done: make(chan struct{})}
	go w.reap()
	return w
}

func (w *window) reap() {
	defer close(w.done)
	for tok := range w.pending {
		select {
		case <-tok.Done():
		case <-w.abort:
			return
		}
		if err := tok.Error(); err != nil {
			w.failures.Add(1)
			w.errMu.Lock()
			if w.firstErr == nil {
				w.firstErr = err
			}
			w.errMu.Unlock()
		}
		<-w.slots
	}
}

// acquire takes a slot, waiting while the window is full.
func (w *window) acquire(ctx context.Context) error {
	select {
	case w.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case w.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// add hands the token of a publish that holds a slot to the reaper.
func (w *window) add(tok mqttclient.Token) { w.pending <- tok }

// inflight returns the number of outstanding publishes.
func (w *window) inflight() int { return len(w.slots) }

// drain waits until every outstanding publish completed.
func (w *window) drain(ctx context.Context) error {
	n := 0
	defer func() {
		for range n {
			<-w.slots
		}
	}()
	for range cap(w.slots) {
		if err := w.acquire(ctx); err != nil {
			return err
		}
		n++
	}
	return nil
}

// close stops accepting publishes and waits for the outstanding ones until
// ctx ends; it returns how many never completed.
func (w *window) close(ctx context.Context) (unacked int64) {
	close(w.pending)
	select {
	case <-w.done:
		return 0
	case <-ctx.Done():
		close(w.abort)
		<-w.done
		return int64(len(w.slots))
	}
}

func (w *window) err() error {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	return w.firstErr
}
