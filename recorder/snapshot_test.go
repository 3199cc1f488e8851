package recorder_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/storage"
)

type snapRun struct {
	s      *recorder.Snapshotter
	clock  *recorder.FakeClock
	manual chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	res    recorder.Result
	err    error
}

// startSnapshots runs a trigger-snapshot recorder on a fake clock (trigger:
// topics under alarms/) and waits until it has taken want messages (the
// retained store's).
func startSnapshots(t *testing.T, b *broker.Broker, pattern string, snap recorder.Snapshot, want int64) *snapRun {
	t.Helper()
	o := opts(t, b, "snap-"+t.Name())
	o.ManualAck, o.AutoReconnect = true, true
	r := &snapRun{clock: recorder.NewFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)),
		manual: make(chan struct{}), done: make(chan struct{})}
	snap.Pattern, snap.Recording, snap.Manual = pattern, "snaps", r.manual
	snap.Trigger = func(m *storage.Message) bool { return strings.HasPrefix(m.Topic, "alarms/") }
	r.s = recorder.NewSnapshotter(func(ctx context.Context, h mqtt.Handlers) (recorder.Subscriber, error) {
		return mqttclient.Connect(ctx, o, h)
	}, recorder.Config{Snapshot: &snap, Session: storage.SessionInfo{Source: "subscriber", Broker: b.URL()}})
	r.s.SetClock(r.clock)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.res, r.err = r.s.Run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-r.done })
	if !testbroker.Eventually(10*time.Second, r.s.Subscribed) {
		t.Fatal("the snapshot recorder did not subscribe")
	}
	r.waitHandled(t, want)
	return r
}

func (r *snapRun) waitHandled(t *testing.T, n int64) {
	t.Helper()
	if !testbroker.Eventually(10*time.Second, func() bool { return r.s.Handled() >= n }) {
		t.Fatalf("the snapshot loop took %d of %d messages", r.s.Handled(), n)
	}
}

func (r *snapRun) waitSnapshots(t *testing.T, n int64) {
	t.Helper()
	if !testbroker.Eventually(10*time.Second, func() bool { return r.s.Stats().Ring.Snapshots >= n }) {
		t.Fatalf("%d of %d snapshots written", r.s.Stats().Ring.Snapshots, n)
	}
}

func (r *snapRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	<-r.done
	if r.err != nil {
		t.Fatal(r.err)
	}
}

// snapshotPart reads a finished snapshot part: its live topics, its carried
// retained topics and its snapshot events; the part passes check.
func snapshotPart(t *testing.T, path string) (live, carried []string, snaps []storage.SnapshotEvent, msgs []storage.Message) {
	t.Helper()
	rep, err := storage.Check(context.Background(), path, storage.CheckOptions{})
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("check %s: %v %+v", path, err, rep)
	}
	l, c, _ := partOf(t, path)
	for _, m := range l {
		live = append(live, m.Topic)
	}
	for _, m := range c {
		carried = append(carried, m.Topic+"="+string(m.Payload))
	}
	_, sessions, events := capturetest.Read(t, path)
	if sessions[0].StopReason != storage.StopSnapshot {
		t.Errorf("%s: stop reason %q, want %q", path, sessions[0].StopReason, storage.StopSnapshot)
	}
	for _, e := range events {
		if e.Kind == storage.EventSnapshot {
			var s storage.SnapshotEvent
			if err := json.Unmarshal([]byte(e.Detail), &s); err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, s)
		}
	}
	return live, carried, snaps, l
}

