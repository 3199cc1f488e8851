// Package recorder records MQTT messages into a storage.Session. Recorder
// subscribes to a broker as a client; Tap is fed from inside an embedded
// broker (mqtape serve). Both stamp each message on arrival, queue it without
// ever blocking the network goroutine for long, and let one writer goroutine
// store many messages per transaction. QoS 1/2 messages a Recorder receives
// are acknowledged to the broker once they are in the session's spool (see
// pipeline), so a killed recorder never loses a message the broker
// considers delivered, and the broker's in-flight window never waits for a
// commit.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
)

// Subscriber is the connected client the recorder needs.
type Subscriber interface {
	Subscribe(ctx context.Context, subs []mqtt.Subscription) ([]byte, error)
	Disconnect(quiesce time.Duration)
}

// Dialer connects to the broker with the recorder's handlers installed
// (they must be in place before the first message can arrive).
type Dialer func(ctx context.Context, h mqtt.Handlers) (Subscriber, error)

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
	Filters  []mqtt.Subscription // default: '#' at QoS 2 (Recorder only)
	Sys      bool                // also record $SYS/# (Recorder only)
	Count    int64               // stop after this many messages (0: no limit)
	Duration time.Duration       // stop after this long (0: no limit)
	// FlushInterval bounds how long a received message waits before it is
	// committed (default 100 ms).
	FlushInterval time.Duration
	BatchSize     int   // messages per transaction at most (default 4096)
	QueueLen      int   // messages waiting for the writer at most (default 32768)
	QueueBytes    int64 // payload bytes waiting for the writer at most (default 16 MiB)
	// Session describes the recording; StartedNS is set when it starts.
	Session storage.SessionInfo
	// Split, when set, rotates the recording into parts (Recorder only).
	Split *Split
	// Snapshot configures a trigger-snapshot recording (NewSnapshotter).
	Snapshot *Snapshot
}

func (c *Config) defaults() {
	if len(c.Filters) == 0 {
		c.Filters = []mqtt.Subscription{{Filter: "#", QoS: 2}}
	}
	if c.Sys {
		c.Filters = append(c.Filters, mqtt.Subscription{Filter: "$SYS/#", QoS: c.Filters[0].QoS})
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 4096
	}
	// The queue absorbs bursts while a batch commits; beyond it the
	// recorder pushes back on the broker rather than grow (RSS stays
	// well under 150 MB).
	if c.QueueLen <= 0 {
		c.QueueLen = 1 << 15
	}
	if c.QueueBytes <= 0 {
		// Four full batches of 1 KiB messages: enough to keep reading
		// while the writer commits, small enough that the heap (and the
		// collector's work) stays small (see tuneMemory in main).
		c.QueueBytes = 16 << 20
	}
}

// Stats is a live snapshot of a recording.
type Stats struct {
	Received      int64 // messages received
	Stored        int64 // messages committed to the capture
	Bytes         int64 // payload bytes committed
	Topics        int64 // distinct topics committed
	Dropped       int64 // messages received but not stored (queue overflow)
	Reconnects    int64
	BrokerDropped int64 // messages the broker reports it dropped since start
	BrokerCounts  bool  // the broker reports its dropped messages ($SYS)
	Duplicates    int64 // redeliveries of messages already in the capture, not stored again
	Connected     bool
	Started       time.Time
	Part          string     // the part being written (split recordings)
	Ring          *RingStats // trigger-snapshot recordings only
}

// Result summarises a finished recording.
type Result struct {
	Stats
	SessionID  int64
	StopReason string
	Ended      time.Time
	Filters    []storage.Filter
	Parts      []PartInfo // the parts written, in order (split recordings)
}

