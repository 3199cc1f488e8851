package recorder_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/storage"
)

// fakeSub delivers scripted messages once subscribed.
type fakeSub struct {
	h    mqtt.Handlers
	msgs []mqtt.Message
}

func (f *fakeSub) Subscribe(ctx context.Context, subs []mqtt.Subscription) ([]byte, error) {
	go func() {
		for _, m := range f.msgs {
			f.h.Message(m)
		}
	}()
	g := make([]byte, len(subs))
	for i, s := range subs {
		g[i] = s.QoS
	}
	return g, nil
}
func (f *fakeSub) Disconnect(time.Duration) {}

// TestRedeliveriesAreNotStoredTwice: a persistent session's redelivery
// (DUP=1) of a message the previous session already committed is
// acknowledged but not stored again; other messages are.
func TestRedeliveriesAreNotStoredTwice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	c, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info := storage.SessionInfo{Source: "subscriber", ClientID: "rec1", Protocol: 4, Broker: "mqtt://x", Version: "t", Host: "h"}
	s, _ := c.BeginSession(ctx, info)
	s.Write(ctx, []storage.Message{{Topic: "a", QoS: 1, PacketID: 7, Payload: []byte("committed, not acked")}}, nil, 1)

	acked := 0
	ack := func() { acked++ }
	script := []mqtt.Message{
		{Topic: "a", QoS: 1, PacketID: 7, Dup: true, Payload: []byte("committed, not acked"), Ack: ack}, // redelivery: skip
		{Topic: "a", QoS: 1, PacketID: 8, Dup: true, Payload: []byte("never got it"), Ack: ack},         // redelivery of an unseen one: store
		{Topic: "a", QoS: 1, PacketID: 7, Payload: []byte("committed, not acked"), Ack: ack},            // new message, same content: store
	}
	info.CleanSession = false
	r := recorder.New(c, func(ctx context.Context, h mqtt.Handlers) (recorder.Subscriber, error) {
		return &fakeSub{h: h, msgs: script}, nil
	}, recorder.Config{Count: 2, Session: info, Filters: []mqtt.Subscription{{Filter: "#", QoS: 1}}})
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stored != 2 || res.Duplicates != 1 || acked != 3 {
		t.Fatalf("stored %d, duplicates %d, acked %d; want 2, 1, 3", res.Stored, res.Duplicates, acked)
	}
	msgs, _ := c.Page(ctx, storage.Query{Session: res.SessionID})
	if len(msgs) != 2 || string(msgs[0].Payload) != "never got it" || !msgs[0].Dup {
		t.Fatalf("stored %+v", msgs)
	}
}
