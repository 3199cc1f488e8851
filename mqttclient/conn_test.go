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
