package recorder_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/storage"
)

func startBroker(t *testing.T) *broker.Broker {
	t.Helper()
	return startBrokerWith(t, broker.Options{})
}

// startBrokerWith starts a broker with o (and a deep queue per client).
func startBrokerWith(t *testing.T, o broker.Options) *broker.Broker {
	t.Helper()
	o.MaxPending = 1 << 20
	b, err := broker.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func opts(t *testing.T, b *broker.Broker, id string) mqtt.Options {
	t.Helper()
	br, err := mqtt.ParseBroker(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	return mqtt.Options{Broker: br, ClientID: id, CleanSession: true, ConnectTimeout: 3 * time.Second,
		KeepAlive: 30 * time.Second}
}

func publisher(t *testing.T, b *broker.Broker, id string) mqtt.Client {
	t.Helper()
	c, err := mqttclient.Connect(context.Background(), opts(t, b, id), mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(100 * time.Millisecond) })
	return c
}

func publish(t *testing.T, c mqtt.Client, topic string, qos byte, retain bool, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publish timed out")
	}
}

type recording struct {
	rec     *recorder.Recorder
	cancel  context.CancelFunc
	done    chan struct{}
	res     recorder.Result
	err     error
	capture *storage.Capture
	path    string
}

// startRecording runs a recorder in the background and waits until it has subscribed.
func startRecording(t *testing.T, b *broker.Broker, path string, cfg recorder.Config) *recording {
	t.Helper()
	c, err := storage.OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	o := opts(t, b, "rec-"+t.Name())
	o.ManualAck, o.AutoReconnect = true, true
	subscribed := make(chan struct{})
	var once sync.Once
	r := &recording{capture: c, path: path, done: make(chan struct{})}
	r.rec = recorder.New(c, func(ctx context.Context, h mqtt.Handlers) (recorder.Subscriber, error) {
		cl, err := mqttclient.Connect(ctx, o, h)
		if err != nil {
			return nil, err
		}
		return notifySub{cl, func() { once.Do(func() { close(subscribed) }) }}, nil
	}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.res, r.err = r.rec.Run(ctx)
		c.Close()
	}()
	select {
	case <-subscribed:
	case <-r.done:
	case <-time.After(5 * time.Second):
		t.Fatal("recorder did not subscribe")
	}
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

type notifySub struct {
	mqtt.Client
	subscribed func()
}

func (n notifySub) Subscribe(ctx context.Context, subs []mqtt.Subscription) ([]byte, error) {
	g, err := n.Client.Subscribe(ctx, subs)
	n.subscribed()
	return g, err
}

func (r *recording) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("recorder did not stop")
	}
}

func readAll(t *testing.T, path string) ([]storage.Message, []storage.SessionInfo) {
	t.Helper()
	msgs, sessions, _ := capturetest.Read(t, path)
	return msgs, sessions
}

