package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/loadgen"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// TestSplitKill9DuringRotation: the real binary records a QoS 1 flood into
// 1 MiB parts and is killed with SIGKILL the moment a new part appears
// (the previous one is then being closed). Every part passes check, the
// next record into the same pattern recovers the killed part's spool, and
// no message is in two parts.
func TestSplitKill9DuringRotation(t *testing.T) {
	b := testbroker.StartEmbedded(t, broker.Options{MaxPending: 1 << 20})
	bin := testbroker.BuildMqtape(t)
	dir := t.TempDir()
	pattern := filepath.Join(dir, "run.db")
	rec := exec.Command(bin, "record", "-b", b.URL(), "-t", "k/#", "-q", "1", "--split-size", "1MiB", "--quiet", "-o", pattern)
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Process.Kill(); rec.Wait() })
	parts := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "run-*.db"))
		return m
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	load := make(chan error, 1)
	go func() {
		_, err := loadgen.Run(ctx, loadgen.Config{Addr: b.Addr(), Devices: 2, Messages: 60000, Rate: 20000, QoS: 1, Size: 400, Topic: "k/load"})
		load <- err
	}()
	// Kill as soon as the third part appears: the rotation into it runs.
	if !testbroker.Eventually(30*time.Second, func() bool { return len(parts()) >= 3 }) {
		t.Fatalf("no third part within 30 s: %v", parts())
	}
	if err := rec.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rec.Wait()
	if err := <-load; err != nil {
		t.Fatal(err)
	}
	killed := parts()
	for _, p := range killed[:len(killed)-2] {
		if _, err := os.Stat(p + "-wal"); err == nil {
			t.Errorf("finished part %s still has a WAL", p)
		}
	}
	// The next recording recovers the killed part's spool and goes on in a
	// new part.
	code, _, stderr := runCLI(t, context.Background(), "record", "-b", b.URL(), "-t", "k/#", "--split-size", "1MiB", "--duration", "200ms", "-o", pattern)
	if code != 0 {
		t.Fatalf("second record: exit %d: %s", code, stderr)
	}
	all := parts()
	if len(all) != len(killed)+1 {
		t.Fatalf("parts after the second record: %v (before: %v)", all, killed)
	}
	seen := map[[2]int]int{}
	for _, p := range all {
		code, out, errOut := runCLI(t, context.Background(), "check", p)
		if code != 0 {
			t.Errorf("check %s: exit %d\n%s%s", filepath.Base(p), code, out, errOut)
		}
		if files, _ := storage.SpoolFiles(p); len(files) != 0 {
			t.Errorf("%s: spool files left: %v", filepath.Base(p), files)
		}
		msgs, _, events := capturetest.Read(t, p)
		skip := 0
		for _, e := range events {
			var l storage.PartLink
			if e.Kind == storage.EventSplit && json.Unmarshal([]byte(e.Detail), &l) == nil && l.Next == "" {
				skip = l.Carried
			}
		}
		for _, m := range msgs[skip:] {
			if d, i, ok := loadgen.ParsePayload(m.Payload); ok {
				seen[[2]int{d, i}]++
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no message recorded")
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("message %v is in %d parts", k, n)
		}
	}
}

// TestInspectParts: the inspector opens the parts of a split recording
// (a glob) as one capture: every message once.
func TestInspectParts(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	dir := t.TempDir()
	var msgs []storage.Message
	for i := range 30 {
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*time.Second, "dev/1", 1, "x"))
	}
	msgs[0].Retain, msgs[0].FromStore = true, true
	capturetest.WriteParts(t, dir, "r1", msgs, 10, 20)
	term := runOnTerminal(t, bin, "inspect", filepath.Join(dir, "run-*.db"))
	term.waitFor(t, "(3 files)")
	term.waitFor(t, "30 messages")
	term.master.Write([]byte("q"))
	if code := term.wait(t); code != 0 {
		t.Fatalf("inspect exit %d:\n%s", code, term.text())
	}
}