// Recorder records one session as a subscriber. Create it with New, then
// call Run once.
type Recorder struct {
	*pipeline
	capture *storage.Capture
	dial    Dialer

	reconnects, brokerDropped atomic.Int64
	connected                 atomic.Bool

	mu      sync.Mutex
	lostAt  time.Time
	sysBase int64 // first value of the broker's dropped counter; -1 before it
	resub   func()

	// MQTT 5 with retain-as-published: retain=1 no longer tells the
	// broker's retained store from live retained publishes. The store's
	// messages come in a burst right after each (re)subscribe, one per
	// topic: the burst ends at the first retain=0 message, a second
	// message on a topic, or 200 ms without a message.
	burst storeBurst

	// sysSeen counts values of the broker's dropped counter received;
	// sysUpdate wakes sysDroppedAtStop for each.
	sysSeen   atomic.Int64
	sysUpdate chan struct{}

	offFilter atomic.Int64 // messages outside every filter (a broker bug, e.g. '$' topics to '#')

	// With a persistent session, the broker redelivers (DUP=1) what it sent
	// before the last run stopped and never saw acknowledged; some of it may
	// already be in the capture (committed, then killed before the PUBACK
	// left). recent holds the previous session's last messages to spot them.
	recent     map[dupKey]bool
	duplicates atomic.Int64

	split *splitter // nil: one capture
}

type dupKey struct {
	packetID uint16
	topic    string
	sum      uint64
}

func keyOf(packetID uint16, topic string, payload []byte) dupKey {
	h := fnv.New64a()
	h.Write(payload)
	return dupKey{packetID, topic, h.Sum64()}
}

// recentWindow is how many of the previous session's last messages are
// checked against redeliveries: more than can be committed but not yet
// acknowledged (one batch).
const recentWindow = 8192

// loadRecent remembers the last messages of the newest earlier session of
// the same client id (persistent sessions only).
func (r *Recorder) loadRecent(ctx context.Context) error {
	sessions, err := r.capture.Sessions(ctx)
	if err != nil {
		return err
	}
	var prev int64
	for _, s := range sessions {
		if s.ClientID == r.cfg.Session.ClientID && s.Source == "subscriber" {
			prev = s.ID
		}
	}
	if prev == 0 {
		return nil
	}
	r.recent = make(map[dupKey]bool)
	for m, err := range r.capture.Messages(ctx, storage.Query{Session: prev, Desc: true, Limit: recentWindow}) {
		if err != nil {
			return err
		}
		if m.QoS > 0 {
			r.recent[keyOf(m.PacketID, m.Topic, m.Payload)] = true
		}
	}
	return nil
}

// New prepares a recorder writing into capture.
func New(capture *storage.Capture, dial Dialer, cfg Config) *Recorder {
	cfg.defaults()
	return &Recorder{pipeline: newPipeline(cfg), capture: capture, dial: dial, sysBase: -1, sysUpdate: make(chan struct{}, 1)}
}

// Stats returns a live snapshot; safe to call from any goroutine.
func (r *Recorder) Stats() Stats {
	return Stats{Received: r.received.Load(), Stored: r.stored.Load(), Bytes: r.bytes.Load(),
		Topics: r.topics.Load(), Dropped: r.dropped.Load(), Reconnects: r.reconnects.Load(),
		BrokerDropped: r.brokerDropped.Load(), BrokerCounts: r.sysSeen.Load() > 0, Duplicates: r.duplicates.Load(), Connected: r.connected.Load(), Started: r.start,
		Part: r.partPath()}
}

func (r *Recorder) partPath() string {
	if c := r.currentPart().capture; c != nil && r.split != nil {
		return c.Path()
	}
	return ""
}

