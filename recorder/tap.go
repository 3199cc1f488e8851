package recorder

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// Tap records from inside a broker (mqtape serve): the broker calls
// Published and Event (it implements broker.Observer) for every routed
// message and client event, with the publisher's client id and the retain
// flag as published. Start it, feed it, then Stop it once.
type Tap struct {
	*pipeline
	capture *storage.Capture
	sess    *storage.Session
	stop    context.CancelFunc
	done    chan struct{} // closed when the writer returned; werr is its error
	werr    error

	dropMu      sync.Mutex
	brokerDrops map[string]int64 // per client id
}

// NewTap prepares a tap writing into capture.
func NewTap(capture *storage.Capture, cfg Config) *Tap {
	cfg.defaults()
	return &Tap{pipeline: newPipeline(cfg), capture: capture, done: make(chan struct{})}
}

// Start begins the session and the writer.
func (t *Tap) Start(ctx context.Context) error {
	t.start = time.Now()
	info := t.cfg.Session
	info.Filters = nil
	sess, err := t.begin(ctx, t.capture, info)
	if err != nil {
		return err
	}
	t.sess = sess
	t.accepting.Store(true)
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	t.stop = stop
	go func() {
		t.werr = t.writer(wctx, sess, nil)
		close(t.done)
	}()
	return nil
}

// Published queues a routed message. It never blocks for long.
func (t *Tap) Published(clientID, topic string, payload []byte, qos byte, retain bool, props *mqtt.Properties) {
	ts, off := t.stamp()
	// Inside the broker the retain flag is the publisher's; nothing here
	// comes from the retained store.
	t.offer(item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: topic, QoS: qos, Retain: retain,
		Payload: payload, ClientID: clientID, Props: props}})
}

// Event records a broker event (kind and JSON detail). Drops to a slow
// client come in floods: the first per client is recorded as it happens,
// the rest are counted and summed up per client when the tap stops.
func (t *Tap) Event(kind, detail string) {
	if kind == storage.EventBrokerDrop {
		var d struct {
			ClientID string `json:"client_id"`
		}
		_ = json.Unmarshal([]byte(detail), &d)
		t.dropMu.Lock()
		if t.brokerDrops == nil {
			t.brokerDrops = make(map[string]int64)
		}
		t.brokerDrops[d.ClientID]++
		first := t.brokerDrops[d.ClientID] == 1
		t.dropMu.Unlock()
		if !first {
			return
		}
	}
	t.event(kind, detail)
}

// BrokerDrops returns how many messages the broker dropped to slow clients.
func (t *Tap) BrokerDrops() int64 {
	t.dropMu.Lock()
	defer t.dropMu.Unlock()
	var n int64
	for _, v := range t.brokerDrops {
		n += v
	}
	return n
}

// CountReached is closed once Config.Count messages are stored.
func (t *Tap) CountReached() <-chan struct{} { return t.countHit }

// Failed is closed if the writer stops on its own (disk full...); Stop
// returns the error.
func (t *Tap) Failed() <-chan struct{} { return t.done }

// Stats returns a live snapshot.
func (t *Tap) Stats() Stats {
	return Stats{Received: t.received.Load(), Stored: t.stored.Load(), Bytes: t.bytes.Load(),
		Topics: t.topics.Load(), Dropped: t.dropped.Load(), BrokerDropped: t.BrokerDrops(), Connected: true, Started: t.start}
}

// Stop ends intake, flushes everything and closes the session with reason.
func (t *Tap) Stop(ctx context.Context, reason string) (Result, error) {
	t.dropMu.Lock()
	for id, n := range t.brokerDrops {
		if n > 1 {
			b, _ := json.Marshal(map[string]any{"client_id": id, "dropped": n})
			t.event(storage.EventBrokerDrop, string(b))
		}
	}
	t.dropMu.Unlock()
	t.stopIntake()
	t.stop()
	<-t.done
	werr := t.werr
	if werr != nil {
		reason = StopError
	}
	err := t.end(context.WithoutCancel(ctx), t.sess, reason, werr)
	return Result{Stats: t.Stats(), SessionID: t.sess.ID(), StopReason: reason, Ended: time.Now()}, err
}
