package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/mqtape/mqtape/mqtt"
)

// signalWriter discards what is written and closes first at the first write.
type signalWriter struct {
	first chan struct{}
	once  sync.Once
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.first) })
	return len(p), nil
}

// TestConfirmRemote: the question play asks before publishing to a broker
// that is not on this machine: refused without a terminal (exit 2, "pass
// --yes"), only y/yes (any case) go ahead, and Ctrl-C at the question
// interrupts. The real binary on a terminal: e2e's
// TestPlayConfirmsNonLoopback.
func TestConfirmRemote(t *testing.T) {
	ctx := context.Background()
	remote, _ := mqtt.ParseBroker("mqtt://broker.invalid:1883")
	if err := confirmRemote(ctx, remote, "2 messages", false, strings.NewReader("yes\n"), io.Discard); exitCode(err) != exitUsage ||
		!strings.Contains(err.Error(), "pass --yes") {
		t.Errorf("no terminal: %v", err)
	}
	for _, tt := range []struct {
		answer string
		ok     bool
	}{{"y\n", true}, {"YES\n", true}, {"n\n", false}, {"\n", false}, {"", false}, {"sure\n", false}} {
		var out bytes.Buffer
		err := confirmRemote(ctx, remote, "2 messages from x.db", true, strings.NewReader(tt.answer), &out)
		if (err == nil) != tt.ok || !tt.ok && exitCode(err) != exitUsage ||
			!strings.Contains(out.String(), "mqtt://broker.invalid:1883 is not a loopback broker: publish 2 messages from x.db to it? [y/N]") {
			t.Errorf("answer %q: %v, prompt %q", tt.answer, err, out.String())
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	defer pw.Close()
	asked := make(chan struct{})
	go func() { <-asked; cancel() }() // Ctrl-C once the question is on screen
	if err := confirmRemote(cctx, remote, "x", true, pr, &signalWriter{first: asked}); !errors.Is(err, errInterrupted) {
		t.Errorf("Ctrl-C at the question: %v", err)
	}

}