// onMessage runs on the MQTT client's network goroutine: stamp and queue.
func (r *Recorder) onMessage(m mqtt.Message) {
	ts, off := r.stamp()
	if m.Topic == sysDropped {
		r.watchBrokerDrops(m)
	}
	if !r.subscribed(m.Topic) {
		if m.Topic != sysDropped && r.offFilter.Add(1) == 1 {
			// E.g. NATS delivers its '$JS/...' topics to '#', against MQTT
			// 4.7.2. Not recorded; said once.
			r.event(storage.EventOffFilter, fmt.Sprintf("the broker sent %q, which matches none of the subscribed filters (MQTT 4.7.2: '#' and '+' do not match '$' topics); such messages are not recorded — use --sys or subscribe to them explicitly", m.Topic))
		}
		r.ackInOrder(m)
		return
	}
	if m.Dup && r.recent != nil && r.recent[keyOf(m.PacketID, m.Topic, m.Payload)] {
		// A redelivery of a message the last run committed: acknowledge it,
		// do not store it twice.
		if r.duplicates.Add(1) == 1 {
			r.event(storage.EventDuplicate, fmt.Sprintf("the broker redelivered %q (packet id %d), already in the capture from the previous session; redeliveries are acknowledged and not stored again", m.Topic, m.PacketID))
		}
		r.ackInOrder(m)
		return
	}
	fromStore := m.Retain // MQTT 3.1.1: only messages from the retained store carry retain=1
	if r.cfg.Session.Protocol == 5 {
		fromStore = r.burst.fromStore(m)
	}
	it := item{m: storage.Message{TimeNS: ts, OffsetNS: off, Topic: m.Topic, QoS: m.QoS, Retain: m.Retain,
		FromStore: fromStore, Dup: m.Dup, PacketID: m.PacketID, Payload: m.Payload, Props: m.Props}}
	if m.QoS > 0 {
		it.ack = m.Ack
	}
	// Not offered (stopping, or beyond --count): not acknowledged, so a
	// persistent session gets it again next time.
	r.offer(it)
}

// storeBurst tells, under MQTT 5 with retain-as-published, the broker's
// retained store from live retained publishes (see Recorder.burst).
type storeBurst struct {
	mu     sync.Mutex
	in     bool
	topics map[string]bool
	last   time.Time
}

// start is called before each (re)subscribe.
func (b *storeBurst) start() {
	b.mu.Lock()
	b.in, b.topics, b.last = true, make(map[string]bool), time.Now()
	b.mu.Unlock()
}

// fromStore reports whether m is part of the burst from the retained store.
func (b *storeBurst) fromStore(m mqtt.Message) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.in {
		return false
	}
	now := time.Now()
	if !m.Retain || b.topics[m.Topic] || now.Sub(b.last) > 200*time.Millisecond {
		b.in = false
		return false
	}
	b.topics[m.Topic], b.last = true, now
	return true
}

// subscribed reports whether name matches a subscribed filter.
func (r *Recorder) subscribed(name string) bool {
	for _, f := range r.cfg.Filters {
		if topic.Match(f.Filter, name) {
			return true
		}
	}
	return false
}

func (r *Recorder) watchBrokerDrops(m mqtt.Message) {
	v, err := strconv.ParseInt(string(m.Payload), 10, 64)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		r.sysSeen.Add(1)
		select {
		case r.sysUpdate <- struct{}{}:
		default:
		}
	}()
	if r.sysBase < 0 {
		r.sysBase = v
		return
	}
	if d := v - r.sysBase; d > r.brokerDropped.Load() {
		r.brokerDropped.Store(d)
		r.event(storage.EventBrokerDropped, fmt.Sprintf("the broker reports %s dropped since recording started (%s)", humanize.Count(d, "message", "messages"), sysDropped))
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

// Run records until ctx is cancelled, the duration or count is reached, or
// writing fails. It always ends the session cleanly when it can. A
// cancelled ctx is a normal stop (StopInterrupted), not an error. When the
// broker cannot be reached no session is created (Result.SessionID is 0).
func (r *Recorder) Run(ctx context.Context) (Result, error) {
	info, err := r.prepare(ctx)
	if err != nil {
		return Result{}, err
	}
	client, err := r.connect(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Result{StopReason: StopInterrupted}, nil
		}
		return Result{StopReason: StopError}, err
	}
	defer client.Disconnect(250 * time.Millisecond)
	rec, err := r.beginRecording(ctx, client, info)
	if rec == nil {
		return Result{}, err
	}
	if err != nil {
		return rec.res, err
	}
	if err := rec.subscribe(); err != nil {
		switch {
		case ctx.Err() != nil:
			return rec.finish(StopInterrupted, nil)
		case errors.Is(err, mqtt.ErrSubscribeDenied):
			return rec.finish(StopDenied, err)
		}
		return rec.finish(StopError, err)
	}
	return rec.finish(rec.waitForStop())
}

