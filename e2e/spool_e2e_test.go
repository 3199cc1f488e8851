package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/loadgen"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// TestKill9KeepsAcknowledgedMessages: the real binary records a QoS 1
// stream from mosquitto as installed with a flush interval of a minute, so
// nothing is committed, and is killed with SIGKILL once every message is in
// its spool (acknowledged: with a clean session the broker will not send
// them again). The next `record -o` on the file adds them to the killed
// session, each exactly once, and says so.
func TestKill9KeepsAcknowledgedMessages(t *testing.T) {
	m := testbroker.StartMosquittoDefaults(t)
	bin := testbroker.BuildMqtape(t)
	path := filepath.Join(t.TempDir(), "killed.db")
	rec := exec.Command(bin, "record", "-b", m.URL(), "-t", "k/#", "-q", "1", "--flush-interval", "1m", "--quiet", "-o", path)
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Process.Kill(); rec.Wait() })
	spoolSize := func() (size int64) {
		files, _ := storage.SpoolFiles(path)
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
		return size
	}
	// Subscribed once a probe is in the spool (nothing is committed, the
	// subscribed event neither: probes again every 200 ms until one is).
	for deadline := time.Now().Add(10 * time.Second); spoolSize() <= 24; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the recorder did not spool a probe within 10 s")
		}
		if _, err := loadgen.Run(context.Background(), loadgen.Config{Addr: m.Addr, Messages: 1, QoS: 1, Topic: "k/probe"}); err != nil {
			t.Fatal(err)
		}
	}

	const n = 3000
	if _, err := loadgen.Run(context.Background(), loadgen.Config{Addr: m.Addr, Devices: 3, Messages: n, Rate: 5000, QoS: 1, Topic: "k/load"}); err != nil {
		t.Fatal(err)
	}
	// Every message is spooled once the spool stops growing.
	for last, stable, deadline := int64(-1), 0, time.Now().Add(10*time.Second); stable < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("the spool did not settle (%d bytes)", last)
		}
		if s := spoolSize(); s == last && s > 0 {
			stable++
		} else {
			last, stable = s, 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := rec.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rec.Wait()
	if c, err := storage.Open(path); err == nil {
		got, _ := c.Count(context.Background(), storage.Query{})
		c.Close()
		if got != 0 {
			t.Logf("note: %d messages were committed before the kill", got)
		}
	}

	code, _, stderr := runCLI(t, context.Background(), "record", "-b", m.URL(), "-t", "k/#", "-q", "1", "--duration", "200ms", "-o", path)
	if code != 0 {
		t.Fatalf("second record: exit %d: %s", code, stderr)
	}
	msgs, sessions, events := capturetest.Read(t, path)
	seen := map[[2]int]int{}
	load := 0
	for _, msg := range msgs {
		if !strings.HasPrefix(msg.Topic, "k/load/") {
			continue
		}
		d, i, ok := loadgen.ParsePayload(msg.Payload)
		if !ok || msg.Session != sessions[0].ID {
			t.Fatalf("unexpected message %+v", msg)
		}
		seen[[2]int{d, i}]++
		load++
	}
	if load != n || len(seen) != n {
		t.Fatalf("%d messages (%d distinct) after the recovery, want %d: acknowledged messages were lost or doubled", load, len(seen), n)
	}
	recovered := false
	for _, e := range events {
		recovered = recovered || e.Kind == storage.EventSpoolRecovered && e.Session == sessions[0].ID
	}
	if !recovered || !strings.Contains(stderr, "from the spool") {
		t.Errorf("no spool_recovered event or message; stderr: %s", stderr)
	}
	if files, _ := storage.SpoolFiles(path); len(files) != 0 {
		t.Errorf("spool files left: %v", files)
	}
}
