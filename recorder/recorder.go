// Package recorder subscribes to an MQTT broker and records every message it
// receives into a storage.Session: it stamps each message on arrival, queues
// it without ever blocking the client's network loop for long, and one writer
// goroutine stores many messages per transaction. QoS 1/2 messages are
// acknowledged to the broker only after they are committed, so a crash never
// loses a message the broker considers delivered.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
)

// Subscriber is the connected client the recorder needs.
type Subscriber interface {
	Subscribe(ctx context.Context, subs []mqttclient.Subscription) ([]byte, error)
	Disconnect(quiesce time.Duration)
}

// Dialer connects to the broker with the recorder's handlers installed
// (they must be in place before the first message can arrive).
type Dialer func(ctx context.Context, h mqttclient.Handlers) (Subscriber, error)

// Stop reasons stored in the capture.
const (
	StopInterrupted = "interrupted"
	StopDuration    = "duration"
	StopCount       = "count"
	StopError       = "error"
	StopDenied      = "subscription denied"
)

// sysDropped is mosquitto's counter of messages it dropped (e.g. to a slow
// subscriber). The recorder watches it and records increases as events.
const sysDropped = "$SYS/broker/publish/messages/dropped"

// Config controls a recording.
type Config struct {
	Filters  []mqttclient.Subscription // default: '#' at QoS 2
	Sys      bool                      // also record $SYS/#
	Count    int64                     // stop after this many messages (0: no limit)
	Duration time.Duration             // stop after this long (0: no limit)
	// FlushInterval bounds how long a received message waits before it is
	// committed (default 100 ms).
	FlushInterval time.Duration
	BatchSize     int   // messages per transaction at most (default 4096)
	QueueLen      int   // messages waiting for the writer at most (default 65536)
	QueueBytes    int64 // payload bytes waiting for the writer at most (default 128 MiB)
	// Session describes the recording; StartedNS is set by Run.
	Session storage.SessionInfo
}

func (c *Config) defaults() {
	if len(c.Filters) == 0 {
		c.Filters = []mqttclient.Subscription{{Filter: "#", QoS: 2}}
	}
	if c.Sys {
		c.Filters = append(c.Filters, mqttclient.Subscription{Filter: "$SYS/#", QoS: c.Filters[0].QoS})
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 4096
	}
	if c.QueueLen <= 0 {
		c.QueueLen = 1 << 16
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = 128 << 20
	}
}

// Stats is a live snapshot of a recording.
type Stats struct {
	Received      int64 // messages received from the broker
	Stored        int64 // messages committed to the capture
	Bytes         int64 // payload bytes committed
	Topics        int64 // distinct topics committed
	Dropped       int64 // messages received but not stored (queue overflow)
	Reconnects    int64
	BrokerDropped int64 // increase of the broker's $SYS dropped counter since start
	Connected     bool
	Started       time.Time
}

// Result summarises a finished recording.
type Result struct {
	Stats
	SessionID  int64
	StopReason string
	Ended      time.Time
	Filters    []storage.Filter
}

type item struct {
	m       mqttclient.Message
	ts, off int64
}

// Recorder records one session. Create it with New, then call Run once.
type Recorder struct {
	cfg     Config
	capture *storage.Capture
	dial    Dialer

	start     time.Time
	queue     chan item
	queued    atomic.Int64 // payload bytes in the queue
	accepting atomic.Bool
	handling  sync.RWMutex // held (read) by onMessage; Run takes it to stop intake

	received, stored, bytes, topics, dropped, reconnects, brokerDropped atomic.Int64
	connected                                                           atomic.Bool

	mu       sync.Mutex
	events   []storage.Event
	lostAt   time.Time
	sysBase  int64 // first value of the broker's dropped counter; -1 before it
	resub    func()
	countHit chan struct{}
}