// prepare starts the clock of the recording and returns the session's
// description; a persistent session loads the previous session's last
// messages (see loadRecent).
func (r *Recorder) prepare(ctx context.Context) (storage.SessionInfo, error) {
	r.start = time.Now()
	info := r.cfg.Session
	for _, f := range r.cfg.Filters {
		info.Filters = append(info.Filters, storage.Filter{Filter: f.Filter, QoS: f.QoS, Granted: -1})
	}
	if !r.cfg.Session.CleanSession {
		if err := r.loadRecent(ctx); err != nil {
			return info, fmt.Errorf("%w: %w", ErrWriter, err)
		}
	}
	return info, nil
}

// connect dials the broker. It connects before the session exists: a
// broker that cannot be reached leaves no empty session behind. It accepts
// messages from the start all the same: a persistent session's queued
// messages arrive right after CONNACK, before anything is subscribed; they
// wait in the queue. On an error intake is stopped again.
func (r *Recorder) connect(ctx context.Context) (Subscriber, error) {
	r.accepting.Store(true)
	h := mqtt.Handlers{Message: r.onMessage, Connected: r.onConnected, Lost: r.onLost}
	client, err := r.dial(ctx, h)
	if err != nil {
		r.stopIntake()
		return nil, err
	}
	return client, nil
}

// recording is a Run once its session has begun.
type recording struct {
	r      *Recorder
	ctx    context.Context
	client Subscriber
	sess   *storage.Session
	wk     *workers
	res    Result // Filters guarded by Recorder.mu (a re-subscribe sets them)
}

// beginRecording begins the session, starts the workers, records the
// connection and installs the re-subscription after a reconnect. When the
// session cannot begin it returns nil (queued messages stay
// unacknowledged: a persistent session gets them again); when the workers
// cannot start, the ended session's recording and the error.
func (r *Recorder) beginRecording(ctx context.Context, client Subscriber, info storage.SessionInfo) (*recording, error) {
	sess, err := r.begin(ctx, r.capture, info)
	if err != nil {
		r.stopIntake()
		return nil, err
	}
	rec := &recording{r: r, ctx: ctx, client: client, sess: sess, res: Result{SessionID: sess.ID()}}
	flush, _ := client.(ackFlusher)
	if r.cfg.Split != nil {
		r.split = newSplitter(*r.cfg.Split, r.capture, r.clock.Now(), rec.partInfo(info), r.event)
		r.event(storage.EventSplit, r.split.firstEvent())
	}
	if rec.wk, err = startWorkers(ctx, r.pipeline, r.capture, sess, flush, r.split); err != nil {
		r.stopIntake()
		return rec, r.end(context.WithoutCancel(ctx), sess, StopError, err)
	}
	r.connected.Store(true)
	r.event(storage.EventConnected, info.Broker)
	r.mu.Lock()
	r.resub = rec.resubscribe
	r.mu.Unlock()
	return rec, nil
}

// subscribe subscribes to the filters (and the broker's dropped counter)
// and records what the broker granted. It fails with
// mqtt.ErrSubscribeDenied when every filter was refused.
func (rec *recording) subscribe() error {
	r := rec.r
	subs := append([]mqtt.Subscription(nil), r.cfg.Filters...)
	for i := range subs {
		// MQTT 5: keep the publisher's retain flag (ignored by 3.1.1).
		subs[i].RetainAsPublished = true
	}
	r.burst.start()
	if !r.subscribed(sysDropped) {
		subs = append(subs, mqtt.Subscription{Filter: sysDropped, QoS: 0})
	}
	granted, err := rec.client.Subscribe(rec.ctx, subs)
	if err != nil {
		return err
	}
	filters, refused := grantedFilters(r.cfg.Filters, granted, r.event)
	r.mu.Lock()
	rec.res.Filters = filters
	r.mu.Unlock()
	if err := r.currentPart().sess.SetFilters(context.WithoutCancel(rec.ctx), filters); err != nil {
		return fmt.Errorf("%w: %w", ErrWriter, err)
	}
	return refused
}

