// Package broker embeds an MQTT broker (github.com/mochi-mqtt/server/v2)
// for mqtape demo, mqtape serve and the tests: real MQTT over real TCP on
// loopback, with no external process.
package broker

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Options configure an embedded broker.
type Options struct {
	// Listen are TCP addresses (default one: 127.0.0.1:0, a free port).
	Listen []string
	// WS are websocket listener addresses.
	WS []string
	// TLS, when set, makes the TCP listeners TLS listeners.
	TLS *tls.Config
	// Authenticate, when set, decides whether a client may connect, from
	// its client id, username and password (password is the broker's
	// buffer: read it during the call, never keep it). Nil lets every
	// client connect.
	Authenticate func(clientID, username string, password []byte) bool
	// Allow, when set, decides whether a connected client may use topic:
	// write is true for a PUBLISH it sends, false for a subscription (topic
	// is then the filter) and for each message delivered to it. Nil allows
	// everything.
	Allow func(clientID, topic string, write bool) bool
	// With neither Authenticate nor Allow set, everyone may connect and use
	// every topic.
	// Logger receives the broker's log (default: discarded).
	Logger *slog.Logger
	// Observer, when set, sees every routed message and client event.
	Observer Observer
	// MaxPending is how many messages may wait to be written to one slow
	// client before the broker drops (mochi default 8192).
	MaxPending int32
	// MaxPacketSize bounds every packet a client sends (default
	// DefaultMaxPacketSize); MQTT 5 clients are told it in the CONNACK.
	// Before a client has authenticated, PreAuthMaxPacket applies.
	MaxPacketSize uint32
	// ConnectTimeout closes a TCP connection that has not sent its CONNECT
	// in time (default DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// Warn, when set, receives a line for the operator when something goes
	// wrong that the broker works around (accepting fails and is retried).
	Warn func(msg string)
}

// Broker is a running embedded broker.
type Broker struct {
	srv       *mochi.Server
	addrs     []string
	listeners []string // mochi's listener ids
	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
	connMu    sync.Mutex
	conns     map[*guardConn]struct{} // open TCP connections

	observer       Observer
	durable        DurableObserver // nil: acknowledgements are not held
	gate           *ackGate
	warn           func(string)
	maxPacket      uint32
	connectTimeout time.Duration
}

