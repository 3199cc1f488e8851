package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/recorder"
)

// record --ring writes nothing until the trigger, then a part holding the
// ring and the trigger, which passes check.
func TestRecordRingWritesSnapshotOnTrigger(t *testing.T) {
	b := testbroker.StartEmbedded(t, broker.Options{})
	pub := testbroker.Connect(t, b.URL())
	dir := t.TempDir()
	out := filepath.Join(dir, "snap.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr string
	go func() {
		var code int
		code, _, stderr = runCLI(t, ctx, "record", "-b", b.URL(), "--ring", "1m", "--trigger", "alarms/# payload~FAULT",
			"--quiet", "-o", out)
		done <- code
	}()
	part := filepath.Join(dir, "snap-0001.db")
	// Published until a snapshot appears (the recorder subscribes at some
	// point meanwhile; nothing tells when).
	var sent []string
	if !testbroker.Eventually(10*time.Second, func() bool {
		i := len(sent) / 3
		for _, m := range []struct{ topic, payload string }{
			{"plant/temp", fmt.Sprint("21-", i)},
			{"alarms/boiler", fmt.Sprint("ok-", i)}, // the topic matches, the payload does not
			{"alarms/boiler", fmt.Sprint("FAULT-", i)},
		} {
			testbroker.Publish(t, pub, m.topic, 1, false, []byte(m.payload))
			sent = append(sent, m.payload)
		}
		_, err := os.Stat(part)
		return err == nil
	}) {
		t.Fatal("no snapshot part written")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("record exit %d: %s", code, stderr)
	}
	// Part 1 is what was received up to the first FAULT: a run of what was
	// sent, ending with the trigger, with no trigger before it.
	msgs, _, _ := capturetest.Read(t, part)
	var got []string
	for _, m := range msgs {
		got = append(got, string(m.Payload))
	}
	j := slices.Index(sent, got[0])
	if j < 0 || j+len(got) > len(sent) || !slices.Equal(sent[j:j+len(got)], got) ||
		!strings.HasPrefix(got[len(got)-1], "FAULT-") || strings.Count(strings.Join(got, " "), "FAULT-") != 1 {
		t.Fatalf("snapshot holds %q; sent %q", got, sent)
	}
	parts, _ := filepath.Glob(filepath.Join(dir, "snap-*.db"))
	for _, p := range parts {
		if code, _, errOut := runCLI(t, context.Background(), "check", p); code != 0 {
			t.Fatalf("check %s: exit %d: %s", p, code, errOut)
		}
	}
}

// SIGUSR1 becomes a manual trigger.
func TestManualTriggerOnSIGUSR1(t *testing.T) {
	manual, stop := manualTrigger()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-manual:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGUSR1 did not trigger")
	}
}

func TestRingStatus(t *testing.T) {
	got := recordStatus(recorder.Stats{Started: time.Now(), Connected: true,
		Ring: &recorder.RingStats{Messages: 1234, Bytes: 64 << 20, Size: 256 << 20, Evicted: 7, Snapshots: 2}}, 0)
	for _, want := range []string{"ring 1,234 msgs", "(25% of 256", "evicted 7", "snapshots 2", "armed"} {
		if !strings.Contains(got, want) {
			t.Errorf("status %q lacks %q", got, want)
		}
	}
	got = recordStatus(recorder.Stats{Started: time.Now(), Ring: &recorder.RingStats{Size: 1 << 20, Capturing: true}}, 0)
	if !strings.Contains(got, "WRITING SNAPSHOT") {
		t.Errorf("status %q: want WRITING SNAPSHOT while a post-window runs", got)
	}
}