// resubscribe runs after a reconnect: with a clean session the broker
// forgot the subscriptions; its retained messages arrive again
// (from_store=1).
func (rec *recording) resubscribe() {
	go func() {
		if err := rec.subscribe(); err != nil && rec.ctx.Err() == nil {
			rec.r.event(storage.EventSubscribeDeny, "re-subscribe after reconnect failed: "+err.Error())
		}
	}()
}

// waitForStop waits for the stop: ctx cancelled, Duration or Count reached,
// or a worker failed (finish then gets the error from workers.stop). It
// returns the stop's reason and a nil error, finish's arguments.
func (rec *recording) waitForStop() (string, error) {
	var timeout <-chan time.Time
	if rec.r.cfg.Duration > 0 {
		t := time.NewTimer(rec.r.cfg.Duration - time.Since(rec.r.start))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-rec.ctx.Done():
		return StopInterrupted, nil
	case <-timeout:
		return StopDuration, nil
	case <-rec.r.countHit:
		return StopCount, nil
	case <-rec.wk.failed:
		return StopError, nil
	}
}

// finish stops intake and the workers, reads the broker's dropped counter
// once more and ends the session.
func (rec *recording) finish(reason string, runErr error) (Result, error) {
	r, ctx := rec.r, rec.ctx
	r.stopIntake()
	if err := rec.wk.stop(); err != nil && runErr == nil {
		runErr, reason = err, StopError
	}
	if r.split != nil {
		r.split.closing.Wait() // parts still being ended
	}
	if runErr != nil && reason != StopDenied {
		r.event(storage.EventStopped, runErr.Error())
	}
	r.sysDroppedAtStop(ctx, rec.client)
	last := r.currentPart()
	runErr = r.end(context.WithoutCancel(ctx), last.sess, reason, runErr)
	if last.capture != r.capture {
		// A part the writer opened: closed here (the caller closes its own).
		if err := last.capture.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("%w: %w", ErrWriter, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rec.res.Stats, rec.res.StopReason, rec.res.Ended = r.Stats(), reason, time.Now()
	if r.split != nil {
		rec.res.Parts = r.split.snapshot()
	}
	return rec.res, runErr
}

// partInfo returns the description of the next part's session: the
// recording's, with the filters as the broker granted them.
func (rec *recording) partInfo(base storage.SessionInfo) func() storage.SessionInfo {
	return func() storage.SessionInfo {
		info := base
		rec.r.mu.Lock()
		if rec.res.Filters != nil {
			info.Filters = append([]storage.Filter(nil), rec.res.Filters...)
		}
		rec.r.mu.Unlock()
		return info
	}
}

// grantedFilters describes the subscriptions as the broker granted them,
// recording a subscribed or subscribe_denied event for each; the error
// says the broker refused every one (SUBACK 0x80).
func grantedFilters(subs []mqtt.Subscription, granted []byte, event func(kind, detail string)) ([]storage.Filter, error) {
	var filters []storage.Filter
	ok := 0
	for i, f := range subs {
		filters = append(filters, storage.Filter{Filter: f.Filter, QoS: f.QoS, Granted: int(granted[i])})
		if granted[i] == 0x80 {
			event(storage.EventSubscribeDeny, fmt.Sprintf("%s (SUBACK 0x80)", f.Filter))
		} else {
			ok++
			event(storage.EventSubscribed, fmt.Sprintf("%s granted QoS %d", f.Filter, granted[i]))
		}
	}
	if ok == 0 {
		return filters, fmt.Errorf("%w: the broker refused every topic filter (SUBACK 0x80)", mqtt.ErrSubscribeDenied)
	}
	return filters, nil
}
