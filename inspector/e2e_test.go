package inspector

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

func clientOpts(t *testing.T, url, id string) mqtt.Options {
	t.Helper()
	b, err := mqtt.ParseBroker(url)
	if err != nil {
		t.Fatal(err)
	}
	return mqtt.Options{Broker: b, ClientID: id, CleanSession: true, ConnectTimeout: 3 * time.Second, KeepAlive: 30 * time.Second}
}

// TestEndToEnd records real MQTT traffic with the recorder, opens the file
// in the inspector, filters it, and plays the selection back to the broker
// with p, where a subscriber receives exactly the filtered messages.
func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	path, pub := recordE2E(t, b.URL())
	defer pub.Disconnect(100 * time.Millisecond)

	// A subscriber for the replay.
	rx := &received{}
	sub, err := mqttclient.Connect(ctx, clientOpts(t, b.URL(), "sub"), mqtt.Handlers{Message: rx.add})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(100 * time.Millisecond)
	if _, err := sub.Subscribe(ctx, []mqtt.Subscription{{Filter: "plant/#", QoS: 1}}); err != nil {
		t.Fatal(err)
	}

	h := start(t, path, Options{Connect: realConnector(t), Broker: b.URL(), Mouse: true}, 120, 30)
	if !h.contains("30 messages") || !h.contains(`{"temp":20}`) {
		t.Fatalf("recorded capture on screen:\n%s", h.text())
	}
	h.press('/', "plant/2/#", tcell.KeyEnter, tcell.KeyHome, 'p', tcell.KeyEnter, tcell.KeyCtrlU, "max", tcell.KeyEnter)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := rx.len()
		if n >= 10 && h.contains("played 10 messages") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replayed %d messages:\n%s", n, h.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	rx.mu.Lock()
	defer rx.mu.Unlock()
	var want []string
	for i := 2; i < 30; i += 3 {
		want = append(want, fmt.Sprintf(`plant/2/temp {"temp":%d}`, 20+i))
	}
	if got := rx.got; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("subscriber received:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// q through the real event loop ends Run.
	h.screen.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
	select {
	case err := <-h.done:
		h.done <- err
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("q did not end Run")
	}
}

// realConnector connects p's publisher with mqttclient at the protocol
// level the inspector asks for, as cmd_inspect's connector does.
func realConnector(t *testing.T) Connector {
	return func(ctx context.Context, url string, protocol int) (replay.Publisher, func(), error) {
		o := clientOpts(t, url, "player")
		o.ProtocolVersion = protocol
		c, err := mqttclient.Connect(ctx, o, mqtt.Handlers{})
		if err != nil {
			return nil, nil, err
		}
		return c, func() { c.Disconnect(100 * time.Millisecond) }, nil
	}
}

