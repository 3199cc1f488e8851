package mqttclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqtape/mqtape/mqtt"
)

type pahoClient struct {
	c         paho.Client
	subscribe bool // ManualAck: acks bypass paho, so publishing could split a PUBLISH (see bufferedConn.ack)
	current   *atomic.Pointer[bufferedConn]
}

// errSubscriberPublish: Publish on a ManualAck client.
var errSubscriberPublish = errors.New("a client with manual acknowledgements does not publish")

func connectPaho(ctx context.Context, o mqtt.Options, h mqtt.Handlers) (mqtt.Client, error) {
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	po := paho.NewClientOptions().
		AddBroker(o.Broker.DialURL()).
		SetClientID(o.ClientID).
		SetCleanSession(o.CleanSession).
		SetKeepAlive(o.KeepAlive).
		SetPingTimeout(max(o.KeepAlive/2, 5*time.Second)).
		SetConnectTimeout(o.ConnectTimeout).
		SetWriteTimeout(30 * time.Second).
		SetAutoReconnect(o.AutoReconnect).
		SetMaxReconnectInterval(30 * time.Second).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(o.ManualAck).
		SetResumeSubs(false).
		SetStore(newAckStore())
	if o.KeepAlive == 0 {
		po.SetKeepAlive(60 * time.Second)
	}
	user := o.Username
	if user == "" {
		user = o.Broker.Username
	}
	if user != "" {
		po.SetUsername(user)
	}
	if o.Password != "" {
		po.SetPassword(o.Password)
	}
	if o.Will != nil {
		po.SetBinaryWill(o.Will.Topic, o.Will.Payload, o.Will.QoS, o.Will.Retain)
	}
	var tlsCfg *tls.Config
	if o.Broker.TLS() {
		host, _, _ := net.SplitHostPort(o.Broker.Host)
		cfg, err := o.TLS.Config(host)
		if err != nil {
			return nil, err
		}
		tlsCfg = cfg
		po.SetTLSConfig(cfg)
	}
	// The connection messages arrive on, for ManualAck's acks (see
	// bufferedConn.ack). paho opens a new one on every reconnect.
	current := new(atomic.Pointer[bufferedConn])
	open := openConn(o.Broker, tlsCfg, modeOf(o))
	po.SetCustomOpenConnectionFn(func(u *url.URL, co paho.ClientOptions) (net.Conn, error) {
		conn, err := open(u, co)
		if err == nil {
			current.Store(conn.(*bufferedConn))
		}
		return conn, err
	})
	if h.Message != nil {
		po.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			qos, id, ack := m.Qos(), m.MessageID(), m.Ack
			if conn := current.Load(); o.ManualAck && qos > 0 && conn != nil {
				ack = func() { conn.ack(qos, id) }
			}
			h.Message(mqtt.Message{Topic: m.Topic(), Payload: m.Payload(), QoS: qos, Retain: m.Retained(),
				Dup: m.Duplicate(), PacketID: id, Ack: ack})
		})
	}
	var connectedOnce atomic.Bool
	po.SetOnConnectHandler(func(paho.Client) {
		reconnect := connectedOnce.Swap(true)
		if h.Connected != nil {
			h.Connected(reconnect)
		}
	})
	po.SetConnectionLostHandler(func(_ paho.Client, err error) {
		if h.Lost != nil {
			h.Lost(lost(err))
		}
	})
	po.SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
		if h.Reconnecting != nil {
			h.Reconnecting()
		}
	})
	c := paho.NewClient(po)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		c.Disconnect(0)
		return nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return nil, connectError(o.Broker, err)
	}
	return &pahoClient{c: c, subscribe: o.ManualAck, current: current}, nil
}

// connectError turns paho's connect errors into ours.
func connectError(b mqtt.Broker, err error) error {
	for code, perr := range packets.ConnErrors {
		if code >= 1 && code <= 5 && errors.Is(err, perr) {
			return &mqtt.RefusedError{Code: code, Reason: mqtt.ConnackReason(code)}
		}
	}
	return unreachable(b, err)
}

func (p *pahoClient) Subscribe(ctx context.Context, subs []mqtt.Subscription) ([]byte, error) {
	filters := make(map[string]byte, len(subs))
	for _, s := range subs {
		filters[s.Filter] = s.QoS
	}
	tok := p.c.SubscribeMultiple(filters, nil)
	if err := wait(ctx, tok); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	res := tok.(*paho.SubscribeToken).Result()
	granted := make([]byte, len(subs))
	for i, s := range subs {
		granted[i] = res[s.Filter]
	}
	return granted, nil
}

func (p *pahoClient) Publish(topic string, qos byte, retain bool, payload []byte) mqtt.Token {
	if p.subscribe {
		return doneToken(errSubscriberPublish)
	}
	if !p.c.IsConnectionOpen() {
		// paho would wait out its write timeout (30 s) before failing.
		return doneToken(mqtt.ErrNotConnected)
	}
	return p.c.Publish(topic, qos, retain, payload)
}

// FlushAcks sends the acknowledgements written so far (ManualAck) at once,
// instead of after the connection's coalescing delay: a broker with a small
// in-flight window (mosquitto's 20) waits for them before it sends more.
func (p *pahoClient) FlushAcks() {
	if conn := p.current.Load(); conn != nil && conn.coalesce {
		conn.flush()
	}
}

func (p *pahoClient) Disconnect(quiesce time.Duration) {
	p.c.Disconnect(uint(quiesce / time.Millisecond))
}

func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
