//go:build unix

package cli

import (
	"os"
	"os/signal"
	"syscall"
)

// manualTrigger turns SIGUSR1 into snapshot triggers (record --ring).
func manualTrigger() (<-chan struct{}, func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	out := make(chan struct{})
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sig:
				select {
				case out <- struct{}{}:
				case <-done:
					return
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() { signal.Stop(sig); close(done) }
}
