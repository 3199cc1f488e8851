// Package rawmqtt writes MQTT 3.1.1 CONNECT and PUBLISH packets by hand on a
// plain TCP connection, for load generators (bench/record/flood, the crash
// test) that must not be limited by a client library.
package rawmqtt

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

// appendLen appends an MQTT variable-length integer.
func appendLen(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

// Connect dials addr, sends CONNECT (clean session, keepalive 60 s) and
// waits for a successful CONNACK.
func Connect(addr, clientID string, timeout time.Duration) (net.Conn, error) {
	return ConnectAuth(addr, clientID, "", "", timeout)
}

// ConnectAuth is Connect with a username and password (none when username
// is empty).
func ConnectAuth(addr, clientID, username, password string, timeout time.Duration) (net.Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	flags := byte(0x02) // clean session
	if username != "" {
		flags |= 0xc0
	}
	body := appendString(nil, "MQTT")
	body = append(body, 4, flags, 0, 60) // 3.1.1, keepalive 60 s
	body = appendString(body, clientID)
	if username != "" {
		body = appendString(appendString(body, username), password)
	}
	if _, err := conn.Write(append(appendLen([]byte{0x10}, len(body)), body...)); err != nil {
		conn.Close()
		return nil, err
	}
	ack := make([]byte, 4)
	conn.SetReadDeadline(time.Now().Add(timeout))
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		conn.Close()
		return nil, fmt.Errorf("CONNACK %x: %v", ack, err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, nil
}

// AppendPublishHeader appends a PUBLISH packet's fixed header, topic and
// (QoS 1) packet id; the payload of payloadLen bytes follows it.
func AppendPublishHeader(b []byte, topic string, qos byte, packetID uint16, payloadLen int) []byte {
	n, first := 2+len(topic)+payloadLen, byte(0x30)
	if qos > 0 {
		n += 2
		first |= qos << 1
	}
	b = appendLen(append(b, first), n)
	b = appendString(b, topic)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, packetID)
	}
	return b
}
