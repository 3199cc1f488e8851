package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/cli"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

func TestPlaySelectionRewriteSpeedLoop(t *testing.T) {
	path := capturetest.WriteOffsets(t, []storage.Message{
		{OffsetNS: 0, Topic: "plant/1/state", QoS: 1, Retain: true, FromStore: true, Payload: []byte("on")},
		{OffsetNS: 0, Topic: "other/state", QoS: 0, Retain: true, FromStore: true, Payload: []byte("x")},
		capturetest.Msg(1*time.Second, "plant/1/temp", 1, "20"),
		capturetest.Msg(2*time.Second, "plant/1/debug", 0, "dbg"),
		capturetest.Msg(30*time.Second, "plant/2/temp", 2, "21"),
		capturetest.Msg(30*time.Second+400*time.Millisecond, "plant/1/debug", 0, "dbg2"),
		capturetest.Msg(30*time.Second+800*time.Millisecond, "plant/1/temp", 1, "22"),
		capturetest.Msg(50*time.Second, "plant/1/temp", 0, "late"),
	})
	b := startBroker(t)
	sub := testbroker.Subscribe(t, b.URL())
	start := time.Now()
	code, out, errOut := runCLI(t, context.Background(), "play", path, "--broker", b.URL(), "--speed", "2", "--loop", "2",
		"-t", "plant/#", "-x", "plant/+/debug", "--from", "25s", "--to", "45s", "--remap", "plant/1/=p1/",
		"--topic-prefix", "sandbox/", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	elapsed := time.Since(start)
	got := sub.Wait(t, 6)
	var lines []string
	for _, m := range got {
		lines = append(lines, fmt.Sprintf("%s %s q%d r%v", m.Topic, m.Body, m.QoS, m.Retain))
	}
	// Each pass restores plant/1/state (selected by -t, other/state is not),
	// then plays 30 s and 30.8 s (0.4 s apart at speed 2).
	want := []string{"sandbox/p1/state on q1 rfalse", "sandbox/plant/2/temp 21 q2 rfalse", "sandbox/p1/temp 22 q1 rfalse",
		"sandbox/p1/state on q1 rfalse", "sandbox/plant/2/temp 21 q2 rfalse", "sandbox/p1/temp 22 q1 rfalse"}
	if !slices.Equal(lines, want) {
		t.Errorf("received\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if gap := got[2].At.Sub(got[1].At); gap < 350*time.Millisecond || gap > 500*time.Millisecond {
		t.Errorf("gap at speed 2 = %s, want 400 ms", gap)
	}
	if elapsed < 800*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("play took %s, want about 0.8 s", elapsed)
	}
	var rep cli.PlayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Published != 6 || rep.Restored != 2 || rep.Passes != 2 || rep.Speed != "2" || rep.Lateness.Count != 4 ||
		rep.AckFailures != 0 || rep.Unacked != 0 || rep.Interrupted || math.Abs(rep.IntendedS-0.8) > 1e-9 {
		t.Errorf("report = %+v", rep)
	}
	if !strings.Contains(errOut, "played 6 messages (2 retained restores)") || !strings.Contains(errOut, "lateness:") {
		t.Errorf("human report:\n%s", errOut)
	}
	// The retained state is restored on the target broker.
	late := testbroker.Subscribe(t, b.URL())
	if r := late.Wait(t, 1)[0]; r.Topic != "sandbox/p1/state" || !r.Retain || r.Body != "on" {
		t.Errorf("retained on the target: %+v", r)
	}
}

func TestPlayRecordPlayRecordKeepsContentAndGaps(t *testing.T) {
	// 1. Record real traffic with gaps from 0 to 300 ms and a retained state.
	src := startBroker(t)
	pub := testbroker.Connect(t, src.URL())
	testbroker.Publish(t, pub, "dev/1/status", 1, true, []byte("online"))
	testbroker.Publish(t, pub, "dev/2/status", 2, true, []byte{0, 1, 2})
	first := filepath.Join(t.TempDir(), "first.db")
	gaps := []time.Duration{0, 0, 1, 5, 0, 20, 300, 2, 50, 0, 120, 10}
	wait := recordCLI(t, context.Background(), first, "--broker", src.URL(), "--count", fmt.Sprint(2+len(gaps)), "--quiet")
	for i, g := range gaps {
		time.Sleep(g * time.Millisecond)
		payload := bytes.Repeat([]byte{byte(i)}, i*37)
		pub.Publish(fmt.Sprintf("dev/%d/data", i%3), byte(i%3), false, payload)
	}
	if code, _, e := wait(); code != 0 {
		t.Fatalf("record: exit %d %s", code, e)
	}

	// 2. Play it to a fresh broker while recording there.
	dst := startBroker(t)
	second := filepath.Join(t.TempDir(), "second.db")
	wait = recordCLI(t, context.Background(), second, "--broker", dst.URL(), "--count", fmt.Sprint(2+len(gaps)), "--quiet")
	if code, _, e := runCLI(t, context.Background(), "play", first, "--broker", dst.URL(), "--quiet"); code != 0 {
		t.Fatalf("play: exit %d %s", code, e)
	}
	if code, _, e := wait(); code != 0 {
		t.Fatalf("record again: exit %d %s", code, e)
	}
	// 3. A third recording sees the restored retained state in the store.
	third := filepath.Join(t.TempDir(), "third.db")
	wait = recordCLI(t, context.Background(), third, "--broker", dst.URL(), "--count", "2", "--quiet")
	if code, _, e := wait(); code != 0 {
		t.Fatalf("record retained: exit %d %s", code, e)
	}

	a, b := messagesOf(t, first), messagesOf(t, second)
	if len(a) != len(b) {
		t.Fatalf("%d messages recorded, %d after replay", len(a), len(b))
	}
	for i := range a {
		if a[i].Topic != b[i].Topic || a[i].QoS != b[i].QoS || !bytes.Equal(a[i].Payload, b[i].Payload) {
			t.Errorf("message %d: %s q%d %d bytes, replayed as %s q%d %d bytes", i, a[i].Topic, a[i].QoS, len(a[i].Payload),
				b[i].Topic, b[i].QoS, len(b[i].Payload))
		}
	}
	// Live gaps are kept (the retained restores go first, as a burst): each
	// replayed message sits where the schedule puts it. A loaded CI machine
	// may delay one publish (and so stretch one gap and shrink the next);
	// drift, or gaps that add up errors, would move every later message.
	const tol, hiccup = 10 * time.Millisecond, 50 * time.Millisecond
	var late []string
	for i := 3; i < len(a); i++ {
		pa, pb := time.Duration(a[i].OffsetNS-a[2].OffsetNS), time.Duration(b[i].OffsetNS-b[2].OffsetNS)
		d := (pb - pa).Abs()
		if d > tol {
			late = append(late, fmt.Sprintf("message %d: at %s in the recording, %s in the replay", i, pa, pb))
		}
		if d > hiccup {
			t.Errorf("message %d: at %s in the recording, %s in the replay", i, pa, pb)
		}
	}
	if len(late) > (len(a)-3)/3 {
		t.Errorf("%d of %d messages off by more than %s:\n%s", len(late), len(a)-3, tol, strings.Join(late, "\n"))
	}
	c := messagesOf(t, third)
	var retained []string
	for _, m := range c {
		retained = append(retained, fmt.Sprintf("%s %q q%d store=%v", m.Topic, m.Payload, m.QoS, m.FromStore))
	}
	slices.Sort(retained)
	want := []string{`dev/1/status "online" q1 store=true`, `dev/2/status "\x00\x01\x02" q2 store=true`}
	if !slices.Equal(retained, want) {
		t.Errorf("retained state on the target = %q, want %q", retained, want)
	}
}

func TestPlayInterruptedReportsSoFar(t *testing.T) {
	var msgs []storage.Message
	for i := range 20 {
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*100*time.Millisecond, "tick", 1, fmt.Sprint(i)))
	}
	path := capturetest.WriteOffsets(t, msgs)
	b := startBroker(t)
	sub := testbroker.Subscribe(t, b.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 450*time.Millisecond)
	defer cancel()
	code, out, errOut := runCLI(t, ctx, "play", path, "--broker", b.URL(), "--json")
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d\n%s", code, exitInterrupted, errOut)
	}
	var rep cli.PlayReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Published < 3 || rep.Published > 6 || rep.Error != "" {
		t.Errorf("report = %+v", rep)
	}
	sub.Wait(t, int(rep.Published))
	if !strings.Contains(errOut, "interrupted after") {
		t.Errorf("stderr:\n%s", errOut)
	}
}

// messagesOf returns every message of the capture at path.
func messagesOf(t *testing.T, path string) []storage.Message {
	t.Helper()
	msgs, _, _ := capturetest.Read(t, path)
	return msgs
}
