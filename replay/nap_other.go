//go:build !linux

package replay

import "time"

const canNap = false

func nap(time.Duration) {}
