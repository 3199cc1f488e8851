package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
)

// Snapshot configures a trigger-snapshot recording (record --ring): the
// last Ring of messages is kept in memory and nothing is written until a
// message matches Trigger (or Manual fires); then one part is written
// holding the ring and everything for Post after the trigger (a trigger
// inside the post-window extends it), and the ring starts filling again.
//
// Messages are acknowledged as they enter the ring: a snapshot recorder
// trades the kill -9 guarantee of a plain recording for memory. Messages of
// a post-window are acknowledged once committed to their part.
type Snapshot struct {
	Ring     time.Duration // how much traffic the ring keeps
	RingSize int64         // bytes (payload + topic) the ring holds at most (default 256 MiB)
	Post     time.Duration // how long after a trigger the part goes on
	Trigger  func(m *storage.Message) bool
	Manual   <-chan struct{} // each receive triggers by hand (SIGUSR1)
	// Pattern names the parts (storage.NextPartName, from First);
	// Recording is the id they share.
	Pattern   string
	First     int
	Recording string
	// Setup, when set, prepares each part before its first row (compression,
	// decoders).
	Setup func(ctx context.Context, c *storage.Capture) error
}

// DefaultRingSize is --ring-size's default.
const DefaultRingSize = 256 << 20

// RingStats is the live state of a snapshot recording.
type RingStats struct {
	Messages, Bytes, Size int64 // in the ring; Size is its limit
	Evicted               int64 // dropped from the ring (too old or --ring-size), never written
	Snapshots             int64 // parts finished
	Capturing             bool  // a post-window is running
}

// arrival is a received message on its way to the snapshot loop.
type arrival struct {
	m       storage.Message
	ack     func()
	ackOnly bool // outside the filters: acknowledged in turn, not kept
}

// Snapshotter runs a trigger-snapshot recording. Create it with
// NewSnapshotter, then call Run once.
type Snapshotter struct {
	cfg   Config
	snap  Snapshot
	dial  Dialer
	clock clock
	burst storeBurst

	in               chan arrival
	lastTS           atomic.Int64 // newest stamp handed out
	stamped, handled atomic.Int64 // messages stamped by onMessage, taken by the loop
	connected        atomic.Bool
	reconnects       atomic.Int64
	ringMsgs         atomic.Int64
	ringBytes        atomic.Int64
	evicted          atomic.Int64
	snapshots        atomic.Int64
	capturing        atomic.Bool
	stored, bytes    atomic.Int64
	start            time.Time

	mu      sync.Mutex
	events  []storage.Event // waiting for the next part (or the running one)
	parts   []PartInfo
	filters []storage.Filter
	resub   func()

	// Owned by the loop.
	ring []storage.Message
	head int
	base storage.RetainedState // the retained state before the ring's first message
	part *snapPart             // the part being written, nil when armed
	next int                   // the next part number to try
}

// snapPart is a snapshot being written.
type snapPart struct {
	capture   *storage.Capture
	sess      *storage.Session
	number    int
	startNS   int64 // its session's start (the ring's first message)
	postUntil int64 // Unix ns
	batch     []storage.Message
	acks      []func()
	triggers  []storage.SnapshotEvent // to record once their messages have a seq
	trigIdx   []int                   // index in batch of each trigger's message (-1: manual)
}

// NewSnapshotter prepares a trigger-snapshot recording.
func NewSnapshotter(dial Dialer, cfg Config) *Snapshotter {
	cfg.defaults()
	if cfg.Snapshot.RingSize <= 0 {
		cfg.Snapshot.RingSize = DefaultRingSize
	}
	if cfg.Snapshot.First <= 0 {
		cfg.Snapshot.First = 1
	}
	return &Snapshotter{cfg: cfg, snap: *cfg.Snapshot, dial: dial, clock: realClock{},
		in: make(chan arrival, 4096), next: cfg.Snapshot.First}
}

