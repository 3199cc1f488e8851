package mqttclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	paho5 "github.com/eclipse/paho.golang/paho"
	"github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/mqtape/mqtape/mqtt"
)

// v5Client is the MQTT 5 client (github.com/eclipse/paho.golang) behind the
// same Client interface as the 3.1.1 one. It reconnects by itself with
// backoff when Options.AutoReconnect is set.
type v5Client struct {
	o      mqtt.Options
	h      mqtt.Handlers
	tlsCfg *tls.Config

	mu        sync.Mutex
	c         *paho5.Client
	maxPacket uint32 // the broker's Maximum Packet Size (0: no limit)
	lastErr   error
	closed    chan struct{}
	closeOnce sync.Once
}

func connectPaho5(ctx context.Context, o mqtt.Options, h mqtt.Handlers) (mqtt.Client, error) {
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = 60 * time.Second
	}
	p := &v5Client{o: o, h: h, closed: make(chan struct{})}
	if o.Broker.TLS() {
		host, _, _ := net.SplitHostPort(o.Broker.Host)
		cfg, err := o.TLS.Config(host)
		if err != nil {
			return nil, err
		}
		p.tlsCfg = cfg
	}
	c, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	p.connected(c, false)
	return p, nil
}

func (p *v5Client) dial(ctx context.Context) (*paho5.Client, error) {
	conn, err := dialConn(ctx, p.o.Broker, p.tlsCfg, p.o.ConnectTimeout, modeOf(p.o))
	if err != nil {
		return nil, unreachable(p.o.Broker, err)
	}
	var c *paho5.Client
	cfg := paho5.ClientConfig{
		ClientID:                   p.o.ClientID,
		Session:                    ackSession{state.NewInMemory()},
		Conn:                       packets.NewThreadSafeConn(conn),
		EnableManualAcknowledgment: p.o.ManualAck,
		OnClientError:              func(err error) { p.setErr(err) },
		OnServerDisconnect: func(d *paho5.Disconnect) {
			p.setErr(fmt.Errorf("broker disconnected: %s", mqtt.ReasonText(d.ReasonCode)))
		},
	}
	if p.h.Message != nil {
		cfg.OnPublishReceived = []func(paho5.PublishReceived) (bool, error){func(pr paho5.PublishReceived) (bool, error) {
			p.onPublish(c, pr.Packet)
			return true, nil
		}}
	}
	c = paho5.NewClient(cfg)
	cp := &paho5.Connect{ClientID: p.o.ClientID, KeepAlive: uint16(p.o.KeepAlive / time.Second), CleanStart: p.o.CleanSession}
	if !p.o.CleanSession {
		forever := uint32(0xFFFFFFFF)
		cp.Properties = &paho5.ConnectProperties{SessionExpiryInterval: &forever}
	}
	user := p.o.Username
	if user == "" {
		user = p.o.Broker.Username
	}
	if user != "" {
		cp.Username, cp.UsernameFlag = user, true
	}
	if p.o.Password != "" {
		cp.Password, cp.PasswordFlag = []byte(p.o.Password), true
	}
	if w := p.o.Will; w != nil {
		cp.WillMessage = &paho5.WillMessage{Topic: w.Topic, Payload: w.Payload, QoS: w.QoS, Retain: w.Retain}
	}
	cctx, cancel := context.WithTimeout(ctx, p.o.ConnectTimeout)
	defer cancel()
	ack, err := c.Connect(cctx, cp)
	if err != nil {
		conn.Close()
		if ack != nil && ack.ReasonCode >= 0x80 {
			reason := mqtt.ReasonText(ack.ReasonCode)
			if ack.Properties != nil && ack.Properties.ReasonString != "" {
				reason += " (" + ack.Properties.ReasonString + ")"
			}
			return nil, &mqtt.RefusedError{Code: ack.ReasonCode, Reason: reason}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "EOF") {
			return nil, fmt.Errorf("%w: %s: the broker closed the connection at CONNECT: does it speak MQTT 5? try -V 311",
				mqtt.ErrUnreachable, p.o.Broker)
		}
		return nil, unreachable(p.o.Broker, err)
	}
	p.mu.Lock()
	p.maxPacket = 0
	if ack.Properties != nil && ack.Properties.MaximumPacketSize != nil {
		p.maxPacket = *ack.Properties.MaximumPacketSize
	}
	if ack.Properties != nil && ack.Properties.AssignedClientID != "" {
		p.o.ClientID = ack.Properties.AssignedClientID // server-assigned: keep it for reconnects
	}
	p.mu.Unlock()
	return c, nil
}

