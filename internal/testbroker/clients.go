package testbroker

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
)

// This file holds what the tests of internal/cli and e2e both need: the
// embedded broker, the real mqtape binary and a test client on each side
// of a broker.

// StartEmbedded starts the embedded broker of `mqtape serve` in the test
// process on a free loopback port until the test ends.
func StartEmbedded(t testing.TB, opts broker.Options) *broker.Broker {
	t.Helper()
	b, err := broker.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// StartWithPassword starts the embedded broker (StartEmbedded) accepting
// only username with password, and the tests' own publishers (client ids
// "pub-...", as Connect makes them).
func StartWithPassword(t testing.TB, username, password string) *broker.Broker {
	t.Helper()
	return StartEmbedded(t, broker.Options{Authenticate: func(clientID, user string, pw []byte) bool {
		if strings.HasPrefix(clientID, "pub-") {
			return true // the tests' own publisher
		}
		return user == username && string(pw) == password
	}})
}

// BuildMqtape builds the real mqtape binary into a temporary directory.
func BuildMqtape(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mqtape")
	start := time.Now()
	out, err := exec.Command("go", "build", "-o", bin, "github.com/mqtape/mqtape").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built mqtape in %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// Connect connects a publisher (client id "pub-" and the test's name) to
// the broker at url until the test ends.
func Connect(t testing.TB, url string) mqtt.Client {
	t.Helper()
	br, err := mqtt.ParseBroker(url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: "pub-" + t.Name(),
		CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(50 * time.Millisecond) })
	return c
}

// Publish publishes one message and waits until the broker has it.
func Publish(t testing.TB, c mqtt.Client, topic string, qos byte, retain bool, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, qos, retain, payload)
	<-tok.Done()
	if tok.Error() != nil {
		t.Fatal(tok.Error())
	}
}

// Eventually polls cond until it holds or timeout passes, and reports
// whether it held.
func Eventually(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// Received is a message seen by a test subscriber, with its arrival time.
type Received struct {
	At     time.Time
	Topic  string
	QoS    byte
	Retain bool
	Body   string
}

// Subscriber collects the messages a test client receives.
type Subscriber struct {
	mu  sync.Mutex
	got []Received
}

// Subscribe connects a '#' subscriber at QoS 2 until the test ends.
func Subscribe(t testing.TB, url string) *Subscriber {
	t.Helper()
	br, _ := mqtt.ParseBroker(url)
	s := &Subscriber{}
	c, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: fmt.Sprintf("sub-%d", time.Now().UnixNano()%1e9),
		CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{Message: s.OnMessage})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Disconnect(50 * time.Millisecond) })
	if _, err := c.Subscribe(context.Background(), []mqtt.Subscription{{Filter: "#", QoS: 2}}); err != nil {
		t.Fatal(err)
	}
	return s
}

// OnMessage is the message handler: it records m and when it came.
func (s *Subscriber) OnMessage(m mqtt.Message) {
	s.mu.Lock()
	s.got = append(s.got, Received{time.Now(), m.Topic, m.QoS, m.Retain, string(m.Payload)})
	s.mu.Unlock()
}

// Wait waits up to 10 s for n messages and fails the test unless exactly
// n came.
func (s *Subscriber) Wait(t testing.TB, n int) []Received {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		got := slices.Clone(s.got)
		s.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				t.Fatalf("subscriber got %d messages, want %d", len(got), n)
			}
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}