func eq(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// A trigger writes the ring (the last --ring before it) and the
// post-window exactly; a trigger inside the post-window extends it; the
// recorder re-arms and the next snapshot is the next part, carrying the
// retained state; SIGUSR1's channel triggers by hand.
func TestSnapshotWindows(t *testing.T) {
	b := startBroker(t)
	pub := publisher(t, b, "pub")
	publish(t, pub, "status/a", 1, true, []byte("online")) // from the retained store
	dir := t.TempDir()
	pattern := filepath.Join(dir, "run.db")
	r := startSnapshots(t, b, pattern, recorder.Snapshot{Ring: 10 * time.Second, Post: 5 * time.Second}, 1)
	n := int64(1)
	send := func(topic string) {
		t.Helper()
		publish(t, pub, topic, 1, false, []byte(topic))
		n++
		r.waitHandled(t, n)
	}
	send("a/1") // T0
	r.clock.Advance(6 * time.Second)
	send("a/2") // T0+6
	r.clock.Advance(6 * time.Second)
	send("a/3")       // T0+12: a/1 and status/a leave the ring
	send("alarms/x1") // trigger: post-window until T0+17
	if st := r.s.Stats().Ring; !st.Capturing || st.Evicted != 2 {
		r.cancel()
		<-r.done
		t.Fatalf("after the trigger: %+v, want capturing, 2 evicted (%v)", st, r.err)
	}
	r.clock.Advance(3 * time.Second)
	send("b/1") // T0+15: in the post-window
	r.clock.Advance(3 * time.Second)
	r.waitSnapshots(t, 1) // T0+18: the window has ended
	send("c/1")           // in the ring again
	if st := r.s.Stats().Ring; st.Capturing || st.Messages != 1 {
		t.Fatalf("re-armed: %+v, want 1 message in the ring", st)
	}

	r.clock.Advance(time.Second)
	send("alarms/y1") // T0+19: post-window until T0+24
	r.clock.Advance(4 * time.Second)
	send("alarms/y2") // T0+23: extended until T0+28
	r.clock.Advance(3 * time.Second)
	send("d/1") // T0+26: only in because of the extension
	r.clock.Advance(3 * time.Second)
	r.waitSnapshots(t, 2)

	r.clock.Advance(time.Second)
	send("e/1")
	r.manual <- struct{}{}
	if !testbroker.Eventually(5*time.Second, func() bool { return r.s.Stats().Ring.Capturing }) {
		t.Fatal("the manual trigger started no snapshot")
	}
	r.clock.Advance(6 * time.Second)
	r.waitSnapshots(t, 3)
	send("f/1") // armed: never written
	r.stop(t)

	if len(r.res.Parts) != 3 {
		t.Fatalf("parts %+v, want 3", r.res.Parts)
	}
	want := []struct {
		live    []string
		reasons []string
	}{
		{[]string{"a/2", "a/3", "alarms/x1", "b/1"}, []string{"trigger"}},
		{[]string{"c/1", "alarms/y1", "alarms/y2", "d/1"}, []string{"trigger", "trigger"}},
		{[]string{"e/1"}, []string{"manual"}},
	}
	for k, p := range r.res.Parts {
		if wantName := storage.PartName(pattern, k+1, time.Time{}); p.Path != wantName {
			t.Fatalf("part %d is %s, want %s", k+1, p.Path, wantName)
		}
		live, carried, snaps, msgs := snapshotPart(t, p.Path)
		if !eq(live, want[k].live) || !eq(carried, []string{"status/a=online"}) {
			t.Errorf("part %d: live %v carried %v, want %v and the retained status/a", k+1, live, carried, want[k].live)
		}
		var reasons []string
		for _, s := range snaps {
			reasons = append(reasons, s.Reason)
			if s.Reason == "trigger" {
				var found bool
				for _, m := range msgs {
					found = found || (m.Seq == s.Seq && m.Topic == s.Topic && strings.HasPrefix(m.Topic, "alarms/"))
				}
				if !found {
					t.Errorf("part %d: snapshot event %+v names no trigger message", k+1, s)
				}
			}
		}
		if !eq(reasons, want[k].reasons) {
			t.Errorf("part %d: snapshot events %+v, want reasons %v", k+1, snaps, want[k].reasons)
		}
	}
}

// The ring holds at most --ring-size bytes: the oldest messages go first,
// counted.
func TestSnapshotRingBoundedBySize(t *testing.T) {
	b := startBroker(t)
	pub := publisher(t, b, "pub")
	dir := t.TempDir()
	r := startSnapshots(t, b, filepath.Join(dir, "x-{n}.db"), recorder.Snapshot{Ring: time.Hour, RingSize: 1000, Post: time.Second}, 0)
	payload := strings.Repeat("p", 300)
	for i, topic := range []string{"t/1", "t/2", "t/3", "t/4", "t/5"} {
		publish(t, pub, topic, 0, false, []byte(payload))
		r.waitHandled(t, int64(i+1))
	}
	st := r.s.Stats().Ring
	if st.Messages != 3 || st.Bytes != 3*303 || st.Evicted != 2 || st.Size != 1000 {
		t.Fatalf("ring %+v, want the last 3 messages (909 bytes), 2 evicted", st)
	}
	publish(t, pub, "alarms/x", 0, false, []byte("!"))
	r.waitHandled(t, 6)
	r.clock.Advance(2 * time.Second)
	r.waitSnapshots(t, 1)
	r.stop(t)
	live, _, snaps, _ := snapshotPart(t, filepath.Join(dir, "x-0001.db"))
	if !eq(live, []string{"t/3", "t/4", "t/5", "alarms/x"}) || len(snaps) != 1 || snaps[0].Evicted != 2 {
		t.Fatalf("part: %v %+v, want t/3 t/4 t/5 alarms/x, 2 evicted", live, snaps)
	}
}
