package broker

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// Limits a guarded listener applies before mochi sees a connection.
const (
	// PreAuthMaxPacket bounds the first packet (CONNECT): nothing larger
	// is read from a client that has not authenticated.
	PreAuthMaxPacket = 64 << 10
	// DefaultMaxPacketSize is the broker's packet size limit by default.
	DefaultMaxPacketSize = 16 << 20
	// DefaultConnectTimeout is how long a connection may take to send CONNECT.
	DefaultConnectTimeout = 10 * time.Second
)

// errPreAuthTooLarge closes a connection whose first packet claims more
// than PreAuthMaxPacket.
var errPreAuthTooLarge = errors.New("first packet larger than 64 KiB before authentication")

// guarded wraps every connection a mochi listener establishes (TCP, TLS
// or websocket: the guard sees the MQTT byte stream) in a guardConn.
type guarded struct {
	listeners.Listener
	b *Broker
}

func (l guarded) Serve(establish listeners.EstablishFn) {
	l.Listener.Serve(func(id string, c net.Conn) error { return establish(id, l.b.guard(c)) })
}

// guardedListener keeps accepting through temporary errors (out of file
// descriptors, ENOBUFS...) with a backoff, as net/http's Server.Serve
// does (mochi's TCP listener stops at the first error). A run of failures is
// reported once when it starts and once when accepting has worked for
// acceptSettle since the last failure (under descriptor pressure, accepts
// and failures alternate for a while).
type guardedListener struct {
	net.Listener
	name string
	b    *Broker

	mu       sync.Mutex
	failing  bool // reported, not yet over
	failures int
	since    time.Time
	lastFail time.Time
	settle   *time.Timer
}

const acceptSettle = time.Second

func (l *guardedListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		conn, err := l.Listener.Accept()
		if err == nil {
			l.accepted()
			return conn, nil
		}
		if !retryable(err) {
			return nil, err
		}
		l.failed(err)
		delay = min(max(2*delay, 5*time.Millisecond), time.Second)
		select {
		case <-time.After(delay):
		case <-l.b.closed:
			return nil, net.ErrClosed
		}
	}
}

func (l *guardedListener) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.failing {
		l.failing, l.failures, l.since = true, 0, now
		l.b.acceptFailed(l.name, err)
	}
	l.failures++
	l.lastFail = now
	if l.settle != nil {
		l.settle.Stop()
	}
}

func (l *guardedListener) accepted() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failing {
		return
	}
	if l.settle != nil {
		l.settle.Stop()
	}
	l.settle = time.AfterFunc(acceptSettle, l.resumed)
}

func (l *guardedListener) resumed() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.failing || time.Since(l.lastFail) < acceptSettle {
		return // failed again meanwhile: the next accept re-arms
	}
	l.failing = false
	l.b.acceptResumed(l.name, l.failures, l.lastFail.Sub(l.since))
}