// Stats returns a live snapshot; safe to call from any goroutine.
func (s *Snapshotter) Stats() Stats {
	s.mu.Lock()
	part := ""
	if n := len(s.parts); n > 0 {
		part = s.parts[n-1].Path
	}
	s.mu.Unlock()
	return Stats{Received: s.stamped.Load(), Stored: s.stored.Load(), Bytes: s.bytes.Load(),
		Reconnects: s.reconnects.Load(), Connected: s.connected.Load(), Started: s.start, Part: part,
		Ring: &RingStats{Messages: s.ringMsgs.Load(), Bytes: s.ringBytes.Load(), Size: s.snap.RingSize,
			Evicted: s.evicted.Load(), Snapshots: s.snapshots.Load(), Capturing: s.capturing.Load()}}
}

// stamp returns the wall time of now, later than every stamp before.
func (s *Snapshotter) stamp() int64 {
	ts := s.clock.Now().UnixNano()
	for {
		last := s.lastTS.Load()
		if ts <= last {
			ts = last + 1
		}
		if s.lastTS.CompareAndSwap(last, ts) {
			return ts
		}
	}
}

func (s *Snapshotter) event(kind, detail string) {
	ts := s.stamp()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) >= 1000 {
		s.events = s.events[1:] // armed for long: the oldest go
	}
	s.events = append(s.events, storage.Event{TimeNS: ts, Kind: kind, Detail: detail})
}

// onMessage runs on the client's network goroutine: stamp and hand over
// (waiting while the loop is behind: TCP pushes back on the broker).
func (s *Snapshotter) onMessage(m mqtt.Message) {
	ts := s.stamp()
	if !s.subscribed(m.Topic) {
		if m.QoS > 0 && m.Ack != nil {
			s.stamped.Add(1)
			s.in <- arrival{ack: m.Ack, ackOnly: true}
		}
		return
	}
	fromStore := m.Retain
	if s.cfg.Session.Protocol == 5 {
		fromStore = s.burst.fromStore(m)
	}
	a := arrival{m: storage.Message{TimeNS: ts, Topic: m.Topic, QoS: m.QoS, Retain: m.Retain, FromStore: fromStore,
		Dup: m.Dup, PacketID: m.PacketID, Payload: m.Payload, Props: m.Props}}
	if m.QoS > 0 {
		a.ack = m.Ack
	}
	s.stamped.Add(1)
	s.in <- a
}

func (s *Snapshotter) subscribed(name string) bool {
	for _, f := range s.cfg.Filters {
		if topic.Match(f.Filter, name) {
			return true
		}
	}
	return false
}

