// Package replay re-publishes a capture's messages with their original
// timing. Every message is scheduled against one absolute anchor on the
// monotonic clock,
//
//	deadline = anchor + (offset − offset₀) / speed
//
// so errors never add up: the Player sleeps until shortly before each
// deadline and then polls the clock (see Clock). Pausing, resuming and
// changing the speed re-anchor the schedule at the current position.
//
// The sessions of a multi-session capture play one after the other, each
// starting with its first selected message. Before a session's first
// message, the messages the broker sent from its retained store when the
// recording started are published with retain=1 (RetainedKeep), so the
// target broker starts from the same retained state, also when the
// selection starts mid-capture.
//
// A Player publishes through any Publisher (mqtt.Client is one) and
// reads any Source (*storage.Capture is one); its Clock is injectable, so
// tests can drive it under testing/synctest with a fake publisher.
package replay

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// Source is the capture the Player reads; *storage.Capture implements it.
type Source interface {
	Sessions(ctx context.Context) ([]storage.SessionInfo, error)
	Messages(ctx context.Context, q storage.Query) iter.Seq2[storage.Message, error]
}

// Publisher sends one message and returns its Token, which completes when
// the broker acknowledged it (QoS 1/2) or it was written (QoS 0).
// mqtt.Client implements it. Publish may block briefly but must not
// wait for the acknowledgement.
// A Publisher that also implements mqtt.PropsPublisher (the MQTT 5
// client) gets each message's recorded properties.
type Publisher interface {
	Publish(topic string, qos byte, retain bool, payload []byte) mqtt.Token
}

// RetainedMode says what happens to the messages a recording received from
// the broker's retained store when it subscribed.
type RetainedMode int

const (
	// RetainedKeep publishes them first, with retain=1, at the start of each
	// session (also when the selection starts later in the session).
	RetainedKeep RetainedMode = iota
	// RetainedSkip does not publish them.
	RetainedSkip
	// RetainedLive publishes them at their recorded time with retain=0,
	// like any other message, leaving the target's retained store alone.
	RetainedLive
)

var retainedNames = []string{"keep", "skip", "live"}

func (m RetainedMode) String() string {
	if m >= 0 && int(m) < len(retainedNames) {
		return retainedNames[m]
	}
	return fmt.Sprintf("RetainedMode(%d)", int(m))
}

// ParseRetainedMode reads "keep", "skip" or "live".
func ParseRetainedMode(s string) (RetainedMode, error) {
	for i, n := range retainedNames {
		if s == n {
			return RetainedMode(i), nil
		}
	}
	return 0, fmt.Errorf("retained mode %q: use keep, skip or live", s)
}

// Forever as Config.Loop repeats the selection until the context ends.
const Forever = -1

// DefaultMaxInflight is the default Config.MaxInflight.
const DefaultMaxInflight = 1000

// Config controls a replay. The zero Config plays every message once with
// the original timing, recorded QoS and retain flags.
type Config struct {
	// Query selects the messages: Match (topics), Session, FromOffset/
	// ToOffset (within each session), FromTime/ToTime. Desc is not allowed.
	Query storage.Query
	// Speed is the playback rate: 1 (or 0) keeps the original timing, 4 is
	// four times faster, 0.25 four times slower; math.Inf(1) publishes as
	// fast as the in-flight window allows.
	Speed float64
	// Loop is the number of passes over the selection (0 and 1: once), or
	// Forever.
	Loop int
	// MaxGap caps every gap between consecutive messages of a session
	// (capture time, before Speed applies); 0 keeps every gap.
	MaxGap time.Duration
	// Retained says what to do with messages from the retained store.
	Retained RetainedMode
	// OverrideQoS publishes every message at QoS instead of its recorded QoS.
	OverrideQoS bool
	QoS         byte
	// TopicPrefix is prepended to every topic, after Remap.
	TopicPrefix string
	// Remap rewrites topic prefixes; the first matching Old wins.
	Remap []Remap
	// MaxInflight bounds publishes whose Token has not completed (default
	// DefaultMaxInflight). The schedule waits only when it is full.
	MaxInflight int
	// AckTimeout bounds the wait for outstanding acknowledgements at the end
	// (default 10 s; 2 s at most once the context ended).
	AckTimeout time.Duration
	// Clock is the time source (default SystemClock{Spin: DefaultSpin}).
	Clock Clock
	// SparkplugRenumber rewrites the seq of Sparkplug B payloads to count
	// on from each edge node's NBIRTH as published (play --sparkplug-seq
	// renumber). A selection starting inside a session (--from) always
	// first publishes the Sparkplug births in force at its start.
	SparkplugRenumber bool
}