// Start starts a broker and returns once its listeners accept connections.
func Start(o Options) (*Broker, error) {
	if len(o.Listen) == 0 && len(o.WS) == 0 {
		o.Listen = []string{"127.0.0.1:0"}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	caps := mochi.NewDefaultServerCapabilities()
	// mochi gives every message a 24 h expiry by default and then sends that
	// Message Expiry Interval to MQTT 5 subscribers as if the publisher had
	// set it. Like mosquitto, expire only what the publisher asked to.
	caps.MaximumMessageExpiryInterval = 0
	if o.MaxPending > 0 {
		caps.MaximumClientWritesPending = o.MaxPending
	}
	if o.MaxPacketSize == 0 {
		o.MaxPacketSize = DefaultMaxPacketSize
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	caps.MaximumPacketSize = o.MaxPacketSize
	// mochi copies a PUBLISH's properties (user properties, content
	// type...) into its PUBACK/PUBREC unless told not to; MQTT 5 clients
	// refuse such acknowledgements (see ackHook for the reason codes).
	caps.Compatibilities.NoInheritedPropertiesOnAck = true
	srv := mochi.New(&mochi.Options{InlineClient: true, Logger: o.Logger, Capabilities: caps})
	b := &Broker{srv: srv, closed: make(chan struct{}), conns: make(map[*guardConn]struct{}), observer: o.Observer, warn: o.Warn,
		maxPacket: o.MaxPacketSize, connectTimeout: o.ConnectTimeout}
	if d, ok := o.Observer.(DurableObserver); ok {
		b.durable, b.gate = d, &ackGate{d: d, waiting: make(map[*guardConn]struct{})}
		d.NotifySafe(b.gate.safeGrew)
	}
	hooks := []mochi.Hook{new(auth.AllowHook)}
	if o.Authenticate != nil || o.Allow != nil {
		hooks = []mochi.Hook{&accessHook{authenticate: o.Authenticate, allow: o.Allow, b: b}}
	}
	hooks = append(hooks, &ackHook{maxPacket: o.MaxPacketSize})
	if o.Observer != nil {
		hooks = append(hooks, &observerHook{o: o.Observer})
	}
	for _, h := range hooks {
		if err := srv.AddHook(h, nil); err != nil {
			return nil, fmt.Errorf("broker: add hook: %w", err)
		}
	}
	for i, addr := range o.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			b.closeListeners()
			return nil, fmt.Errorf("broker: listen %s: %w", addr, err)
		}
		if o.TLS != nil {
			ln = tls.NewListener(ln, o.TLS)
		}
		b.addrs = append(b.addrs, ln.Addr().String())
		id := fmt.Sprintf("tcp%d", i)
		tcp := listeners.NewNet(id, &guardedListener{Listener: ln, name: ln.Addr().String(), b: b})
		if err := srv.AddListener(guarded{Listener: tcp, b: b}); err != nil {
			ln.Close()
			return nil, fmt.Errorf("broker: %w", err)
		}
		b.listeners = append(b.listeners, id)
	}
	for i, addr := range o.WS {
		ws := listeners.NewWebsocket(listeners.Config{ID: fmt.Sprintf("ws%d", i), Address: addr})
		if err := srv.AddListener(guarded{Listener: ws, b: b}); err != nil {
			return nil, fmt.Errorf("broker: websocket %s: %w", addr, err)
		}
		b.listeners = append(b.listeners, ws.ID())
		b.addrs = append(b.addrs, addr)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	return b, nil
}

func (b *Broker) closeListeners() { b.Close() }

// Addr returns the first listener's address (host:port).
func (b *Broker) Addr() string { return b.addrs[0] }

// Addrs returns every listener's address.
func (b *Broker) Addrs() []string { return b.addrs }

// URL returns mqtt://host:port for the first listener.
func (b *Broker) URL() string { return "mqtt://" + b.addrs[0] }

// Server exposes the mochi server (for inline publishing and hooks).
func (b *Broker) Server() *mochi.Server { return b.srv }

// Kick drops a client's connection as if its network failed (no
// DISCONNECT), so the broker publishes its will. It reports whether the
// client was connected.
func (b *Broker) Kick(clientID string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok || cl.Closed() {
		return false
	}
	cl.Stop(errKicked)
	return true
}

var errKicked = errors.New("connection dropped by the demo")

// event records a broker event through the observer, if any.
func (b *Broker) event(kind string, v map[string]any) {
	if b.observer != nil {
		detail, _ := json.Marshal(v)
		b.observer.Event(kind, string(detail))
	}
}

// acceptFailed reports the first accept error of a run of them.
func (b *Broker) acceptFailed(listener string, err error) {
	b.event(EventAcceptError, map[string]any{"listener": listener, "error": err.Error()})
	if b.warn != nil {
		b.warn(fmt.Sprintf("accept on %s: %v; retrying with a backoff of up to 1s", listener, err))
	}
}

// acceptResumed reports that accepting works again after failures
// spread over d.
func (b *Broker) acceptResumed(listener string, failures int, d time.Duration) {
	b.event(EventAcceptResumed, map[string]any{"listener": listener, "failures": failures, "failing_ms": d.Milliseconds()})
	if b.warn != nil {
		b.warn(fmt.Sprintf("accept on %s: accepting again (%d failed attempts over %v)", listener, failures, d.Round(time.Millisecond)))
	}
}

// Close stops the broker and disconnects its clients. It may be called
// more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.closed)
		b.closeConns(false)
		done := make(chan struct{})
		go func() {
			b.stopListeners()
			b.closeErr = b.srv.Close()
			close(done)
		}()
		// mochi disconnects the clients it has registered, then waits for
		// every connection it accepted; one that registers meanwhile would
		// keep it waiting for as long as its client stays.
		select {
		case <-done:
		case <-time.After(closeGrace):
			b.closeConns(true)
			<-done
		}
	})
	return b.closeErr
}

// stopListeners closes every listener, disconnecting its clients as
// mochi would, and takes it out of mochi's list, so that mochi's Close
// finds none to close. mochi's own way (Server.closeListenerClients)
// deadlocks with a client that leaves at the same moment:
// Clients.GetByListener takes the clients' read lock twice (it calls Len
// while holding it), and a Clients.Delete waiting for the write lock in
// between blocks the second for good (mochi v2.7.9; seen in CI as a serve
// that never stopped, its Close waiting in GetByListener and the leaving
// client in Delete). GetAll takes the lock once.
func (b *Broker) stopListeners() {
	for _, id := range b.listeners {
		b.srv.Listeners.Close(id, b.disconnectClients)
		b.srv.Listeners.Delete(id)
	}
}

// disconnectClients disconnects the clients of one listener (a mochi
// CloseFn): MQTT 5 clients get a DISCONNECT saying the server shuts down.
func (b *Broker) disconnectClients(listener string) {
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Listener == listener && !cl.Closed() {
			_ = b.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
		}
	}
}

// closeGrace is how long Close lets mochi disconnect its clients before it
// closes whatever connections are left.
const closeGrace = 3 * time.Second