// Run records until ctx is cancelled or Duration is reached. A snapshot
// being written when it stops is finished with what it has. A cancelled
// ctx is a normal stop.
func (s *Snapshotter) Run(ctx context.Context) (Result, error) {
	s.start = s.clock.Now()
	h := mqtt.Handlers{Message: s.onMessage, Connected: s.onConnected, Lost: s.onLost}
	client, err := s.dial(ctx, h)
	if err != nil {
		if ctx.Err() != nil {
			return Result{StopReason: StopInterrupted}, nil
		}
		return Result{StopReason: StopError}, err
	}
	defer client.Disconnect(250 * time.Millisecond)
	s.connected.Store(true)
	s.event(storage.EventConnected, s.cfg.Session.Broker)
	resub := func() error { return s.subscribe(ctx, client) }
	s.mu.Lock()
	s.resub = func() {
		go func() {
			if err := resub(); err != nil && ctx.Err() == nil {
				s.event(storage.EventSubscribeDeny, "re-subscribe after reconnect failed: "+err.Error())
			}
		}()
	}
	s.mu.Unlock()
	reason := StopInterrupted
	if err = resub(); err == nil {
		reason, err = s.loop(ctx)
	} else if errors.Is(err, mqtt.ErrSubscribeDenied) {
		reason = StopDenied
	} else if ctx.Err() == nil {
		reason = StopError
	}
	if s.part != nil {
		err = errors.Join(err, s.finishPart(reason, err))
	}
	res := Result{Stats: s.Stats(), StopReason: reason, Ended: s.clock.Now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	res.Filters, res.Parts = s.filters, append([]PartInfo(nil), s.parts...)
	return res, err
}

func (s *Snapshotter) subscribe(ctx context.Context, client Subscriber) error {
	subs := append([]mqtt.Subscription(nil), s.cfg.Filters...)
	for i := range subs {
		subs[i].RetainAsPublished = true // MQTT 5 (ignored by 3.1.1)
	}
	s.burst.start()
	granted, err := client.Subscribe(ctx, subs)
	if err != nil {
		return err
	}
	filters, refused := grantedFilters(s.cfg.Filters, granted, s.event)
	s.mu.Lock()
	s.filters = filters
	s.mu.Unlock()
	return refused
}

func (s *Snapshotter) onConnected(reconnect bool) {
	s.connected.Store(true)
	if !reconnect {
		return
	}
	s.reconnects.Add(1)
	s.event(storage.EventReconnected, "")
	s.mu.Lock()
	resub := s.resub
	s.mu.Unlock()
	if resub != nil {
		resub()
	}
}

func (s *Snapshotter) onLost(err error) {
	s.connected.Store(false)
	s.event(storage.EventConnectionLost, err.Error())
}

// loop owns the ring and the part being written.
func (s *Snapshotter) loop(ctx context.Context) (string, error) {
	tick := s.clock.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	post := s.clock.NewTimer(time.Hour)
	post.Stop()
	defer post.Stop()
	var timeout <-chan time.Time
	if s.cfg.Duration > 0 {
		t := s.clock.NewTimer(s.cfg.Duration)
		defer t.Stop()
		timeout = t.Chan()
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return StopInterrupted, nil
		case <-timeout:
			return StopDuration, nil
		case a := <-s.in:
			err = s.take(ctx, a, post)
		case <-s.snap.Manual:
			err = s.trigger(ctx, -1, s.stamp(), post)
		case <-tick.Chan():
			if s.part != nil {
				err = s.flush(ctx)
			} else {
				s.evict(s.clock.Now().UnixNano()) // quiet traffic: the ring still ages
			}
		case <-post.Chan():
			err = s.postEnded(ctx, post)
		}
		if err != nil {
			return StopError, err
		}
	}
}

// take handles one received message.
func (s *Snapshotter) take(ctx context.Context, a arrival, post clockTimer) error {
	defer s.handled.Add(1) // once handled: tests wait for it
	if a.m.Topic == "" {   // only to acknowledge
		return s.ack(a.ack)
	}
	if s.part != nil && a.m.TimeNS > s.part.postUntil {
		if err := s.finishPart("", nil); err != nil {
			return err
		}
	}
	if s.part != nil {
		s.part.batch = append(s.part.batch, a.m)
		if a.ack != nil {
			s.part.acks = append(s.part.acks, a.ack)
		}
		if s.snap.Trigger(&s.part.batch[len(s.part.batch)-1]) {
			return s.trigger(ctx, len(s.part.batch)-1, a.m.TimeNS, post)
		}
		return nil
	}
	s.push(a.m)
	if a.ack != nil {
		a.ack() // in the ring: acknowledged now (nothing is waiting before it)
	}
	if s.snap.Trigger(&s.ring[len(s.ring)-1]) {
		return s.trigger(ctx, len(s.ring)-1-s.head, a.m.TimeNS, post)
	}
	return nil
}

// ack acknowledges in turn: after the messages of the part not yet
// committed.
func (s *Snapshotter) ack(ack func()) error {
	if ack == nil {
		return nil
	}
	if s.part != nil {
		s.part.acks = append(s.part.acks, ack)
		return nil
	}
	ack()
	return nil
}