// Report is the fidelity report of a replay.
type Report struct {
	Published int64 // messages handed to the Publisher, retained restores included
	Restored  int64 // retained-state restores among them
	// PropsDropped counts published messages whose MQTT 5 properties were
	// not sent: the Publisher is not an mqtt.PropsPublisher (MQTT 3.1.1).
	PropsDropped int64
	Passes       int // passes started
	// Speed is the playback rate at the end (after SetSpeed); StartSpeed
	// the rate Run started with (Config.Speed).
	Speed, StartSpeed float64
	// Intended is the sum of the scheduled gaps between consecutive timed
	// publishes (capture gaps after MaxGap, divided by the speed); Actual is
	// the sum of the same gaps as they happened. Gaps across a pause, a
	// step, a speed change or a session boundary are left out of both.
	Intended, Actual time.Duration
	// Elapsed is Run's wall time, including the wait for the last acks.
	Elapsed time.Duration
	// Lateness of each timed publish against its deadline (none at max speed).
	Lateness Lateness
	// AckFailures counts tokens that completed with an error; Unacked those
	// still outstanding when Run stopped waiting (AckTimeout).
	AckFailures, Unacked int64
	// AckError is the first token error.
	AckError error
	// Interrupted: Run stopped because its context ended.
	Interrupted bool
}

// Drift is Actual − Intended: how much longer the replay took than the
// capture (at this speed).
func (r Report) Drift() time.Duration { return r.Actual - r.Intended }

// Progress is a live snapshot of a replay.
type Progress struct {
	Published, Restored int64
	Pass                int // 1-based; 0 before the first message
	// Position is the capture time played so far over all passes (after
	// MaxGap), comparable with Plan.Duration × passes.
	Position    time.Duration
	Speed       float64
	Paused      bool
	Lateness    time.Duration // of the latest timed publish
	InFlight    int
	AckFailures int64
}

// Player replays one selection of a capture. Create it with New, call Run
// once; the control methods (Pause, Resume, Step, SetSpeed) and Progress
// are safe to call from any goroutine while it runs.
type Player struct {
	src   Source
	pub   Publisher
	cfg   Config
	clock Clock
	rw    *rewriter

	started atomic.Bool
	wake    chan struct{}

	mu       sync.Mutex
	speed    float64
	paused   bool
	steps    int
	epoch    int           // bumped by every control change
	anchor   time.Time     // wall time of virtual offset v0
	v0       time.Duration // virtual offset (since the segment start) at anchor
	vnext    time.Duration // virtual offset of the message being scheduled
	inSeg    bool          // a segment is anchored
	donePos  time.Duration // capture time of the finished segments
	pass     int
	lastLate time.Duration
	win      *window

	published, restored, propsDropped atomic.Int64
	renumber                          *seqRenumber // nil unless SparkplugRenumber
}

// New checks cfg and prepares a Player.
func New(src Source, pub Publisher, cfg Config) (*Player, error) {
	switch {
	case src == nil || pub == nil:
		return nil, errors.New("replay: nil Source or Publisher")
	case math.IsNaN(cfg.Speed) || cfg.Speed < 0:
		return nil, fmt.Errorf("replay: speed %v must be positive", cfg.Speed)
	case cfg.Loop < Forever:
		return nil, fmt.Errorf("replay: loop %d: use a number of passes or Forever", cfg.Loop)
	case cfg.MaxGap < 0:
		return nil, fmt.Errorf("replay: negative max gap %s", cfg.MaxGap)
	case cfg.OverrideQoS && cfg.QoS > 2:
		return nil, fmt.Errorf("replay: QoS %d: must be 0, 1 or 2", cfg.QoS)
	case cfg.MaxInflight < 0:
		return nil, fmt.Errorf("replay: negative max in-flight %d", cfg.MaxInflight)
	case cfg.Retained < RetainedKeep || cfg.Retained > RetainedLive:
		return nil, fmt.Errorf("replay: unknown %v", cfg.Retained)
	case cfg.Query.Desc:
		return nil, errors.New("replay: the query must be in seq order (Desc is set)")
	}
	rw, err := newRewriter(cfg.TopicPrefix, cfg.Remap)
	if err != nil {
		return nil, err
	}
	if cfg.Speed == 0 {
		cfg.Speed = 1
	}
	if cfg.Loop == 0 {
		cfg.Loop = 1
	}
	if cfg.MaxInflight == 0 {
		cfg.MaxInflight = DefaultMaxInflight
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{Spin: DefaultSpin}
	}
	p := &Player{src: src, pub: pub, cfg: cfg, clock: cfg.Clock, rw: rw, speed: cfg.Speed,
		wake: make(chan struct{}, 1)}
	if cfg.SparkplugRenumber {
		p.renumber = &seqRenumber{next: map[string]uint64{}}
	}
	return p, nil
}

