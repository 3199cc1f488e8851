package broker_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
)

// access records what the broker asked Options.Authenticate and
// Options.Allow.
type access struct {
	mu    sync.Mutex
	auths []string // "clientID username password"
	acl   []aclCall
}

type aclCall struct {
	clientID, topic string
	write           bool
}

// authenticate lets in alice with the password "right".
func (a *access) authenticate(clientID, username string, password []byte) bool {
	a.mu.Lock()
	a.auths = append(a.auths, clientID+" "+username+" "+string(password))
	a.mu.Unlock()
	return username == "alice" && string(password) == "right"
}

// allow refuses subscriptions to secret/# and publishes to open/denied.
func (a *access) allow(clientID, topic string, write bool) bool {
	a.mu.Lock()
	a.acl = append(a.acl, aclCall{clientID, topic, write})
	a.mu.Unlock()
	return !(write && topic == "open/denied" || !write && topic == "secret/#")
}

func dial(t *testing.T, b *broker.Broker, id, user, password string, h mqtt.Handlers) (mqtt.Client, error) {
	t.Helper()
	br, err := mqtt.ParseBroker(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: id, Username: user, Password: password,
		CleanSession: true, ConnectTimeout: 3 * time.Second}, h)
	if err == nil {
		t.Cleanup(func() { c.Disconnect(50 * time.Millisecond) })
	}
	return c, err
}

// TestAuthenticateAndAllow: the stdlib-typed hooks see the client id,
// username, password, topics and direction, and what they refuse is
// refused: a CONNECT (CONNACK "bad username or password"), a subscription
// (SUBACK 0x80) and a PUBLISH (dropped, never delivered).
func TestAuthenticateAndAllow(t *testing.T) {
	a := new(access)
	b, err := broker.Start(broker.Options{Authenticate: a.authenticate, Allow: a.allow})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })

	_, err = dial(t, b, "intruder", "alice", "wrong", mqtt.Handlers{})
	var refused *mqtt.RefusedError
	if !errors.As(err, &refused) || refused.Code != 4 && refused.Code != 5 {
		t.Fatalf("wrong password: %v, want CONNACK 4 or 5 (mochi answers 3.1.1 clients with 5)", err)
	}

	got := make(chan mqtt.Message, 10)
	sub, err := dial(t, b, "sub", "alice", "right", mqtt.Handlers{Message: func(m mqtt.Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	codes, err := sub.Subscribe(context.Background(), []mqtt.Subscription{{Filter: "secret/#", QoS: 1}, {Filter: "open/#", QoS: 1}})
	if err != nil || !slices.Equal(codes, []byte{0x80, 1}) {
		t.Fatalf("subscribe: %v, granted % x, want 80 01", err, codes)
	}
	pub, err := dial(t, b, "pub", "alice", "right", mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	// One connection's packets are handled in order: open/ok arriving
	// first means open/denied, published before it, was dropped.
	for _, topic := range []string{"open/denied", "open/ok"} {
		tok := pub.Publish(topic, 0, false, []byte(topic))
		<-tok.Done()
		if err := tok.Error(); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case m := <-got:
		if m.Topic != "open/ok" {
			t.Fatalf("first delivery is %s, want open/ok (open/denied is refused)", m.Topic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("open/ok was not delivered")
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	for _, want := range []string{"intruder alice wrong", "sub alice right", "pub alice right"} {
		if !slices.Contains(a.auths, want) {
			t.Errorf("Authenticate never saw %q; it saw %q", want, a.auths)
		}
	}
	for _, want := range []aclCall{{"sub", "secret/#", false}, {"sub", "open/#", false}, {"pub", "open/denied", true},
		{"pub", "open/ok", true}, {"sub", "open/ok", false}} {
		if !slices.Contains(a.acl, want) {
			t.Errorf("Allow never saw %+v; it saw %+v", want, a.acl)
		}
	}
	if slices.Contains(a.acl, aclCall{"intruder", "open/denied", true}) {
		t.Error("a refused client reached Allow")
	}
}

// TestAccessDefaults: a nil Authenticate lets everyone connect, a nil
// Allow allows everything, and the mochi Hooks do not mix with either.
func TestAccessDefaults(t *testing.T) {
	for name, o := range map[string]broker.Options{
		"allow only":        {Allow: func(string, string, bool) bool { return true }},
		"authenticate only": {Authenticate: func(string, string, []byte) bool { return true }},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := broker.Start(o)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			c, err := dial(t, b, "anyone", "", "", mqtt.Handlers{})
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			if codes, err := c.Subscribe(context.Background(), []mqtt.Subscription{{Filter: "#", QoS: 1}}); err != nil || !slices.Equal(codes, []byte{1}) {
				t.Fatalf("subscribe: %v, granted % x", err, codes)
			}
		})
	}
}