// New prepares a recorder writing into capture.
func New(capture *storage.Capture, dial Dialer, cfg Config) *Recorder {
	cfg.defaults()
	return &Recorder{cfg: cfg, capture: capture, dial: dial, sysBase: -1,
		queue: make(chan item, cfg.QueueLen), countHit: make(chan struct{})}
}

// Stats returns a live snapshot; safe to call from any goroutine.
func (r *Recorder) Stats() Stats {
	return Stats{Received: r.received.Load(), Stored: r.stored.Load(), Bytes: r.bytes.Load(),
		Topics: r.topics.Load(), Dropped: r.dropped.Load(), Reconnects: r.reconnects.Load(),
		BrokerDropped: r.brokerDropped.Load(), Connected: r.connected.Load(), Started: r.start}
}

func (r *Recorder) event(kind, detail string) {
	off := time.Since(r.start)
	r.mu.Lock()
	r.events = append(r.events, storage.Event{TimeNS: r.start.UnixNano() + int64(off), OffsetNS: int64(off), Kind: kind, Detail: detail})
	r.mu.Unlock()
}

func (r *Recorder) takeEvents() []storage.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

// onMessage runs on the MQTT client's network goroutine: stamp and queue.
func (r *Recorder) onMessage(m mqttclient.Message) {
	off := int64(time.Since(r.start))
	r.handling.RLock()
	defer r.handling.RUnlock()
	if !r.accepting.Load() {
		return // stopping: not acknowledged, so a persistent session redelivers it
	}
	if m.Topic == sysDropped && !r.recordsSys(m.Topic) {
		r.watchBrokerDrops(m)
		m.Ack()
		return
	}
	if n := r.received.Add(1); r.cfg.Count > 0 && n > r.cfg.Count {
		r.received.Add(-1)
		return // beyond --count: left unacknowledged for a persistent session
	}
	// Wall time is derived from the monotonic clock so that it never jumps
	// backwards within a session (seq, offset and time stay in order).
	it := item{m: m, ts: r.start.UnixNano() + off, off: off}
	size := int64(len(m.Payload))
	if r.queued.Add(size) > r.cfg.QueueBytes && size > 0 {
		r.queued.Add(-size)
		r.drop(m, "queue byte limit reached")
		return
	}
	select {
	case r.queue <- it:
		return
	default:
	}
	// The writer is behind: wait a little (TCP backpressure slows the
	// broker), but never long enough to miss keepalives.
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case r.queue <- it:
	case <-t.C:
		r.queued.Add(-size)
		r.drop(m, "queue full for 1s")
	}
}

func (r *Recorder) recordsSys(name string) bool {
	for _, f := range r.cfg.Filters {
		if topic.Match(f.Filter, name) {
			return true
		}
	}
	return false
}

func (r *Recorder) drop(m mqttclient.Message, why string) {
	if r.dropped.Add(1) == 1 || r.dropped.Load()%1000 == 0 {
		r.event(storage.EventQueueOverflow, fmt.Sprintf("%s: %d messages dropped so far (last topic %q)", why, r.dropped.Load(), m.Topic))
	}
	m.Ack() // keep the broker's in-flight window moving; the drop is counted and recorded
}

func (r *Recorder) watchBrokerDrops(m mqttclient.Message) {
	v, err := strconv.ParseInt(string(m.Payload), 10, 64)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sysBase < 0 {
		r.sysBase = v
		return
	}
	if d := v - r.sysBase; d > r.brokerDropped.Load() {
		r.brokerDropped.Store(d)
		off := time.Since(r.start)
		r.events = append(r.events, storage.Event{TimeNS: r.start.UnixNano() + int64(off), OffsetNS: int64(off),
			Kind: storage.EventBrokerDropped, Detail: fmt.Sprintf("the broker reports %d messages dropped since recording started (%s)", d, sysDropped)})
	}
}

func (r *Recorder) onConnected(reconnect bool) {
	r.connected.Store(true)
	if !reconnect {
		return // Run records the first connection itself
	}
	r.reconnects.Add(1)
	r.mu.Lock()
	gap := time.Since(r.lostAt)
	resub := r.resub
	r.mu.Unlock()
	r.event(storage.EventReconnected, fmt.Sprintf("after %s offline", gap.Round(time.Millisecond)))
	if resub != nil {
		resub()
	}
}