// Topic returns the name a recorded topic is published under (after Remap
// and TopicPrefix).
func (p *Player) Topic(t string) (string, error) { return p.rw.topic(t) }

func (p *Player) notify() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// vnowLocked is the virtual position at now, never past the message being
// scheduled.
func (p *Player) vnowLocked(now time.Time) time.Duration {
	if !p.inSeg || p.paused {
		return p.v0
	}
	if math.IsInf(p.speed, 1) {
		return p.vnext
	}
	v := p.v0 + time.Duration(float64(now.Sub(p.anchor))*p.speed)
	return min(max(v, p.v0), p.vnext)
}

// Pause stops publishing until Resume (or Step publishes one message).
func (p *Player) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		return
	}
	p.v0 = p.vnowLocked(p.clock.Now())
	p.paused = true
	p.epoch++
	p.notify()
}

// Resume continues from where Pause stopped, re-anchoring the schedule.
func (p *Player) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused {
		return
	}
	p.paused, p.steps = false, 0
	p.anchor = p.clock.Now()
	p.epoch++
	p.notify()
}

// TogglePause pauses or resumes and reports whether the Player is now paused.
func (p *Player) TogglePause() bool {
	p.mu.Lock()
	paused := p.paused
	p.mu.Unlock()
	if paused {
		p.Resume()
	} else {
		p.Pause()
	}
	return !paused
}

// Step publishes the next message now while paused; it does nothing
// otherwise.
func (p *Player) Step() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.steps++
		p.notify()
	}
}

// SetSpeed changes the playback rate (math.Inf(1): as fast as possible) and
// re-anchors the schedule at the current position.
func (p *Player) SetSpeed(speed float64) error {
	if math.IsNaN(speed) || speed <= 0 {
		return fmt.Errorf("replay: speed %v must be positive", speed)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clock.Now()
	p.v0 = p.vnowLocked(now)
	p.anchor = now
	p.speed = speed
	p.epoch++
	p.notify()
	return nil
}

// Speed returns the current playback rate.
func (p *Player) Speed() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.speed
}

// Progress returns a live snapshot.
func (p *Player) Progress() Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := Progress{Published: p.published.Load(), Restored: p.restored.Load(), Pass: p.pass, Speed: p.speed,
		Paused: p.paused, Lateness: p.lastLate, Position: p.donePos}
	if p.inSeg {
		pr.Position += p.vnowLocked(p.clock.Now())
	}
	if p.win != nil {
		pr.InFlight = p.win.inflight()
		pr.AckFailures = p.win.failures.Load()
	}
	return pr
}

// gap returns the virtual gap between two consecutive offsets of a session.
func (p *Player) gap(prev, off int64) time.Duration {
	g := time.Duration(max(off-prev, 0))
	if p.cfg.MaxGap > 0 && g > p.cfg.MaxGap {
		g = p.cfg.MaxGap
	}
	return g
}

// Run replays the selection and returns the fidelity report. It returns
// when every pass finished and the acknowledgements arrived (or
// AckTimeout passed), or early when ctx ends (the report then covers what
// was published, Interrupted is set and the error is ctx's). Publishing
// errors are counted in the report, not returned.
func (p *Player) Run(ctx context.Context) (Report, error) {
	if p.started.Swap(true) {
		return Report{}, errors.New("replay: Run called twice")
	}
	start := p.clock.Now()
	win := newWindow(p.cfg.MaxInflight)
	p.mu.Lock()
	p.win = win
	p.mu.Unlock()

	pctx, cancel := context.WithCancel(ctx)
	items := make(chan batch, 4)
	go p.produce(pctx, p.cfg.Loop, items)
	rep, err := p.consume(ctx, items, win)
	cancel()
	p.mu.Lock()
	if p.inSeg { // freeze the position where playing stopped
		p.donePos += p.vnowLocked(p.clock.Now())
		p.inSeg = false
	}
	p.mu.Unlock()
	for range items { // let the producer see the cancellation and finish
	}

	timeout := p.cfg.AckTimeout
	if ctx.Err() != nil {
		timeout = min(timeout, 2*time.Second)
	}
	actx, acancel := context.WithTimeout(context.Background(), timeout)
	rep.Unacked = win.close(actx)
	acancel()
	rep.AckFailures = win.failures.Load()
	rep.AckError = win.err()
	rep.Published, rep.Restored, rep.PropsDropped = p.published.Load(), p.restored.Load(), p.propsDropped.Load()
	rep.Elapsed = p.clock.Now().Sub(start)
	rep.StartSpeed, rep.Speed = p.cfg.Speed, p.Speed()
	if ctx.Err() != nil && (err == nil || errors.Is(err, ctx.Err())) {
		rep.Interrupted = true
		err = ctx.Err()
	}
	return rep, err
}

