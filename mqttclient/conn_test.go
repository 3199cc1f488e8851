package mqttclient

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestBufferedConnAck: a manual ack is the whole PUBACK (QoS 1) or PUBREC
// (QoS 2) packet for the id, sent within the coalescing delay; once the
// connection is closed, nothing more is written.
func TestBufferedConnAck(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := &bufferedConn{Conn: a, r: bufio.NewReader(a), coalesce: true, w: bufio.NewWriter(a)}
	c.ack(1, 0x1234)
	c.ack(2, 7)
	got := make([]byte, 8)
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(got)
	puback, err1 := packets.ReadPacket(r)
	pubrec, err2 := packets.ReadPacket(r)
	if err1 != nil || err2 != nil {
		t.Fatalf("paho cannot read the acks % x: %v, %v", got, err1, err2)
	}
	if p, ok := puback.(*packets.PubackPacket); !ok || p.MessageID != 0x1234 {
		t.Errorf("first ack %v, want PUBACK for 0x1234", puback)
	}
	if p, ok := pubrec.(*packets.PubrecPacket); !ok || p.MessageID != 7 {
		t.Errorf("second ack %v, want PUBREC for 7", pubrec)
	}
	c.Close()
	c.ack(1, 9)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := b.Read(got); err == nil {
		t.Fatalf("an ack after Close was written: % x", got[:n])
	}
}

// TestAcksBufferedMode: a recorder's connection sends what paho writes (a
// PUBCOMP here) at once, while acks wait for FlushAcks' flush and then go
// in one write, in order.
func TestAcksBufferedMode(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	c := &bufferedConn{Conn: a, r: bufio.NewReader(a), coalesce: true, immediate: true, w: bufio.NewWriter(a)}
	defer c.Close()
	got := make([]byte, 4)
	done := make(chan error, 1)
	go func() { _, err := c.Write([]byte{packets.Pubcomp << 4, 2, 0, 5}); done <- err }()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || got[0] != packets.Pubcomp<<4 {
		t.Fatalf("PUBCOMP not sent at once: % x %v", got, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.ack(1, 1)
	c.ack(1, 2)
	go c.flush() // what FlushAcks does
	acks := make([]byte, 8)
	if _, err := io.ReadFull(b, acks); err != nil || acks[3] != 1 || acks[7] != 2 {
		t.Fatalf("acks % x %v, want PUBACK 1 then 2", acks, err)
	}
}