func (r *Recorder) onLost(err error) {
	r.connected.Store(false)
	r.mu.Lock()
	r.lostAt = time.Now()
	r.mu.Unlock()
	r.event(storage.EventConnectionLost, err.Error())
}

// ErrWriter wraps a failure to write the capture.
var ErrWriter = errors.New("write capture")

// Run records until ctx is cancelled, the duration or count is reached, or
// writing fails. It always ends the session cleanly when it can. A
// cancelled ctx is a normal stop (StopInterrupted), not an error.
func (r *Recorder) Run(ctx context.Context) (Result, error) {
	r.start = time.Now()
	info := r.cfg.Session
	info.StartedNS = r.start.UnixNano()
	for _, f := range r.cfg.Filters {
		info.Filters = append(info.Filters, storage.Filter{Filter: f.Filter, QoS: f.QoS, Granted: -1})
	}
	// Connect before the session exists: a broker that cannot be reached
	// leaves no empty session behind. Nothing arrives before Subscribe.
	h := mqttclient.Handlers{Message: r.onMessage, Connected: r.onConnected, Lost: r.onLost,
		Reconnecting: func() {}}
	client, err := r.dial(ctx, h)
	if err != nil {
		if ctx.Err() != nil {
			return Result{StopReason: StopInterrupted}, nil
		}
		return Result{StopReason: StopError}, err
	}
	defer client.Disconnect(250 * time.Millisecond)
	sess, err := r.capture.BeginSession(context.WithoutCancel(ctx), info)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrWriter, err)
	}
	res := Result{SessionID: sess.ID()}
	writerCtx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	writerDone := make(chan error, 1)
	r.accepting.Store(true)
	go func() { writerDone <- r.writer(writerCtx, sess) }()

	finish := func(reason string, runErr error) (Result, error) {
		r.accepting.Store(false)
		r.handling.Lock() // wait for messages being queued right now
		r.handling.Unlock()
		stopWriter()
		werr := <-writerDone
		if werr != nil && runErr == nil {
			runErr, reason = werr, StopError
		}
		end := time.Now()
		bg := context.WithoutCancel(ctx)
		if runErr != nil && reason != StopDenied {
			r.event(storage.EventStopped, runErr.Error())
		}
		if err := sess.Write(bg, nil, r.takeEvents(), end.UnixNano()); err != nil && runErr == nil {
			runErr = fmt.Errorf("%w: %w", ErrWriter, err)
		}
		if err := sess.End(bg, end.UnixNano(), reason, r.dropped.Load()); err != nil && runErr == nil {
			runErr = fmt.Errorf("%w: %w", ErrWriter, err)
		}
		res.Stats, res.StopReason, res.Ended = r.Stats(), reason, end
		return res, runErr
	}

	r.connected.Store(true)
	r.event(storage.EventConnected, info.Broker)

	subscribe := func() error {
		subs := append([]mqttclient.Subscription(nil), r.cfg.Filters...)
		if !r.recordsSys(sysDropped) {
			subs = append(subs, mqttclient.Subscription{Filter: sysDropped, QoS: 0})
		}
		granted, err := client.Subscribe(ctx, subs)
		if err != nil {
			return err
		}
		var filters []storage.Filter
		ok := 0
		for i, f := range r.cfg.Filters {
			filters = append(filters, storage.Filter{Filter: f.Filter, QoS: f.QoS, Granted: int(granted[i])})
			if granted[i] == 0x80 {
				r.event(storage.EventSubscribeDeny, fmt.Sprintf("%s (SUBACK 0x80)", f.Filter))
			} else {
				ok++
				r.event(storage.EventSubscribed, fmt.Sprintf("%s granted QoS %d", f.Filter, granted[i]))
			}
		}
		res.Filters = filters
		if err := sess.SetFilters(context.WithoutCancel(ctx), filters); err != nil {
			return fmt.Errorf("%w: %w", ErrWriter, err)
		}
		if ok == 0 {
			return fmt.Errorf("%w: the broker refused every topic filter (SUBACK 0x80)", mqttclient.ErrSubscribeDenied)
		}
		return nil
	}
	r.mu.Lock()
	r.resub = func() {
		go func() {
			if err := subscribe(); err != nil && ctx.Err() == nil {
				r.event(storage.EventSubscribeDeny, "re-subscribe after reconnect failed: "+err.Error())
			}
		}()
	}
	r.mu.Unlock()
	if err := subscribe(); err != nil {
		if ctx.Err() != nil {
			return finish(StopInterrupted, nil)
		}
		if errors.Is(err, mqttclient.ErrSubscribeDenied) {
			return finish(StopDenied, err)
		}
		return finish(StopError, err)
	}

	var timeout <-chan time.Time
	if r.cfg.Duration > 0 {
		t := time.NewTimer(r.cfg.Duration - time.Since(r.start))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ctx.Done():
		return finish(StopInterrupted, nil)
	case <-timeout:
		return finish(StopDuration, nil)
	case <-r.countHit:
		return finish(StopCount, nil)
	case err := <-writerDone:
		writerDone <- err // finish reads it again
		return finish(StopError, err)
	}
}

