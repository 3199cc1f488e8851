package mqttclient

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqtape/mqtape/mqtt"
)

// readBufferSize is the read buffer under paho's packet reader. paho reads
// every packet with several small reads (type, length, body); without a
// buffer that is three system calls per message, which dominated the
// recorder's CPU profile.
const readBufferSize = 64 << 10

// coalesceDelay is how long a coalescing connection holds written packets
// before it sends them in one system call.
const coalesceDelay = 500 * time.Microsecond

// bufferedConn is a net.Conn whose reads go through a bufio.Reader. With
// coalesce set, writes are buffered too and flushed coalesceDelay after the
// first one: a recorder acknowledging a committed batch of thousands of
// QoS 1 messages then sends its PUBACKs in a few writes instead of one
// system call each (that was a third of its CPU). Only for the recorder:
// a publisher's timing must not wait.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader

	coalesce bool
	// immediate (a ManualAck recorder): what paho writes (PUBCOMP, PINGREQ,
	// SUBSCRIBE) is sent at once; only ack's PUBACK/PUBREC wait in the
	// buffer, for FlushAcks (the spooler sends a group's acks in one write)
	// or the coalescing delay. A PUBCOMP held back would keep the broker's
	// in-flight slot for the QoS 2 message busy.
	immediate bool
	mu        sync.Mutex
	w         *bufio.Writer
	pending   bool
	err       error
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *bufferedConn) Write(p []byte) (int, error) {
	if !c.coalesce {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err == nil && c.immediate {
		err = c.w.Flush()
	}
	if err != nil {
		c.err = err
		return n, err
	}
	if !c.pending {
		c.pending = true
		time.AfterFunc(coalesceDelay, c.flush)
	}
	return n, nil
}

// ack sends the PUBACK (QoS 1) or PUBREC (QoS 2) for a received PUBLISH
// with packet id id, through the coalescing buffer. paho's own ack passes
// each one through three goroutines before it reaches the connection; on a
// QoS 1 flood those hand-offs cost a sixth of the recorder's CPU. The
// packet is four bytes, written whole under the buffer's lock, so it never
// lands inside another packet: paho writes every packet except PUBLISH in
// one Write, and a recorder does not publish. An ack for a connection that
// has closed is not sent at all — not on the next one, where the packet id
// may be reused: the broker redelivers the message after a reconnect
// (paho's ack would go to whichever connection is current).
func (c *bufferedConn) ack(qos byte, id uint16) {
	kind := byte(packets.Puback)
	if qos == 2 {
		kind = packets.Pubrec
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	if _, err := c.w.Write([]byte{kind << 4, 2, byte(id >> 8), byte(id)}); err != nil {
		c.err = err
		return
	}
	if !c.pending {
		c.pending = true
		time.AfterFunc(coalesceDelay, c.flush)
	}
}

// flushTimeout bounds a flush: a broker that stops reading (a half-open
// connection) must not block the recorder's spooler, and so its stop.
const flushTimeout = 10 * time.Second

func (c *bufferedConn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = false
	if c.err == nil && c.w.Buffered() > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(flushTimeout))
		if c.err = c.w.Flush(); c.err != nil {
			c.Conn.Close() // the reader sees it and paho reconnects
		}
		c.Conn.SetWriteDeadline(time.Time{})
	}
}

func (c *bufferedConn) Close() error {
	if c.coalesce {
		c.mu.Lock()
		if c.err == nil && c.w.Buffered() > 0 {
			c.Conn.SetWriteDeadline(time.Now().Add(flushTimeout))
			c.w.Flush()
		}
		c.err = net.ErrClosed
		c.mu.Unlock()
	}
	return c.Conn.Close()
}

// dialConn dials tcp, ssl, ws or wss and buffers reads (and writes, with
// coalesce).
func dialConn(ctx context.Context, b mqtt.Broker, tlsCfg *tls.Config, timeout time.Duration, mode writeMode) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var conn net.Conn
	var err error
	switch b.Scheme {
	case "ssl":
		d := tls.Dialer{Config: tlsCfg}
		conn, err = d.DialContext(ctx, "tcp", b.Host)
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			err = fmt.Errorf("%w: %w", errTLSClosed, err)
		}
	case "ws", "wss":
		conn, err = paho.NewWebsocket(b.DialURL(), tlsCfg, timeout, nil, nil)
	default:
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", b.Host)
	}
	if err != nil {
		return nil, err
	}
	bc := &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, readBufferSize), coalesce: mode != writeDirect,
		immediate: mode == writeAcksBuffered}
	if bc.coalesce {
		bc.w = bufio.NewWriterSize(conn, 64<<10)
	}
	return bc, nil
}

// writeMode is how a bufferedConn writes.
type writeMode int

const (
	writeDirect       writeMode = iota // every Write is a system call
	writeCoalesced                     // writes wait up to coalesceDelay (a flood replay)
	writeAcksBuffered                  // acks wait for FlushAcks, other writes go at once (a recorder)
)

// modeOf picks the write mode for connection options.
func modeOf(o mqtt.Options) writeMode {
	switch {
	case o.ManualAck:
		return writeAcksBuffered
	case o.CoalesceWrites:
		return writeCoalesced
	}
	return writeDirect
}

// openConn adapts dialConn to paho's custom connection hook.
func openConn(b mqtt.Broker, tlsCfg *tls.Config, mode writeMode) paho.OpenConnectionFunc {
	return func(_ *url.URL, o paho.ClientOptions) (net.Conn, error) {
		return dialConn(context.Background(), b, tlsCfg, o.ConnectTimeout, mode)
	}
}