// consume publishes the produced items on schedule.
func (p *Player) consume(ctx context.Context, items <-chan batch, win *window) (rep Report, err error) {
	rep.Speed = p.cfg.Speed
	var lat histogram
	defer func() { rep.Lateness = lat.summary() }()
	var (
		anchored bool          // the current segment's schedule started
		restores bool          // the current segment published restores
		prevOff  int64         // offset of the previous timed message
		v        time.Duration // virtual offset of the current message
		prevPub  time.Time     // publish time of the previous timed message
		prevV    time.Duration
		prevEp   = -1 // control epoch of the previous timed publish; -1: none in this segment
	)
	for b := range items {
		for i := range b.items {
			it := &b.items[i]
			switch it.kind {
			case itemSegment:
				p.mu.Lock()
				if p.inSeg {
					p.donePos += v
				}
				p.inSeg = false
				p.pass = it.pass + 1
				p.mu.Unlock()
				rep.Passes = it.pass + 1
				anchored, restores, v, prevEp = false, false, 0, -1
			case itemRestore, itemBirth:
				if err := p.waitWhilePaused(ctx); err != nil {
					return rep, err
				}
				if err := p.publish(ctx, win, &it.m, it.kind == itemRestore || it.m.Retain); err != nil {
					return rep, err
				}
				if it.kind == itemRestore {
					p.restored.Add(1)
				}
				restores = true
			case itemTimed:
				if !anchored {
					if restores {
						// The retained state must be in place before live traffic.
						if err := win.drain(ctx); err != nil {
							return rep, err
						}
					}
					anchored, v = true, 0
					p.mu.Lock()
					p.inSeg, p.anchor, p.v0, p.vnext = true, p.clock.Now(), 0, 0
					p.mu.Unlock()
				} else {
					v += p.gap(prevOff, it.m.OffsetNS)
				}
				prevOff = it.m.OffsetNS
				deadline, measured, ep, sp, err := p.waitFor(ctx, v)
				if err != nil {
					return rep, err
				}
				retain := it.m.Retain
				if it.m.FromStore && p.cfg.Retained == RetainedLive {
					retain = false
				}
				if err := win.acquire(ctx); err != nil {
					return rep, err
				}
				now := p.clock.Now()
				if err := p.send(win, &it.m, retain); err != nil {
					return rep, err
				}
				if measured {
					late := now.Sub(deadline)
					lat.add(late)
					p.mu.Lock()
					p.lastLate = late
					p.mu.Unlock()
				}
				if prevEp == ep && ep >= 0 {
					if !math.IsInf(sp, 1) {
						rep.Intended += time.Duration(float64(v-prevV) / sp)
					}
					rep.Actual += now.Sub(prevPub)
				}
				prevPub, prevV, prevEp = now, v, ep
			}
		}
		if b.err != nil {
			return rep, b.err
		}
	}
	return rep, ctx.Err()
}

