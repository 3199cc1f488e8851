package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// errCaptureGone stops a recording whose capture file was deleted or
// replaced: everything written after that would go into a file nobody can
// open again.
var errCaptureGone = errors.New("the capture file was deleted or replaced while recording")

// watchCapture checks every interval that path is still the file that was
// opened, and calls stop(errCaptureGone) once when it is not. It returns
// at once; the watch ends with ctx.
func watchCapture(ctx context.Context, path string, interval time.Duration, stop func(error)) {
	opened, err := os.Stat(path)
	if err != nil {
		return
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if fi, err := os.Stat(path); err != nil || !os.SameFile(fi, opened) {
				stop(errCaptureGone)
				return
			}
		}
	}()
}

// rescueCapture writes what the still open capture holds back to path (or
// to path.rescued when something else is at path now) and returns the
// error that ends the recording, saying where the data went.
func rescueCapture(ctx context.Context, c *storage.Capture, path string, stored int64) error {
	for _, p := range []string{path, path + ".rescued"} {
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := c.SaveCopy(context.WithoutCancel(ctx), p); err != nil {
			return fmt.Errorf("%w: recording stopped; saving the %d messages recorded into it failed: %v", errCaptureGone, stored, err)
		}
		return fmt.Errorf("%w: recording stopped; the %d messages recorded so far were saved to %s", errCaptureGone, stored, p)
	}
	return fmt.Errorf("%w: recording stopped; %s and %s.rescued exist, so the %d messages recorded are lost", errCaptureGone, path, path, stored)
}