// AssignedClientID returns the client id in use (the broker's choice when
// none was given).
func (p *v5Client) AssignedClientID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.o.ClientID
}

func (p *v5Client) setErr(err error) {
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
}

// connected installs c and watches it for loss.
func (p *v5Client) connected(c *paho5.Client, reconnect bool) {
	p.mu.Lock()
	p.c = c
	p.mu.Unlock()
	if p.h.Connected != nil {
		go p.h.Connected(reconnect)
	}
	go p.watch(c)
}

func (p *v5Client) watch(c *paho5.Client) {
	select {
	case <-p.closed:
		return
	case <-c.Done():
	}
	select {
	case <-p.closed:
		return
	default:
	}
	p.mu.Lock()
	err := p.lastErr
	p.mu.Unlock()
	if p.h.Lost != nil {
		p.h.Lost(lost(err))
	}
	if !p.o.AutoReconnect {
		return
	}
	backoff := time.Second
	for {
		select {
		case <-p.closed:
			return
		case <-time.After(backoff):
		}
		if p.h.Reconnecting != nil {
			p.h.Reconnecting()
		}
		nc, err := p.dial(context.Background())
		if err == nil {
			p.connected(nc, true)
			return
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (p *v5Client) client() *paho5.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c
}

func (p *v5Client) onPublish(c *paho5.Client, pb *paho5.Publish) {
	m := mqtt.Message{Topic: pb.Topic, Payload: pb.Payload, QoS: pb.QoS, Retain: pb.Retain, Dup: pb.Duplicate(),
		PacketID: pb.PacketID, Ack: func() {}}
	if p.o.ManualAck && pb.QoS > 0 {
		m.Ack = func() { _ = c.Ack(pb) }
	}
	if pp := pb.Properties; pp != nil {
		props := &mqtt.Properties{ContentType: pp.ContentType, PayloadFormat: pp.PayloadFormat, MessageExpiry: pp.MessageExpiry,
			ResponseTopic: pp.ResponseTopic, CorrelationData: pp.CorrelationData}
		for _, u := range pp.User {
			props.UserProperties = append(props.UserProperties, mqtt.UserProperty{Key: u.Key, Value: u.Value})
		}
		if pp.SubscriptionIdentifier != nil {
			props.SubscriptionIDs = []int{*pp.SubscriptionIdentifier}
		}
		if !props.IsEmpty() {
			m.Props = props
		}
	}
	p.h.Message(m)
}

func (p *v5Client) Subscribe(ctx context.Context, subs []mqtt.Subscription) ([]byte, error) {
	s := &paho5.Subscribe{}
	for _, sub := range subs {
		s.Subscriptions = append(s.Subscriptions, paho5.SubscribeOptions{Topic: sub.Filter, QoS: sub.QoS,
			RetainAsPublished: sub.RetainAsPublished})
	}
	ack, err := p.client().Subscribe(ctx, s)
	if ack == nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	if len(ack.Reasons) != len(subs) {
		return nil, fmt.Errorf("subscribe: SUBACK has %d reason codes for %d filters", len(ack.Reasons), len(subs))
	}
	granted := make([]byte, len(subs))
	for i, r := range ack.Reasons {
		granted[i] = r
		if r >= 0x80 {
			granted[i] = 0x80 // as in 3.1.1; SubscribeReasons keeps the detail
		}
	}
	return granted, nil
}

// token is a Token completed by the publisher goroutine.
type token struct {
	done chan struct{}
	err  error
}

func (t *token) Done() <-chan struct{} { return t.done }
func (t *token) Error() error          { <-t.done; return t.err }

func doneToken(err error) *token {
	t := &token{done: make(chan struct{}), err: err}
	close(t.done)
	return t
}

func (p *v5Client) Publish(topic string, qos byte, retain bool, payload []byte) mqtt.Token {
	return p.PublishProps(topic, qos, retain, payload, nil)
}

// PublishProps publishes with MQTT 5 properties.
func (p *v5Client) PublishProps(topic string, qos byte, retain bool, payload []byte, props *mqtt.Properties) mqtt.Token {
	pb := &paho5.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: payload}
	if props != nil {
		pp := &paho5.PublishProperties{ContentType: props.ContentType, PayloadFormat: props.PayloadFormat,
			MessageExpiry: props.MessageExpiry, ResponseTopic: props.ResponseTopic, CorrelationData: props.CorrelationData}
		for _, u := range props.UserProperties {
			pp.User = append(pp.User, paho5.UserProperty{Key: u.Key, Value: u.Value})
		}
		pb.Properties = pp
	}
	p.mu.Lock()
	limit, c := p.maxPacket, p.c
	p.mu.Unlock()
	if limit > 0 {
		if size := estimateSize(pb); size > int(limit) {
			return doneToken(fmt.Errorf("publish %q: %d bytes exceed the broker's maximum packet size %d", topic, size, limit))
		}
	}
	if qos == 0 {
		_, err := c.Publish(context.Background(), pb)
		return doneToken(err)
	}
	// The PUBLISH is written before PublishProps returns, so messages go
	// out in the order they were published (a goroutine per blocking
	// Publish sent them in any order); the acknowledgement arrives on ack.
	ack := make(chan packets.ControlPacket, 1)
	_, err := c.PublishWithOptions(context.WithValue(context.Background(), ackTo{}, ack), pb,
		paho5.PublishOptions{Method: paho5.PublishMethod_AsyncSend})
	if err != nil && !errors.Is(err, paho5.ErrNetworkErrorAfterStored) {
		return doneToken(err)
	}
	t := &token{done: make(chan struct{})}
	go func() {
		defer close(t.done)
		select {
		case resp := <-ack:
			t.err = ackError(topic, resp)
		case <-c.Done(): // a clean session forgets its publishes without a word when the connection ends
			select {
			case resp := <-ack:
				t.err = ackError(topic, resp)
			default:
				t.err = ackError(topic, packets.ControlPacket{})
			}
		case <-time.After(60 * time.Second):
			t.err = fmt.Errorf("publish %q: no acknowledgement within 60s", topic)
		}
	}()
	return t
}

// ackError is the outcome of a QoS 1 or 2 publish from the packet that
// ended it: a PUBACK, PUBREC or PUBCOMP and its reason code, or the empty
// packet the session sends when the connection ended first.
func ackError(topic string, resp packets.ControlPacket) error {
	var code byte
	switch a := resp.Content.(type) {
	case *packets.Puback:
		code = a.ReasonCode
	case *packets.Pubrec:
		code = a.ReasonCode
	case *packets.Pubcomp:
		code = a.ReasonCode
	default:
		return fmt.Errorf("publish %q: the connection ended before the broker acknowledged it", topic)
	}
	if code >= 0x80 {
		return fmt.Errorf("publish %q: %s", topic, mqtt.ReasonText(code))
	}
	return nil
}

// ackTo is the context key of the channel an asynchronous publish's
// acknowledgement goes to (ackSession).
type ackTo struct{}

// ackSession is paho's in-memory session state, except that a publish
// whose context carries an ackTo channel gets its acknowledgement there:
// paho's asynchronous publish does not return it.
type ackSession struct{ *state.State }

func (s ackSession) AddToSession(ctx context.Context, p session.Packet, resp chan<- packets.ControlPacket) error {
	if ack, ok := ctx.Value(ackTo{}).(chan packets.ControlPacket); ok {
		resp = ack
	}
	return s.State.AddToSession(ctx, p, resp)
}

// estimateSize is an upper bound of a PUBLISH packet's encoded size.
func estimateSize(pb *paho5.Publish) int {
	n := 5 + 2 + len(pb.Topic) + 2 + 4 + len(pb.Payload)
	if pp := pb.Properties; pp != nil {
		n += 16 + len(pp.ContentType) + len(pp.ResponseTopic) + len(pp.CorrelationData)
		for _, u := range pp.User {
			n += 5 + len(u.Key) + len(u.Value)
		}
	}
	return n
}

func (p *v5Client) Disconnect(quiesce time.Duration) {
	p.closeOnce.Do(func() { close(p.closed) })
	if c := p.client(); c != nil {
		time.Sleep(min(quiesce, 50*time.Millisecond)) // let queued acknowledgements go out
		_ = c.Disconnect(&paho5.Disconnect{ReasonCode: 0})
	}
}
