package recorder

import "time"

// clock is the time source of the pipeline's timing decisions: the
// spooler's quiet timer and maxHold, and the writer's FlushInterval tick.
// Recordings use realClock (package time). Tests may hand in another one;
// inside a testing/synctest bubble package time is itself fake, so
// realClock serves there too.
type clock interface {
	Now() time.Time
	NewTimer(d time.Duration) clockTimer
	NewTicker(d time.Duration) clockTicker
}

// clockTimer is the part of *time.Timer the spooler uses (with Go 1.23
// semantics: after Stop or Reset no stale value is received).
type clockTimer interface {
	Chan() <-chan time.Time
	Reset(d time.Duration) bool
	Stop() bool
}

// clockTicker is the part of *time.Ticker the writer uses.
type clockTicker interface {
	Chan() <-chan time.Time
	Stop()
}

// realClock is package time.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) clockTimer { return realTimer{time.NewTimer(d)} }

func (realClock) NewTicker(d time.Duration) clockTicker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ *time.Timer }

func (t realTimer) Chan() <-chan time.Time { return t.C }

type realTicker struct{ *time.Ticker }

func (t realTicker) Chan() <-chan time.Time { return t.C }
