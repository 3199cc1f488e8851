package mqttclient_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
)

// TestPublishOrderMQTT5: QoS 1 and 2 messages an MQTT 5 client publishes
// one after the other, without waiting for acknowledgements (as play
// does), reach a subscriber in that order, and every token completes.
func TestPublishOrderMQTT5(t *testing.T) {
	b := testbroker.StartEmbedded(t, broker.Options{})
	sub := testbroker.Subscribe(t, b.URL())
	br, err := mqtt.ParseBroker(b.URL())
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: "pub-order", ProtocolVersion: 5,
		CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(50 * time.Millisecond)
	const n = 300
	var toks []mqtt.Token
	var want []string
	for i := range n {
		payload := fmt.Sprintf("m%03d", i)
		tok := c.(mqtt.PropsPublisher).PublishProps("order/t", byte(1+i%2), false, []byte(payload),
			&mqtt.Properties{CorrelationData: []byte{byte(i)}})
		toks, want = append(toks, tok), append(want, payload)
	}
	for i, tok := range toks {
		select {
		case <-tok.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("publish %d: not acknowledged", i)
		}
		if err := tok.Error(); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	var got []string
	for _, r := range sub.Wait(t, n) {
		got = append(got, r.Body)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("received out of publish order:\n%s", strings.Join(got, " "))
	}
}

// TestPublishLostMQTT5: a QoS 1 publish the broker never acknowledges
// because the connection ended completes with an error at once, not after
// the 60 s acknowledgement timeout.
func TestPublishLostMQTT5(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // a broker that accepts the connection and hangs up at the first PUBLISH
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		for {
			head, err := r.ReadByte()
			if err != nil {
				return
			}
			n, err := binary.ReadUvarint(r) // MQTT's remaining length is the same base-128 encoding
			if err != nil || head>>4 == 3 {
				return
			}
			if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
				return
			}
			if head>>4 == 1 {
				conn.Write([]byte{0x20, 3, 0, 0, 0}) // CONNACK: accepted, no properties
			}
		}
	}()
	br, err := mqtt.ParseBroker("mqtt://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: "pub-lost", ProtocolVersion: 5,
		CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(0)
	tok := c.Publish("lost/t", 1, false, []byte("x"))
	select {
	case <-tok.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the publish did not complete after the connection ended")
	}
	if err := tok.Error(); err == nil || !strings.Contains(err.Error(), "the connection ended before the broker acknowledged it") {
		t.Errorf("publish error = %v", err)
	}
}

// TestTLSToPlainPort: mqtts:// to a listener that is not TLS (it reads
// the ClientHello as a bad packet and hangs up, as mosquitto does) says
// so, over MQTT 3.1.1 and 5.
func TestTLSToPlainPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Read(make([]byte, 512))
			conn.Close()
		}
	}()
	br, err := mqtt.ParseBroker("mqtts://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{4, 5} {
		_, err := mqttclient.Connect(context.Background(), mqtt.Options{Broker: br, ClientID: "tls", ProtocolVersion: v,
			CleanSession: true, ConnectTimeout: 3 * time.Second}, mqtt.Handlers{})
		if err == nil || !strings.Contains(err.Error(), "is that port a TLS listener? (use mqtt:// for plain MQTT)") {
			t.Errorf("MQTT level %d: %v", v, err)
		}
	}
}