// waitFor blocks until the message at virtual offset v is due (or a step
// releases it). measured is false for steps and at max speed; ep and speed
// are the control epoch and speed the message was scheduled under.
func (p *Player) waitFor(ctx context.Context, v time.Duration) (deadline time.Time, measured bool, ep int, speed float64, err error) {
	spin := p.clock.SpinWindow()
	for {
		p.mu.Lock()
		p.vnext = v
		ep, speed = p.epoch, p.speed
		switch {
		case p.paused && p.steps > 0:
			p.steps--
			p.v0 = v
			p.epoch++
			p.mu.Unlock()
			return time.Time{}, false, -2, speed, nil
		case p.paused:
			p.mu.Unlock()
			select {
			case <-p.wake:
				continue
			case <-ctx.Done():
				return time.Time{}, false, 0, 0, ctx.Err()
			}
		case math.IsInf(p.speed, 1):
			p.v0, p.anchor = v, p.clock.Now()
			p.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return time.Time{}, false, 0, 0, err
			}
			return time.Time{}, false, ep, speed, nil
		}
		deadline = p.anchor.Add(time.Duration(float64(v-p.v0) / p.speed))
		p.mu.Unlock()

		d := deadline.Sub(p.clock.Now())
		if d <= 0 {
			return deadline, true, ep, speed, ctx.Err()
		}
		if d > spin {
			c, stop := p.clock.NewTimer(d - spin)
			select {
			case <-c:
			case <-p.wake:
				stop()
			case <-ctx.Done():
				stop()
				return time.Time{}, false, 0, 0, ctx.Err()
			}
			continue
		}
		// Inside the spin window: nap on the kernel's fine timer while far
		// enough from the deadline (the system clock only), then spin.
		// Spinning for the whole window would keep a core busy and, on a
		// small machine, delay the broker and subscribers it shares with.
		_, canNapHere := p.clock.(SystemClock)
		canNapHere = canNapHere && canNap
		woken := false
		for !woken {
			rem := deadline.Sub(p.clock.Now())
			if rem <= 0 {
				break
			}
			select {
			case <-p.wake:
				woken = true
				continue
			default:
			}
			if canNapHere && rem > napMargin {
				nap(rem - napMargin)
			} else {
				runtime.Gosched()
			}
		}
		if !woken {
			return deadline, true, ep, speed, ctx.Err()
		}
	}
}

// waitWhilePaused blocks while paused (a step lets one message through).
func (p *Player) waitWhilePaused(ctx context.Context) error {
	for {
		p.mu.Lock()
		switch {
		case !p.paused:
			p.mu.Unlock()
			return nil
		case p.steps > 0:
			p.steps--
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// napMargin is how long before a deadline napping stops and spinning starts.
const napMargin = 150 * time.Microsecond

// publish sends a message at once (retained restores).
func (p *Player) publish(ctx context.Context, win *window, m *storage.Message, retain bool) error {
	if err := win.acquire(ctx); err != nil {
		return err
	}
	return p.send(win, m, retain)
}

// send publishes m; the caller made room in the window (acquire).
func (p *Player) send(win *window, m *storage.Message, retain bool) error {
	name, err := p.rw.topic(m.Topic)
	if err != nil {
		return err
	}
	qos := m.QoS
	if p.cfg.OverrideQoS {
		qos = p.cfg.QoS
	}
	payload := m.Payload
	if p.renumber != nil {
		payload = p.renumber.payload(m)
	}
	var tok mqtt.Token
	// MQTT 5: re-emit the recorded properties. Message expiry keeps its
	// recorded value (not reduced by the time since recording).
	props := m.Props.OfMessage()
	if pp, ok := p.pub.(mqtt.PropsPublisher); ok && props != nil {
		tok = pp.PublishProps(name, qos, retain, payload, props)
	} else {
		if props != nil {
			p.propsDropped.Add(1)
		}
		tok = p.pub.Publish(name, qos, retain, payload)
	}
	if tok == nil {
		tok = DoneToken(nil)
	}
	win.add(tok)
	p.published.Add(1)
	return nil
}

// RecordedProtocol is the MQTT protocol level a replay of q connects with
// when none is asked for: 5 if a session q selects was recorded with
// MQTT 5 (its messages keep their properties), else 4 (3.1.1). play and
// the inspector's p both use it.
func RecordedProtocol(ctx context.Context, src Source, q storage.Query) (int, error) {
	sessions, err := src.Sessions(ctx)
	if err != nil {
		return 0, err
	}
	for _, s := range sessions {
		if s.Protocol == 5 && (q.Session == 0 || s.ID == q.Session) {
			return 5, nil
		}
	}
	return 4, nil
}

// DoneToken returns a completed Token with err, for Publishers that finish
// synchronously (and for tests).
func DoneToken(err error) mqtt.Token {
	c := make(chan struct{})
	close(c)
	return doneToken{c, err}
}

type doneToken struct {
	c   chan struct{}
	err error
}

func (t doneToken) Done() <-chan struct{} { return t.c }
func (t doneToken) Error() error          { return t.err }
