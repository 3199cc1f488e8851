package recorder

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

type grantAll struct{}

func (grantAll) Subscribe(_ context.Context, subs []mqtt.Subscription) ([]byte, error) {
	return make([]byte, len(subs)), nil
}
func (grantAll) Disconnect(time.Duration) {}

// Messages in the ring are acknowledged as they enter it; messages of a
// post-window only once committed to their part.
func TestSnapshotAcks(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	handlers := make(chan mqtt.Handlers, 1)
	s := NewSnapshotter(func(_ context.Context, h mqtt.Handlers) (Subscriber, error) {
		handlers <- h
		return grantAll{}, nil
	}, Config{FlushInterval: time.Second, Snapshot: &Snapshot{Ring: time.Minute, Post: time.Minute,
		Pattern: filepath.Join(t.TempDir(), "s.db"), Trigger: func(m *storage.Message) bool { return strings.HasPrefix(m.Topic, "alarms/") }}})
	s.SetClock(clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := s.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	defer func() { cancel(); <-done }()
	h := <-handlers
	var mu sync.Mutex
	storedAtAck := map[string]int64{}
	deliver := func(topic string) {
		h.Message(mqtt.Message{Topic: topic, QoS: 1, Payload: []byte("x"), Ack: func() {
			mu.Lock()
			storedAtAck[topic] = s.stored.Load()
			mu.Unlock()
		}})
	}
	acked := func(topic string) (int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		n, ok := storedAtAck[topic]
		return n, ok
	}
	waitHandled := func(n int64) { until(t, func() bool { return s.handled.Load() >= n }) }
	deliver("a/1")
	deliver("alarms/x")
	waitHandled(2)
	for _, topic := range []string{"a/1", "alarms/x"} {
		if n, ok := acked(topic); !ok || n != 0 {
			t.Fatalf("%s: acknowledged %v with %d stored; want at once, before any commit", topic, ok, n)
		}
	}
	deliver("b/1") // in the post-window
	waitHandled(3)
	if _, ok := acked("b/1"); ok {
		t.Fatal("a post-window message was acknowledged before its commit")
	}
	clock.Advance(time.Second) // the flush tick
	until(t, func() bool { _, ok := acked("b/1"); return ok })
	if n, _ := acked("b/1"); n != 3 {
		t.Fatalf("b/1 acknowledged with %d messages committed, want 3", n)
	}
}

// The ring ages while traffic is quiet: what is older than Ring leaves it
// at the next tick, without a new message.
func TestSnapshotRingAgesWithoutTraffic(t *testing.T) {
	clock := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	handlers := make(chan mqtt.Handlers, 1)
	s := NewSnapshotter(func(_ context.Context, h mqtt.Handlers) (Subscriber, error) {
		handlers <- h
		return grantAll{}, nil
	}, Config{FlushInterval: time.Second, Snapshot: &Snapshot{Ring: 10 * time.Second,
		Pattern: filepath.Join(t.TempDir(), "s.db"), Trigger: func(*storage.Message) bool { return false }}})
	s.SetClock(clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(ctx)
	}()
	defer func() { cancel(); <-done }()
	h := <-handlers
	h.Message(mqtt.Message{Topic: "a/1", Payload: []byte("x")})
	until(t, func() bool { return s.Stats().Ring.Messages == 1 })
	clock.Advance(11 * time.Second)
	until(t, func() bool { r := s.Stats().Ring; return r.Messages == 0 && r.Evicted == 1 && r.Bytes == 0 })
}

// until waits (up to 10 s) for cond.
func until(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
