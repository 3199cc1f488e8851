package recorder

import (
	"sync"
	"time"
)

// FakeClock is a clock that moves only when Advance is called.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{now: t} }

func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d and fires the timers and tickers due.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.active || t.at.After(c.now) {
			continue
		}
		select {
		case t.ch <- c.now:
		default:
		}
		if t.period > 0 {
			for !t.at.After(c.now) {
				t.at = t.at.Add(t.period)
			}
		} else {
			t.active = false
		}
	}
}

func (c *FakeClock) NewTimer(d time.Duration) clockTimer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	t.Reset(d)
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	return t
}

func (c *FakeClock) NewTicker(d time.Duration) clockTicker {
	t := c.NewTimer(d).(*fakeTimer)
	c.mu.Lock()
	t.period = d
	c.mu.Unlock()
	return fakeTicker{t}
}

type fakeTicker struct{ t *fakeTimer }

func (k fakeTicker) Chan() <-chan time.Time { return k.t.ch }
func (k fakeTicker) Stop()                  { k.t.Stop() }

type fakeTimer struct {
	c      *FakeClock
	ch     chan time.Time
	at     time.Time
	period time.Duration
	active bool
}

func (t *fakeTimer) Chan() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at, t.active = t.c.now.Add(d), true
	t.drain()
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	t.drain()
	return was
}

func (t *fakeTimer) drain() {
	select {
	case <-t.ch:
	default:
	}
}

// SetClock makes s run on c (before Run).
func (s *Snapshotter) SetClock(c *FakeClock) { s.clock = c }

// Handled is how many received messages the snapshot loop has taken.
func (s *Snapshotter) Handled() int64 { return s.handled.Load() }

// Subscribed reports whether the broker has granted the subscriptions.
func (s *Snapshotter) Subscribed() bool { return len(s.currentFilters()) > 0 }