// retryable reports whether an accept error is temporary: a full file
// descriptor table or a lack of kernel memory passes, a closed listener
// does not.
func retryable(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
		syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// guardConn is a client connection as mochi sees it. Reading, it hands
// mochi only whole packets: a packet's claimed length is never allocated
// up front (the buffer grows with the bytes that really arrive), the first
// packet may not claim more than PreAuthMaxPacket, and it must arrive
// within the connect timeout. Writing, it holds PUBACK and PUBREC (and
// whatever follows them) until the durable observer has made safe every
// message handed to it before (see DurableObserver).
type guardConn struct {
	net.Conn
	b        *Broker
	accepted time.Time

	// Reading (mochi reads from one goroutine).
	in        []byte      // bytes read and not yet handed out
	ready     int         // in[:ready] are whole packets
	connected atomic.Bool // the first packet (CONNECT) is complete
	pass      bool        // a packet over the size limit: hand bytes on as they come (mochi refuses it)

	// Writing.
	wmu     sync.Mutex
	held    []heldWrite
	werr    error
	kick    chan struct{}
	closed  chan struct{}
	closeMu sync.Once
	flusher bool // the flush goroutine runs
}

// heldWrite is a write waiting for the observer's Safe to reach need.
type heldWrite struct {
	need uint64
	b    []byte
}

func (b *Broker) guard(conn net.Conn) net.Conn {
	c := &guardConn{Conn: conn, b: b, accepted: time.Now(), kick: make(chan struct{}, 1), closed: make(chan struct{})}
	conn.SetReadDeadline(c.accepted.Add(b.connectTimeout))
	b.connMu.Lock()
	b.conns[c] = struct{}{}
	b.connMu.Unlock()
	select {
	case <-b.closed: // accepted while closing: closeConns may have missed it
		c.Close()
	default:
	}
	return c
}

// closeConns closes the connections that have not sent CONNECT (all with
// all set): mochi's Close waits for them (it closes only its registered
// clients), so a stop would otherwise wait for their connect timeout.
func (b *Broker) closeConns(all bool) {
	b.connMu.Lock()
	var idle []*guardConn
	for c := range b.conns {
		if all || !c.connected.Load() {
			idle = append(idle, c)
		}
	}
	b.connMu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}

func (c *guardConn) Read(p []byte) (int, error) {
	for {
		if c.ready > 0 {
			n := copy(p, c.in[:c.ready])
			c.ready -= n
			c.in = c.in[:copy(c.in, c.in[n:])]
			if len(c.in) == 0 && cap(c.in) > 64<<10 {
				c.in = nil // a big packet went through: do not keep its buffer
			}
			return n, nil
		}
		if c.pass && len(c.in) == 0 {
			return c.Conn.Read(p)
		}
		if c.pass {
			c.ready = len(c.in)
			continue
		}
		if err := c.scan(); err != nil {
			return 0, err
		}
		if c.ready > 0 || c.pass {
			continue
		}
		if err := c.fill(); err != nil {
			if !c.connected.Load() && isTimeout(err) {
				c.b.event(EventConnectTimeout, map[string]any{"remote": c.RemoteAddr().String(),
					"timeout_ms": c.b.connectTimeout.Milliseconds()})
			}
			return 0, err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// scan marks the whole packets at the start of in as ready.
func (c *guardConn) scan() error {
	for {
		rest := c.in[c.ready:]
		length, hdr, ok := fixedHeader(rest)
		if !ok {
			return nil
		}
		limit := uint64(c.b.maxPacket)
		if !c.connected.Load() && limit > PreAuthMaxPacket {
			limit = PreAuthMaxPacket
		}
		if uint64(hdr)+length > limit {
			if !c.connected.Load() {
				c.b.event(EventPacketTooLarge, map[string]any{"remote": c.RemoteAddr().String(),
					"claimed": uint64(hdr) + length, "limit": limit})
				return fmt.Errorf("%w: claims %d bytes", errPreAuthTooLarge, uint64(hdr)+length)
			}
			c.pass = true // mochi reads the header, refuses it and disconnects
			return nil
		}
		if uint64(len(rest)) < uint64(hdr)+length {
			return nil
		}
		c.ready += hdr + int(length)
		// mochi takes over the deadline (the keepalive) once it has the
		// CONNECT; until then none is set.
		c.connected.Store(true)
	}
}

// fixedHeader parses an MQTT fixed header: the remaining length and the
// header's size. ok is false while it is incomplete; a malformed length
// (more than 4 bytes) is returned as complete and over every limit.
func fixedHeader(b []byte) (length uint64, hdr int, ok bool) {
	var mult uint64 = 1
	for i := 1; i < len(b); i++ {
		length += uint64(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return length, i + 1, true
		}
		if i == 4 {
			return 1 << 40, i + 1, true
		}
		mult *= 128
	}
	return 0, 0, false
}

// fill reads what the connection has, growing in by what arrives.
func (c *guardConn) fill() error {
	if cap(c.in)-len(c.in) < 2048 {
		c.in = append(c.in, make([]byte, 4096)...)[:len(c.in)]
	}
	n, err := c.Conn.Read(c.in[len(c.in):cap(c.in)])
	c.in = c.in[:len(c.in)+n]
	if n > 0 {
		return nil
	}
	return err
}

func (c *guardConn) Write(p []byte) (int, error) {
	d := c.b.durable
	if d == nil {
		return c.Conn.Write(p)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	need := d.Handed()
	if len(c.held) == 0 && (need <= d.Safe() || !hasAck(p)) {
		return c.Conn.Write(p)
	}
	c.held = append(c.held, heldWrite{need: need, b: append([]byte(nil), p...)})
	if !c.flusher {
		c.flusher = true
		go c.flushLoop()
	}
	c.b.gate.wait(c, c.held[0].need)
	return len(p), nil
}

// hasAck reports whether p (whole packets) holds a PUBACK or a PUBREC.
func hasAck(p []byte) bool {
	for len(p) > 0 {
		if t := p[0] >> 4; t == 4 || t == 5 {
			return true
		}
		length, hdr, ok := fixedHeader(p)
		if !ok || uint64(len(p)) < uint64(hdr)+length {
			return true // not whole packets: hold to be safe
		}
		p = p[uint64(hdr)+length:]
	}
	return false
}

// flushLoop writes held writes once they are safe, in one write(2).
func (c *guardConn) flushLoop() {
	var out []byte
	for {
		select {
		case <-c.kick:
		case <-c.closed:
			return
		}
		c.wmu.Lock()
		safe := c.b.durable.Safe()
		i := 0
		for ; i < len(c.held) && c.held[i].need <= safe; i++ {
			out = append(out, c.held[i].b...)
		}
		c.held = c.held[:copy(c.held, c.held[i:])]
		if len(out) > 0 && c.werr == nil {
			if _, err := c.Conn.Write(out); err != nil {
				c.werr = err
			}
		}
		if len(c.held) > 0 {
			c.b.gate.wait(c, c.held[0].need)
		}
		c.wmu.Unlock()
		out = out[:0]
	}
}

func (c *guardConn) Close() error {
	c.closeMu.Do(func() {
		close(c.closed)
		c.b.connMu.Lock()
		delete(c.b.conns, c)
		c.b.connMu.Unlock()
	})
	return c.Conn.Close()
}

func (c *guardConn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// ackGate wakes the connections holding acknowledgements when the
// durable observer's Safe grows.
type ackGate struct {
	d       DurableObserver
	mu      sync.Mutex
	waiting map[*guardConn]struct{}
}

// wait registers c until Safe reaches need (waking it at once if it has).
func (g *ackGate) wait(c *guardConn, need uint64) {
	g.mu.Lock()
	g.waiting[c] = struct{}{}
	g.mu.Unlock()
	if g.d.Safe() >= need {
		c.wake()
	}
}

// safeGrew is the observer's notification.
func (g *ackGate) safeGrew() {
	g.mu.Lock()
	conns := g.waiting
	if len(conns) == 0 {
		g.mu.Unlock()
		return
	}
	g.waiting = make(map[*guardConn]struct{}, len(conns))
	g.mu.Unlock()
	for c := range conns {
		c.wake()
	}
}
