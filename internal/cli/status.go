package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/mqtape/mqtape/internal/termsafe"
)

// statusLine redraws one line on stderr while long work runs, only when
// stderr is a terminal.
type statusLine struct {
	cio     *cliIO
	enabled bool
}

func newStatusLine(cio *cliIO, quiet bool) *statusLine {
	return &statusLine{cio: cio, enabled: cio.stderrTTY && !quiet}
}

// start redraws render() every 250 ms until the returned stop is called.
func (s *statusLine) start(render func() string) (stop func()) {
	if !s.enabled {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(s.cio.statusTerm, "\r\x1b[K%s\n", termsafe.String(render()))
				return
			case <-t.C:
				fmt.Fprintf(s.cio.statusTerm, "\r\x1b[K%s", termsafe.String(render()))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%02d:%02d", m, s)
}
