package replay

import "time"

// Clock is the time source the Player schedules against. SystemClock is the
// real one; tests hand in a fake, or run the Player inside a
// testing/synctest bubble with SystemClock{} (no spinning), where timers
// fire exactly on time.
type Clock interface {
	// Now returns the current time. Only differences between readings are
	// used, so a monotonic reading (as time.Now has) is what matters.
	Now() time.Time
	// NewTimer returns a channel that receives once d has elapsed, and a
	// function that stops the timer.
	NewTimer(d time.Duration) (c <-chan time.Time, stop func())
	// SpinWindow is how long before a deadline the Player stops sleeping on
	// a timer and polls Now instead: operating-system timers wake up to a
	// millisecond late, polling does not. 0 never polls; a fake clock (or
	// any clock whose time does not advance while the Player polls, such as
	// the one inside a testing/synctest bubble) must return 0.
	SpinWindow() time.Duration
}

// DefaultSpin is the spin window of the default clock: sleep on a Go timer
// until 2 ms before each deadline, then (on Linux) on the kernel's fine
// timer until 150 µs before it, then poll the monotonic clock.
const DefaultSpin = 2 * time.Millisecond

// SystemClock is the process's monotonic clock. Spin is its SpinWindow; the
// zero SystemClock only sleeps (use it under testing/synctest).
type SystemClock struct {
	Spin time.Duration
}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer starts a time.Timer.
func (SystemClock) NewTimer(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTimer(d)
	return t.C, func() { t.Stop() }
}

// SpinWindow returns c.Spin.
func (c SystemClock) SpinWindow() time.Duration { return c.Spin }
