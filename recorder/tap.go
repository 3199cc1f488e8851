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
//
// QoS 1/2 messages go through the session's spool like a Recorder's: the
// broker holds its PUBACK or PUBREC until the message is spooled (Handed,
// Safe and NotifySafe tell it when), so an acknowledged message survives
// the process being killed.
type Tap struct {
	*pipeline
	capture *storage.Capture
	sess    *storage.Session
	wk      *workers

	notifyMu sync.Mutex
	notify   func() // called when Safe grew

	// intake makes stamping and queueing one step: publishers call
	// Published concurrently, and a spool recovery takes what was
	// committed to be everything stamped up to the last committed
	// message, so messages must be queued in the order of their stamps.
	intake sync.Mutex

	dropMu      sync.Mutex
	brokerDrops map[string]int64 // per client id
}

// NewTap prepares a tap writing into capture.
func NewTap(capture *storage.Capture, cfg Config) *Tap {
	cfg.defaults()
	return &Tap{pipeline: newPipeline(cfg), capture: capture}
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
	if t.wk, err = startWorkers(ctx, t.pipeline, t.capture, sess, t, nil); err != nil {
		return t.end(context.WithoutCancel(ctx), sess, StopError, err)
	}
	t.accepting.Store(true)
	return nil
}

// Published queues a message the broker accepted, before the broker
// acknowledges it, with the publisher's packet id. It never blocks for
// long.
func (t *Tap) Published(clientID, topic string, payload []byte, qos byte, retain bool, packetID uint16, props *mqtt.Properties) {
	t.intake.Lock()
	defer t.intake.Unlock()
	ts, off := t.stamp()
	// Inside the broker the retain flag is the publisher's; nothing here
	// comes from the retained store.
	it := item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: topic, QoS: qos, Retain: retain,
		PacketID: packetID, Payload: payload, ClientID: clientID, Props: props}}
	if qos > 0 {
		it.ack = noAck // the broker's acknowledgement waits for Safe instead
	}
	t.offer(it)
}

func noAck() {}

// Handed returns how many QoS 1/2 messages the tap took so far.
func (t *Tap) Handed() uint64 { return t.handed.Load() }

// Safe returns how many of them are in the spool (or the capture).
func (t *Tap) Safe() uint64 { return t.acked.Load() }

// NotifySafe sets fn, called (on the spooler's goroutine; it must not
// block) whenever Safe grew.
func (t *Tap) NotifySafe(fn func()) {
	t.notifyMu.Lock()
	t.notify = fn
	t.notifyMu.Unlock()
}

// FlushAcks is called by the spooler after each group it spooled.
func (t *Tap) FlushAcks() {
	t.notifyMu.Lock()
	fn := t.notify
	t.notifyMu.Unlock()
	if fn != nil {
		fn()
	}
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

// Failed is closed if the writer or the spooler stops on its own (disk
// full...); Stop returns the error.
func (t *Tap) Failed() <-chan struct{} { return t.wk.failed }

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
	werr := t.wk.stop()
	if werr != nil {
		reason = StopError
	}
	err := t.end(context.WithoutCancel(ctx), t.sess, reason, werr)
	return Result{Stats: t.Stats(), SessionID: t.sess.ID(), StopReason: reason, Ended: time.Now()}, err
}
