package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSnapshotOnSIGUSR1: the real binary in snapshot mode writes nothing
// until SIGUSR1, then a part; Ctrl-C finishes it (exit 0) and it passes
// check with a "manual" snapshot event.
func TestSnapshotOnSIGUSR1(t *testing.T) {
	b := testbroker.StartEmbedded(t, broker.Options{})
	bin := testbroker.BuildMqtape(t)
	dir := t.TempDir()
	var stderr lockedBuffer
	rec := exec.Command(bin, "record", "-b", b.URL(), "--ring", "1m", "--trigger", "never/#", "--post", "1h",
		"-o", filepath.Join(dir, "snap.db"))
	rec.Stderr = &stderr
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Process.Kill(); rec.Wait() })
	// The banner comes once connected, after SIGUSR1 is handled.
	if !testbroker.Eventually(10*time.Second, func() bool { return strings.Contains(stderr.String(), "SIGUSR1 triggers by hand") }) {
		t.Fatalf("no banner: %s", stderr.String())
	}
	pub := testbroker.Connect(t, b.URL())
	testbroker.Publish(t, pub, "plant/temp", 1, false, []byte("21"))
	if matches, _ := filepath.Glob(filepath.Join(dir, "snap*")); len(matches) != 0 {
		t.Fatalf("armed, yet wrote %v", matches)
	}
	if err := rec.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, "snap-0001.db")
	// In the post-window: published until one is committed.
	if !testbroker.Eventually(10*time.Second, func() bool {
		testbroker.Publish(t, pub, "plant/temp", 1, false, []byte("22"))
		if _, err := os.Stat(part); err != nil {
			return false
		}
		msgs, _, _ := capturetest.Read(t, part)
		return len(msgs) > 0
	}) {
		t.Fatalf("SIGUSR1 wrote no snapshot: %s", stderr.String())
	}
	rec.Process.Signal(syscall.SIGINT)
	if err := rec.Wait(); err != nil {
		t.Fatalf("record: %v: %s", err, stderr.String())
	}
	if code, _, errOut := runCLI(t, context.Background(), "check", part); code != 0 {
		t.Fatalf("check: exit %d: %s", code, errOut)
	}
	_, sessions, events := capturetest.Read(t, part)
	var manual bool
	for _, e := range events {
		manual = manual || (e.Kind == storage.EventSnapshot && strings.Contains(e.Detail, `"reason":"manual"`))
	}
	if !manual || sessions[0].StopReason != "interrupted" {
		t.Fatalf("snapshot events %+v, stop reason %q: want a manual snapshot, interrupted", events, sessions[0].StopReason)
	}
	if !strings.Contains(stderr.String(), "wrote 1 snapshot") {
		t.Fatalf("summary: %s", stderr.String())
	}
}