// push adds m to the ring and evicts what is too old or beyond the size.
func (s *Snapshotter) push(m storage.Message) {
	s.ring = append(s.ring, m)
	s.ringMsgs.Add(1)
	s.ringBytes.Add(ringCost(&m))
	s.evict(m.TimeNS)
}

func ringCost(m *storage.Message) int64 { return int64(len(m.Payload) + len(m.Topic)) }

// evict drops the ring's messages older than Ring before now, and the
// oldest while it holds more than RingSize; the retained state follows.
func (s *Snapshotter) evict(now int64) {
	limit := now - int64(s.snap.Ring)
	// The newest message stays even when it alone is over RingSize (it
	// may be the trigger).
	for s.head < len(s.ring) && (s.ring[s.head].TimeNS < limit || (s.ringBytes.Load() > s.snap.RingSize && s.head < len(s.ring)-1)) {
		m := &s.ring[s.head]
		s.base.Observe(m)
		s.ringMsgs.Add(-1)
		s.ringBytes.Add(-ringCost(m))
		s.evicted.Add(1)
		*m = storage.Message{}
		s.head++
	}
	if s.head > 1024 && s.head*2 > len(s.ring) {
		s.ring = append(s.ring[:0:0], s.ring[s.head:]...)
		s.head = 0
	}
}

// trigger starts a snapshot, or extends the running one. idx is the
// triggering message's index in the ring (armed) or the part's batch
// (-1: by hand); at is the trigger's time.
func (s *Snapshotter) trigger(ctx context.Context, idx int, at int64, post clockTimer) error {
	reason := "trigger"
	if idx < 0 {
		reason = "manual"
	}
	if s.part == nil {
		if err := s.openPart(ctx, at); err != nil {
			return err
		}
	}
	s.part.postUntil = at + int64(s.snap.Post)
	s.part.triggers = append(s.part.triggers, storage.SnapshotEvent{Reason: reason, PostUntilNS: s.part.postUntil, Evicted: s.evicted.Load()})
	s.part.trigIdx = append(s.part.trigIdx, idx)
	post.Reset(time.Duration(s.part.postUntil - s.clock.Now().UnixNano()))
	return nil
}

// openPart creates the next part with the retained state as of the ring's
// first message and moves the ring into its batch (committed at the next
// flush).
func (s *Snapshotter) openPart(ctx context.Context, at int64) error {
	ctx = context.WithoutCancel(ctx) // a part once begun is finished
	s.evict(at)
	ring := s.ring[s.head:]
	startNS := at - 1 // the carried retained rows come just before the first message
	if len(ring) > 0 {
		startNS = ring[0].TimeNS - 1
	}
	name, n := storage.NextPartName(s.snap.Pattern, s.next, time.Unix(0, startNS))
	info := s.cfg.Session
	info.StartedNS = startNS
	for _, f := range s.currentFilters() {
		info.Filters = append(info.Filters, f)
	}
	c, sess, err := storage.PreparePart(ctx, name, info)
	if err != nil {
		return fmt.Errorf("%w: start snapshot: %w", ErrWriter, err)
	}
	if s.snap.Setup != nil {
		err = s.snap.Setup(ctx, c)
	}
	if err == nil {
		// No previous part: snapshots are not contiguous, so the carried
		// state may hold what no other part has (readers keep it).
		err = storage.StartPart(ctx, sess, storage.PartStart{Recording: s.snap.Recording, Number: n,
			Retained: s.base.Messages()}, startNS)
	}
	if err != nil {
		c.Close()
		storage.RemoveCapture(name)
		return fmt.Errorf("%w: start snapshot %s: %w", ErrWriter, name, err)
	}
	s.next = n + 1
	s.part = &snapPart{capture: c, sess: sess, number: n, startNS: startNS, batch: append([]storage.Message(nil), ring...)}
	s.ring, s.head = nil, 0
	s.ringMsgs.Store(0)
	s.ringBytes.Store(0)
	s.capturing.Store(true)
	s.mu.Lock()
	s.parts = append(s.parts, PartInfo{Path: name})
	s.mu.Unlock()
	return nil
}

