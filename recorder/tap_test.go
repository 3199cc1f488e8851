package recorder

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// TestTapQueuesInStampOrder: publishers call Published concurrently; the
// capture's seq order must be the order of receive stamps, or a spool
// recovery (which takes everything stamped up to the last committed message
// as committed) skips a message that was acknowledged but committed later.
// It also wants every QoS 1 message made safe, with NotifySafe called.
func TestTapQueuesInStampOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tap.db")
	c, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tap := NewTap(c, Config{Session: storage.SessionInfo{Source: "broker", Broker: "mqtt://x", Protocol: 5, Version: "t", Host: "h"}})
	var notified atomic.Int64
	safeGrew := make(chan struct{}, 1)
	tap.NotifySafe(func() {
		notified.Add(1)
		select {
		case safeGrew <- struct{}{}:
		default:
		}
	})
	ctx := context.Background()
	if err := tap.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const publishers, each = 8, 2000
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				tap.Published(fmt.Sprint("c", p), "t", []byte("x"), byte(i%2), false, uint16(i+1), nil)
			}
		}()
	}
	wg.Wait()
	for tap.Safe() < tap.Handed() {
		select {
		case <-safeGrew:
		case <-time.After(10 * time.Second):
			t.Fatalf("safe %d of %d after 10 s", tap.Safe(), tap.Handed())
		}
	}
	if tap.Handed() != publishers*each/2 || tap.Safe() != tap.Handed() || notified.Load() == 0 {
		t.Errorf("handed %d, safe %d, notified %d times", tap.Handed(), tap.Safe(), notified.Load())
	}
	if _, err := tap.Stop(ctx, StopInterrupted); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Page(ctx, storage.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != publishers*each {
		t.Fatalf("%d messages stored", len(msgs))
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].TimeNS <= msgs[i-1].TimeNS {
			t.Fatalf("seq %d stamped %d, not after seq %d (%d)", msgs[i].Seq, msgs[i].TimeNS, msgs[i-1].Seq, msgs[i-1].TimeNS)
		}
	}
	if msgs[0].PacketID == 0 {
		t.Errorf("packet id not kept: %+v", msgs[0])
	}
}