// TestPlayAsRecorded: p replays an MQTT 5 capture as MQTT 5, so a
// subscriber receives the recorded properties, as mqtape play does;
// Options.Protocol 4 (-V 311) replays it as 3.1.1 and says how many
// messages lost their properties.
func TestPlayAsRecorded(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Start(broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	path := filepath.Join(t.TempDir(), "v5.db")
	var msgs []storage.Message
	for i := range 2 {
		m := msg(time.Duration(i)*time.Millisecond, "req/dev1", 1, fmt.Sprintf("cmd %d", i))
		m.TimeNS = t0 + m.OffsetNS
		m.Props = &mqtt.Properties{ContentType: "text/plain", CorrelationData: []byte{0, byte(i)},
			UserProperties: []mqtt.UserProperty{{Key: "region", Value: "eu"}}}
		msgs = append(msgs, m)
	}
	capturetest.Write(t, path, capturetest.Session{Messages: msgs, Info: storage.SessionInfo{Source: "subscriber",
		Broker: b.URL(), ClientID: "rec", Protocol: 5, CleanSession: true, StartedNS: t0, Version: "test", Host: "h"}})

	var mu sync.Mutex
	var got []mqtt.Message
	so := clientOpts(t, b.URL(), "sub")
	so.ProtocolVersion = 5
	sub, err := mqttclient.Connect(ctx, so, mqtt.Handlers{Message: func(m mqtt.Message) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(100 * time.Millisecond)
	if _, err := sub.Subscribe(ctx, []mqtt.Subscription{{Filter: "req/#", QoS: 1}}); err != nil {
		t.Fatal(err)
	}
	received := func() []mqtt.Message { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }

	h := start(t, path, Options{Connect: realConnector(t), Broker: b.URL()}, 120, 30)
	h.press(tcell.KeyHome, 'p', tcell.KeyEnter, tcell.KeyCtrlU, "max", tcell.KeyEnter)
	if !testbroker.Eventually(10*time.Second, func() bool { h.settle(); return h.contains("played 2 messages") }) {
		t.Fatalf("as recorded: no report:\n%s", h.text())
	}
	if !testbroker.Eventually(10*time.Second, func() bool { return len(received()) == 2 }) {
		t.Fatalf("as recorded: subscriber got %d messages", len(received()))
	}
	for _, m := range received() {
		i, p := int(m.Payload[len(m.Payload)-1]-'0'), m.Props
		if p == nil || p.ContentType != "text/plain" || !bytes.Equal(p.CorrelationData, []byte{0, byte(i)}) ||
			len(p.UserProperties) != 1 || p.UserProperties[0] != (mqtt.UserProperty{Key: "region", Value: "eu"}) {
			t.Errorf("as recorded: message %d arrived with properties %+v", i, p)
		}
	}
	if !h.contains("over MQTT 5") || h.contains("lost") {
		t.Errorf("as recorded: report:\n%s", h.text())
	}

	h311 := start(t, path, Options{Connect: realConnector(t), Broker: b.URL(), Protocol: 4}, 170, 30)
	h311.press(tcell.KeyHome, 'p', tcell.KeyEnter, tcell.KeyCtrlU, "max", tcell.KeyEnter)
	if !testbroker.Eventually(10*time.Second, func() bool { h311.settle(); return h311.contains("played 2 messages") }) {
		t.Fatalf("-V 311: no report:\n%s", h311.text())
	}
	if !h311.contains("over MQTT 3.1.1") || !h311.contains("2 messages lost their MQTT 5 properties (-V 311)") {
		t.Errorf("-V 311: report:\n%s", h311.text())
	}
	if !testbroker.Eventually(10*time.Second, func() bool { return len(received()) == 4 }) {
		t.Fatalf("-V 311: subscriber got %d messages in all", len(received()))
	}
	for _, m := range received()[2:] {
		if p := m.Props; p != nil && (p.ContentType != "" || len(p.UserProperties) > 0 || p.CorrelationData != nil) {
			t.Errorf("-V 311: message arrived with properties %+v", p)
		}
	}
}

// received collects the messages a subscriber gets as "topic payload".
type received struct {
	mu  sync.Mutex
	got []string
}

func (r *received) add(m mqtt.Message) {
	r.mu.Lock()
	r.got = append(r.got, m.Topic+" "+string(m.Payload))
	r.mu.Unlock()
}

func (r *received) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// recordE2E records 30 messages on plant/0..2/temp from the broker at url
// with the real `mqtape record` binary (this package must not import the
// recorder) and returns the capture's path and the publisher, still
// connected, for the caller to disconnect.
func recordE2E(t *testing.T, url string) (string, mqtt.Client) {
	t.Helper()
	ctx := context.Background()
	bin := testbroker.BuildMqtape(t)
	path := filepath.Join(t.TempDir(), "recorded.db")
	var stderr strings.Builder
	rec := exec.Command(bin, "record", "-b", url, "-t", "plant/#", "-q", "1", "--count", "30", "--quiet", "-o", path)
	rec.Stderr = &stderr
	if err := rec.Start(); err != nil {
		t.Fatal(err)
	}
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Wait() }()
	t.Cleanup(func() { rec.Process.Kill() })
	subscribed := func() bool {
		c, err := storage.Open(path)
		if err != nil {
			return false
		}
		defer c.Close()
		events, _ := c.Events(ctx, 0)
		return slices.ContainsFunc(events, func(e storage.Event) bool { return e.Kind == storage.EventSubscribed })
	}
	if !testbroker.Eventually(10*time.Second, subscribed) {
		t.Fatalf("the recorder did not subscribe: %s", stderr.String())
	}
	pub, err := mqttclient.Connect(ctx, clientOpts(t, url, "pub"), mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		tok := pub.Publish(fmt.Sprintf("plant/%d/temp", i%3), 1, false, []byte(fmt.Sprintf(`{"temp":%d}`, 20+i)))
		<-tok.Done()
		if err := tok.Error(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-recDone:
		if err != nil {
			t.Fatalf("record: %v: %s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the recorder did not stop after 30 messages")
	}
	return path, pub
}