// writer owns the session: it batches queued messages into transactions and
// acknowledges them once committed. On cancellation it drains the queue.
func (r *Recorder) writer(ctx context.Context, sess *storage.Session) error {
	batch := make([]storage.Message, 0, r.cfg.BatchSize)
	var acks []func()
	var queuedBytes int64
	seen := make(map[string]struct{})
	tick := time.NewTicker(r.cfg.FlushInterval)
	defer tick.Stop()
	lastDropped := int64(0)
	flush := func() error {
		events := r.takeEvents()
		if len(batch) == 0 && len(events) == 0 {
			return nil
		}
		// Stored with a context that is never cancelled: a stop must not
		// abandon a half-written batch.
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
				r.topics.Add(1)
			}
		}
		r.queued.Add(-queuedBytes)
		r.bytes.Add(b)
		n := r.stored.Add(int64(len(batch)))
		batch, acks, queuedBytes = batch[:0], acks[:0], 0
		if d := r.dropped.Load(); d != lastDropped {
			lastDropped = d
			if err := sess.SetDropped(context.Background(), d); err != nil {
				return fmt.Errorf("%w: %w", ErrWriter, err)
			}
		}
		if r.cfg.Count > 0 && n >= r.cfg.Count {
			select {
			case <-r.countHit:
			default:
				close(r.countHit)
			}
		}
		return nil
	}
	add := func(it item) {
		batch = append(batch, storage.Message{TimeNS: it.ts, OffsetNS: it.off, Topic: it.m.Topic, QoS: it.m.QoS,
			Retain: it.m.Retain, FromStore: it.m.Retain, Dup: it.m.Dup, PacketID: it.m.PacketID, Payload: it.m.Payload})
		queuedBytes += int64(len(it.m.Payload))
		if it.m.QoS > 0 {
			acks = append(acks, it.m.Ack)
		}
	}
	for {
		select {
		case it := <-r.queue:
			add(it)
			// Take what else is waiting, up to a batch.
		more:
			for len(batch) < r.cfg.BatchSize {
				select {
				case it := <-r.queue:
					add(it)
				default:
					break more
				}
			}
			// Commit now when the batch is full, or when the broker waits
			// for acknowledgements (its in-flight window is small).
			if len(batch) >= r.cfg.BatchSize || len(acks) > 0 {
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
				case it := <-r.queue:
					add(it)
					if len(batch) >= r.cfg.BatchSize {
						if err := flush(); err != nil {
							return err
						}
					}
					continue
				default:
				}
				break
			}
			return flush()
		}
	}
}