func waitStored(t *testing.T, r *recording, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.rec.Stats().Stored < n {
		if time.Now().After(deadline) {
			t.Fatalf("stored %d of %d messages", r.rec.Stats().Stored, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRecordsEverythingExactly(t *testing.T) {
	b := startBroker(t)
	pub := publisher(t, b, "pub")
	// Retained before the recorder subscribes: must arrive from the store.
	publish(t, pub, "status/dev1", 1, true, []byte("online"))
	publish(t, pub, "status/dev2", 0, true, []byte{})
	path := filepath.Join(t.TempDir(), "c.db")
	r := startRecording(t, b, path, recorder.Config{})
	waitStored(t, r, 1) // dev2's empty retained message clears it; dev1 remains

	big := bytes.Repeat([]byte{0, 0xff, 0x10, 0x80}, 1<<18) // 1 MiB binary
	type sent struct {
		topic   string
		qos     byte
		payload []byte
	}
	var want []sent
	for i := range 30 {
		s := sent{fmt.Sprintf("plant/%d/temp", i%3), byte(i % 3), []byte(fmt.Sprintf(`{"t":%d}`, i))}
		want = append(want, s)
	}
	want = append(want, sent{"bin/ü nicode/ /", 2, big}, sent{"empty", 1, []byte{}})
	for _, s := range want {
		publish(t, pub, s.topic, s.qos, false, s.payload)
	}
	// A live retained publish arrives with retain=0 to an existing subscriber (MQTT 3.1.1).
	publish(t, pub, "status/dev3", 1, true, []byte("live"))
	waitStored(t, r, int64(len(want))+2)
	r.stop(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	msgs, sessions := readAll(t, path)
	if len(msgs) != len(want)+2 {
		t.Fatalf("stored %d messages, want %d", len(msgs), len(want)+2)
	}
	if m := msgs[0]; m.Topic != "status/dev1" || !m.Retain || !m.FromStore || string(m.Payload) != "online" || m.QoS != 1 {
		t.Errorf("retained store message = %+v", m)
	}
	for i, s := range want {
		m := msgs[i+1]
		if m.Topic != s.topic || m.QoS != s.qos || !bytes.Equal(m.Payload, s.payload) || m.Retain || m.FromStore {
			t.Errorf("message %d: got %q qos %d retain %v (%d bytes), want %q qos %d (%d bytes)", i, m.Topic, m.QoS, m.Retain, len(m.Payload), s.topic, s.qos, len(s.payload))
		}
		if s.qos > 0 && m.PacketID == 0 {
			t.Errorf("message %d: QoS %d without packet id", i, s.qos)
		}
	}
	if last := msgs[len(msgs)-1]; last.Topic != "status/dev3" || last.Retain {
		t.Errorf("live retained publish recorded as %+v, want retain=0", last)
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].Seq != msgs[i-1].Seq+1 || msgs[i].OffsetNS < msgs[i-1].OffsetNS || msgs[i].TimeNS < msgs[i-1].TimeNS {
			t.Fatalf("order broken at %d: %+v then %+v", i, msgs[i-1], msgs[i])
		}
	}
	s := sessions[0]
	if s.StopReason != recorder.StopInterrupted || !s.Closed() || s.Filters[0].Filter != "#" || s.Filters[0].Granted != 2 || s.Dropped != 0 {
		t.Errorf("session = %+v", s)
	}
}

func TestBurstAndInterruptFlushesAll(t *testing.T) {
	b := startBroker(t)
	path := filepath.Join(t.TempDir(), "c.db")
	r := startRecording(t, b, path, recorder.Config{FlushInterval: 50 * time.Millisecond})
	pub := publisher(t, b, "pub")
	const n = 10000
	payload := bytes.Repeat([]byte("x"), 64)
	var toks []mqtt.Token
	for i := range n {
		toks = append(toks, pub.Publish(fmt.Sprintf("burst/%d", i%10), byte(i%2), false, payload))
	}
	for _, tok := range toks {
		<-tok.Done()
		if tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	// Wait until the broker delivered everything, then stop at once:
	// whatever was received must be on disk.
	deadline := time.Now().Add(10 * time.Second)
	for r.rec.Stats().Received < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	r.stop(t)
	if r.err != nil {
		t.Fatal(r.err)
	}
	msgs, _ := readAll(t, path)
	if len(msgs) != n || r.res.Stored != n || r.res.Dropped != 0 {
		t.Fatalf("stored %d (result %d, dropped %d), want %d", len(msgs), r.res.Stored, r.res.Dropped, n)
	}
}

func TestCountDurationAndAppend(t *testing.T) {
	b := startBroker(t)
	path := filepath.Join(t.TempDir(), "c.db")
	pub := publisher(t, b, "pub")

	r := startRecording(t, b, path, recorder.Config{Count: 5})
	for i := range 8 {
		publish(t, pub, "a", 1, false, []byte{byte(i)})
	}
	<-r.done
	if r.err != nil || r.res.StopReason != recorder.StopCount || r.res.Stored != 5 {
		t.Fatalf("count: %+v %v", r.res, r.err)
	}

	start := time.Now()
	r = startRecording(t, b, path, recorder.Config{Duration: 300 * time.Millisecond,
		Filters: []mqtt.Subscription{{Filter: "b/+", QoS: 1}}})
	publish(t, pub, "a", 0, false, []byte("not subscribed"))
	publish(t, pub, "b/1", 0, false, []byte("yes"))
	<-r.done
	if r.err != nil || r.res.StopReason != recorder.StopDuration || time.Since(start) > 3*time.Second {
		t.Fatalf("duration: %+v %v after %s", r.res, r.err, time.Since(start))
	}
	msgs, sessions := readAll(t, path)
	if len(sessions) != 2 || len(msgs) != 6 || msgs[5].Topic != "b/1" || msgs[5].Session != 2 || msgs[4].Session != 1 {
		t.Fatalf("sessions=%d msgs=%+v", len(sessions), msgs)
	}
	if sessions[1].Filters[0] != (storage.Filter{Filter: "b/+", QoS: 1, Granted: 1}) {
		t.Errorf("filters = %+v", sessions[1].Filters)
	}
}

// denyOptions make a broker that refuses subscriptions to '#' and logins
// by "mallory".
var denyOptions = broker.Options{
	Authenticate: func(_, username string, _ []byte) bool { return username != "mallory" },
	Allow:        func(_, topic string, write bool) bool { return write || topic != "#" },
}

func TestSubscriptionDenied(t *testing.T) {
	b := startBrokerWith(t, denyOptions)
	path := filepath.Join(t.TempDir(), "c.db")
	r := startRecording(t, b, path, recorder.Config{})
	<-r.done
	if !errors.Is(r.err, mqtt.ErrSubscribeDenied) || r.res.StopReason != recorder.StopDenied {
		t.Fatalf("err = %v, result %+v", r.err, r.res)
	}
	c, _ := storage.Open(path)
	defer c.Close()
	ev, _ := c.Events(context.Background(), 0)
	found := false
	for _, e := range ev {
		found = found || e.Kind == storage.EventSubscribeDeny
	}
	if !found {
		t.Errorf("no subscription_denied event in %+v", ev)
	}

	// Partially denied: recording goes on with the granted filter.
	r = startRecording(t, b, filepath.Join(t.TempDir(), "p.db"), recorder.Config{
		Filters: []mqtt.Subscription{{Filter: "#", QoS: 1}, {Filter: "ok/#", QoS: 1}}, Duration: 200 * time.Millisecond})
	<-r.done
	if r.err != nil || r.res.Filters[0].Granted != 0x80 || r.res.Filters[1].Granted != 1 {
		t.Fatalf("partial: %v %+v", r.err, r.res.Filters)
	}
}

func TestConnectErrors(t *testing.T) {
	b := startBrokerWith(t, denyOptions)
	o := opts(t, b, "x")
	o.Username = "mallory"
	_, err := mqttclient.Connect(context.Background(), o, mqtt.Handlers{})
	var refused *mqtt.RefusedError
	if !errors.As(err, &refused) || !errors.Is(err, mqtt.ErrRefused) {
		t.Fatalf("bad credentials: %v", err)
	}
	if refused.Code != 4 && refused.Code != 5 {
		t.Errorf("CONNACK code %d, want 4 or 5", refused.Code)
	}

	b.Close()
	start := time.Now()
	o = opts(t, b, "y")
	o.ConnectTimeout = time.Second
	_, err = mqttclient.Connect(context.Background(), o, mqtt.Handlers{})
	if !errors.Is(err, mqtt.ErrUnreachable) || time.Since(start) > 3*time.Second {
		t.Fatalf("closed port: %v after %s", err, time.Since(start))
	}
}

// TestReconnectsAfterBrokerRestart: the broker goes away and comes back on
// the same port; the recorder reconnects, re-subscribes, records the gap
// and goes on.
func TestReconnectsAfterBrokerRestart(t *testing.T) {
	b := startBroker(t)
	addr := b.Addr()
	path := filepath.Join(t.TempDir(), "c.db")
	r := startRecording(t, b, path, recorder.Config{})
	publish(t, publisher(t, b, "pub1"), "before", 1, false, []byte("1"))
	waitStored(t, r, 1)
	b.Close()

	b2, err := broker.Start(broker.Options{Listen: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	deadline := time.Now().Add(20 * time.Second)
	for r.rec.Stats().Reconnects == 0 {
		if time.Now().After(deadline) {
			t.Fatal("recorder did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Re-subscribed: a new message arrives.
	pub := publisher(t, b2, "pub2")
	for r.rec.Stats().Stored < 2 && time.Now().Before(deadline) {
		publish(t, pub, "after", 1, false, []byte("2"))
		time.Sleep(100 * time.Millisecond)
	}
	r.stop(t)
	msgs, _ := readAll(t, path)
	if len(msgs) < 2 || msgs[0].Topic != "before" || msgs[1].Topic != "after" {
		t.Fatalf("messages = %+v", msgs)
	}
	c, _ := storage.Open(path)
	defer c.Close()
	ev, _ := c.Events(context.Background(), 0)
	kinds := map[string]int{}
	for _, e := range ev {
		kinds[e.Kind]++
	}
	if kinds[storage.EventConnectionLost] != 1 || kinds[storage.EventReconnected] != 1 || kinds[storage.EventSubscribed] < 2 {
		t.Errorf("events: %v", kinds)
	}
}
