// Package mqtt holds mqtape's MQTT vocabulary, standard library only: broker
// URLs, TLS and connection options, messages with their MQTT 5 properties,
// subscriptions, reason codes in words, and the small Client, Token and
// Handlers interfaces that the recorder, the player and the inspector
// consume. The client libraries live behind it, in package mqttclient (paho)
// and package broker (mochi-mqtt); nothing else imports them.
package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrRefused: the broker answered CONNACK with a refusal (see *RefusedError).
	ErrRefused = errors.New("connection refused by broker")
	// ErrUnreachable: no connection could be made (DNS, TCP, TLS, timeout).
	ErrUnreachable = errors.New("broker unreachable")
	// ErrSubscribeDenied: the broker refused every subscription.
	ErrSubscribeDenied = errors.New("subscription denied")
	// ErrTLSConfig: the TLS files could not be loaded.
	ErrTLSConfig = errors.New("TLS configuration")
	// ErrNotConnected: a publish while the connection is down.
	ErrNotConnected = errors.New("not connected to the broker")
)

// RefusedError is a CONNACK refusal with its return (reason) code.
type RefusedError struct {
	Code   byte
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("connection refused by broker: %s (CONNACK code %d)", e.Reason, e.Code)
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// ConnackReason returns an MQTT 3.1.1 CONNACK return code (1–5) in words.
func ConnackReason(code byte) string { return connackReasons[code] }

var connackReasons = map[byte]string{
	1: "unacceptable protocol version",
	2: "client identifier rejected",
	3: "server unavailable",
	4: "bad username or password",
	5: "not authorised",
}

// TLSOptions configure an encrypted connection. The server certificate is
// verified against the system roots (or CAFile) unless Insecure is set.
type TLSOptions struct {
	CAFile   string
	CertFile string
	KeyFile  string
	Insecure bool
}

// Config builds the tls.Config for a server name.
func (o TLSOptions) Config(serverName string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, InsecureSkipVerify: o.Insecure, MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: read CA file: %w", ErrTLSConfig, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: no PEM certificates in %q", ErrTLSConfig, o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if o.CertFile != "" || o.KeyFile != "" {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, fmt.Errorf("%w: --cert and --key go together", ErrTLSConfig)
		}
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: load client certificate: %w", ErrTLSConfig, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Options describe a connection.
type Options struct {
	Broker         Broker
	ClientID       string
	Username       string
	Password       string // never logged or stored
	CleanSession   bool
	KeepAlive      time.Duration
	ConnectTimeout time.Duration
	TLS            TLSOptions
	// ManualAck: QoS 1/2 messages are acknowledged only when Message.Ack is
	// called (the recorder acks after the message is committed to disk).
	// A ManualAck client subscribes only: with MQTT 3.1.1 its acks are
	// written straight to the connection, and Publish fails.
	ManualAck bool
	// CoalesceWrites batches outgoing packets into fewer system calls,
	// holding each up to 0.5 ms (implied by ManualAck). Not for timed replay.
	CoalesceWrites bool
	// AutoReconnect after the first successful connection.
	AutoReconnect bool
	// Will is the last-will message the broker publishes if the connection
	// drops without DISCONNECT (nil: none).
	Will *Will
	// ProtocolVersion is 4 (MQTT 3.1.1, the default) or 5.
	ProtocolVersion int
}

// Will is a last-will message.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
}

// MaxRemainingLength is the largest remaining length an MQTT packet can
// encode (four bytes of variable-length integer): no payload is larger.
const MaxRemainingLength = 268_435_455

// Message is a received PUBLISH.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retain   bool
	Dup      bool
	PacketID uint16
	// Props are the MQTT 5 properties (nil with MQTT 3.1.1 or when none).
	Props *Properties
	// Ack acknowledges a QoS 1/2 message when Options.ManualAck is set; it
	// must be called in the order messages arrived. Safe to call for QoS 0.
	Ack func()
}

// Subscription is one topic filter and its requested QoS.
type Subscription struct {
	Filter string
	QoS    byte
	// RetainAsPublished (MQTT 5) keeps the publisher's retain flag on
	// forwarded messages.
	RetainAsPublished bool
}

// Handlers receive messages and connection events. They run on the client's
// network goroutines and must not block.
type Handlers struct {
	Message      func(Message)
	Connected    func(reconnect bool) // after every successful CONNACK
	Lost         func(err error)      // the connection dropped
	Reconnecting func()               // a reconnect attempt starts
}

// Client is a connected MQTT client.
type Client interface {
	// Subscribe subscribes and returns the granted QoS per filter (0x80: refused).
	Subscribe(ctx context.Context, subs []Subscription) ([]byte, error)
	// Publish queues one message; the Token completes when the broker
	// acknowledged it (QoS 1/2) or it was handed to the network (QoS 0).
	Publish(topic string, qos byte, retain bool, payload []byte) Token
	// Disconnect closes the connection cleanly, waiting up to quiesce.
	Disconnect(quiesce time.Duration)
}

// PropsPublisher is implemented by MQTT 5 clients: Publish with properties.
type PropsPublisher interface {
	PublishProps(topic string, qos byte, retain bool, payload []byte, props *Properties) Token
}

// Token is the outcome of a publish.
type Token interface {
	Done() <-chan struct{}
	Error() error
}
