package replay

import (
	"syscall"
	"time"
)

// canNap: nap sleeps on the kernel's high-resolution timer (~50 µs slack),
// unlike Go timers, which wake up to a millisecond late.
const canNap = true

func nap(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil)
}