func (s *Snapshotter) currentFilters() []storage.Filter {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]storage.Filter(nil), s.filters...)
}

// flush commits the part's batch and the events since, then acknowledges
// its messages in order. The "snapshot" events of the triggers in the
// batch follow, with their messages' seq.
func (s *Snapshotter) flush(ctx context.Context) error {
	p := s.part
	ctx = context.WithoutCancel(ctx)
	for i := range p.batch {
		p.batch[i].OffsetNS = p.batch[i].TimeNS - p.startNS
		s.base.Observe(&p.batch[i])
	}
	if err := p.sess.Write(ctx, p.batch, s.takeEvents(p.startNS), s.stamp()); err != nil {
		return fmt.Errorf("%w: %w", ErrWriter, err)
	}
	var events []storage.Event
	for i, t := range p.triggers {
		if j := p.trigIdx[i]; j >= 0 {
			t.Seq, t.Topic = p.batch[j].Seq, p.batch[j].Topic
		}
		d, _ := json.Marshal(t)
		events = append(events, storage.Event{TimeNS: t.PostUntilNS - int64(s.snap.Post),
			OffsetNS: t.PostUntilNS - int64(s.snap.Post) - p.startNS, Kind: storage.EventSnapshot, Detail: string(d)})
	}
	if len(events) > 0 {
		if err := p.sess.Write(ctx, nil, events, s.stamp()); err != nil {
			return fmt.Errorf("%w: %w", ErrWriter, err)
		}
	}
	for _, m := range p.batch {
		s.stored.Add(1)
		s.bytes.Add(int64(len(m.Payload)))
	}
	for _, ack := range p.acks {
		ack()
	}
	p.batch, p.acks, p.triggers, p.trigIdx = p.batch[:0], p.acks[:0], p.triggers[:0], p.trigIdx[:0]
	return nil
}

// takeEvents returns the events waiting, without those before from (they
// happened before the part's first message).
func (s *Snapshotter) takeEvents(from int64) []storage.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Event
	for _, e := range s.events {
		if e.TimeNS >= from {
			e.OffsetNS = e.TimeNS - from
			out = append(out, e)
		}
	}
	s.events = s.events[:0]
	return out
}

// postEnded runs when the post-window's timer fires: the messages stamped
// before it are taken first (they may still be on their way), then the part
// is finished unless a trigger among them extended it.
func (s *Snapshotter) postEnded(ctx context.Context, post clockTimer) error {
	for s.handled.Load() < s.stamped.Load() {
		if err := s.take(ctx, <-s.in, post); err != nil {
			return err
		}
	}
	if s.part == nil {
		return nil
	}
	if now := s.clock.Now().UnixNano(); now < s.part.postUntil {
		post.Reset(time.Duration(s.part.postUntil - now))
		return nil
	}
	return s.finishPart("", nil)
}

// finishPart commits the rest of the part and ends it: as a finished
// snapshot (reason ""), or with the recording's stop reason and error.
func (s *Snapshotter) finishPart(reason string, runErr error) error {
	p := s.part
	ctx := context.Background()
	err := s.flush(ctx)
	endNS := s.stamp()
	if reason == "" {
		reason = storage.StopSnapshot
	}
	if runErr != nil {
		err = errors.Join(err, p.sess.Write(ctx, nil, []storage.Event{{TimeNS: endNS, OffsetNS: endNS - p.startNS,
			Kind: storage.EventStopped, Detail: runErr.Error()}}, endNS))
	}
	err = errors.Join(err, p.sess.End(ctx, endNS, reason, 0), p.capture.Close())
	path := p.capture.Path()
	s.part = nil
	s.capturing.Store(false)
	s.snapshots.Add(1)
	if err != nil {
		return fmt.Errorf("%w: finish snapshot %s: %w", ErrWriter, path, err)
	}
	return nil
}
