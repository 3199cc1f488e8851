package importer

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"time"
	"unicode/utf8"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/reassembly"

	"github.com/mqtape/mqtape/storage"
)

// TCP streams are put back together by gopacket's reassembly package
// (out-of-order segments, retransmissions, overlaps, and gaps it stops
// waiting for). What it hands over is decoded here with mqtape's own MQTT
// codec (mqttpkt.go), not paho's: paho may be imported by mqttclient only
// (internal/cli/deps_test.go), and its readers stop at the first malformed
// packet where an importer must count it and go on.
//
// After a gap (lost segments, a packet longer than the snap length, bytes
// that are not MQTT) decoding resumes, as Wireshark's does, where a
// plausible MQTT packet starts: findStart looks at every offset for a
// packet a client sends whose header and topic are valid and that is
// followed by another valid header or ends where the data ends. What is
// lost and skipped is counted in one problem per gap.

const (
	// reorderWindow is how long (in capture time) reassembly waits for a
	// missing segment (a retransmission) before it skips the gap.
	reorderWindow = 2 * time.Second
	// maxPending bounds the out-of-order bytes kept per stream (in
	// reassembly's pages of 1,900 bytes); beyond it the gap is skipped.
	maxPending = 16 << 20
	// maxResyncPacket: after a gap, a packet claiming to be longer is not
	// taken as the place to resume (it would hold everything behind it).
	maxResyncPacket = 16 << 20
)

type pcapDecoder struct {
	ctx       context.Context
	im        pcapSink
	begun     bool
	port      layers.TCPPort
	asm       *reassembly.Assembler
	streams   []*stream // in the order they were seen
	firstNS   int64
	nowNS     int64 // capture time of the current packet
	flushedNS int64 // capture time of the last flush of old gaps
	where     string
	proto     int
	held      heldMessages // decoded messages, written in time order
	heldN     int64
	err       error // the first error writing the capture
}

func newPcapDecoder(ctx context.Context, sink pcapSink, port int) *pcapDecoder {
	d := &pcapDecoder{ctx: ctx, im: sink, port: layers.TCPPort(port), firstNS: -1}
	d.asm = reassembly.NewAssembler(reassembly.NewStreamPool(d))
	d.asm.MaxBufferedPagesPerConnection = maxPending / 1900
	d.asm.MaxBufferedPagesTotal = 4 * maxPending / 1900
	return d
}

// captureContext gives reassembly a packet's capture info.
type captureContext gopacket.CaptureInfo

func (c *captureContext) GetCaptureInfo() gopacket.CaptureInfo { return gopacket.CaptureInfo(*c) }

// stream is one TCP connection to the broker; only the client→broker
// direction is decoded.
type stream struct {
	d        *pcapDecoder
	name     string // "10.0.0.2:51234→10.0.0.1:1883"
	client   string // the client's address
	broker   string
	toBroker reassembly.TCPFlowDirection // reassembly's direction of the client's half
	dirKnown bool
	buf      []byte // bytes not yet parsed into packets
	broken   bool   // decoding stopped for good (TLS)
	midway   bool   // the capture began after the connection
	reset    bool   // the connection ended with RST
	closed   bool
	conn     *connectInfo
	aliases  map[uint16]string

	// Resynchronisation after a gap.
	resync  bool   // looking for the next plausible packet
	final   bool   // no more data will come
	lost    int    // bytes missing from the capture in this gap
	skipped int    // bytes present but skipped to resynchronise
	cause   string // why decoding lost its place, when not a gap
}

// New makes the stream of a new TCP connection (reassembly.StreamFactory).
func (d *pcapDecoder) New(netFlow, tcpFlow gopacket.Flow, tcp *layers.TCP, _ reassembly.AssemblerContext) reassembly.Stream {
	src := net.JoinHostPort(netFlow.Src().String(), tcpFlow.Src().String())
	dst := net.JoinHostPort(netFlow.Dst().String(), tcpFlow.Dst().String())
	if tcp.SrcPort == d.port { // the broker's FIN came first
		src, dst = dst, src
	}
	s := &stream{d: d, name: src + "→" + dst, client: src, broker: dst, aliases: map[uint16]string{}}
	d.streams = append(d.streams, s)
	return s
}

func (s *stream) protocol() byte {
	if s.conn != nil {
		return s.conn.Protocol
	}
	return 4
}

// Accept takes every segment; a connection seen without its SYN (open
// before the capture began) is decoded from the first plausible packet.
func (s *stream) Accept(tcp *layers.TCP, _ gopacket.CaptureInfo, dir reassembly.TCPFlowDirection, nextSeq reassembly.Sequence,
	start *bool, _ reassembly.AssemblerContext) bool {
	if tcp.DstPort != s.d.port { // the broker's FIN or RST
		*start = true
		return true
	}
	if !s.dirKnown {
		s.toBroker, s.dirKnown = dir, true
	}
	if nextSeq < 0 && !tcp.SYN && !*start {
		if len(tcp.Payload) == 0 {
			return false // e.g. the last ACK of a connection already closed
		}
		*start = true
		s.midway, s.resync = true, true
		s.d.im.note("connections open before the capture started (decoded from their first whole packet; client id unknown)")
	}
	s.reset = s.reset || tcp.RST
	return true
}

// ReassembledSG decodes the client's bytes in order; skip > 0 says that
// many bytes are missing before them.
func (s *stream) ReassembledSG(sg reassembly.ScatterGather, ac reassembly.AssemblerContext) {
	dir, _, end, skip := sg.Info()
	if s.closed || !s.dirKnown || dir != s.toBroker {
		return
	}
	length, _ := sg.Lengths()
	if skip > 0 && !s.broken {
		s.lost += skip
		s.skipped += len(s.buf) // the start of a packet whose rest is lost
		s.buf, s.resync = nil, true
	}
	if length > 0 && !s.broken {
		prev := len(s.buf)
		s.buf = append(s.buf, sg.Fetch(length)...)
		// A message is received when its last byte is: the later of the
		// packet that carried that byte and the packet that made the data
		// whole (a retransmission filling a gap; when reassembly skips a
		// gap, the first packet after it).
		var completed int64
		if ac != nil {
			completed = ac.GetCaptureInfo().Timestamp.UnixNano()
		}
		at := func(end int) int64 {
			for off := max(end-prev-1, 0); off >= 0; off -= 1900 {
				if ns, ok := captureTime(sg, off); ok {
					return max(ns, completed)
				}
			}
			return max(completed, s.d.firstNS)
		}
		s.d.keep(s.d.parse(s, at))
	}
	if end {
		ts := s.d.nowNS
		if ns, ok := captureTime(sg, length-1); ok {
			ts = ns
		}
		why := "connection closed without DISCONNECT"
		if s.reset {
			why = "connection reset"
		}
		s.d.keep(s.d.closeStream(s, why, ts))
	}
}

// captureTime is the capture time of the packet that brought the byte at
// offset of sg. reassembly keeps a packet's capture info on the first of
// the 1,900-byte pages it stores the packet in, and its CaptureInfo fails
// (with a nil dereference) on the others: ok is false for those, and the
// caller looks a page further back.
func captureTime(sg reassembly.ScatterGather, offset int) (ns int64, ok bool) {
	defer func() {
		if recover() != nil {
			ns, ok = 0, false
		}
	}()
	ci := sg.CaptureInfo(offset)
	return ci.Timestamp.UnixNano(), !ci.Timestamp.IsZero()
}

// ReassemblyComplete: both directions ended; a new SYN on the same ports
// makes a new stream.
func (s *stream) ReassemblyComplete(reassembly.AssemblerContext) bool { return true }

// keep records the first error writing the capture.
func (d *pcapDecoder) keep(err error) {
	if err != nil && d.err == nil {
		d.err = err
	}
}

// parse decodes the complete MQTT packets at the start of s.buf; at gives
// the capture time of the packet that brought the byte before offset end.
func (d *pcapDecoder) parse(s *stream, at func(end int) int64) error {
	pos := 0
	defer func() {
		if s.buf = s.buf[pos:]; len(s.buf) == 0 {
			s.buf = nil // let a large buffer go
		}
	}()
	for !s.broken && !s.closed {
		buf := s.buf[pos:]
		if s.resync {
			i, found := findStart(buf, s.protocol(), s.final)
			pos, s.skipped = pos+i, s.skipped+i
			if !found {
				return nil
			}
			d.resynced(s)
			continue
		}
		typ, flags, body, n, err := splitPacket(buf)
		if errors.Is(err, errIncomplete) {
			return nil
		}
		if err != nil {
			if len(buf) > 1 && buf[0] == 0x16 && buf[1] == 0x03 {
				s.broken = true
				d.im.problem(d.ctx, d.where+" ("+s.name+")", fmt.Errorf("TLS-encrypted (cannot be decoded): %w: the rest of this connection cannot be decoded", err))
				return nil
			}
			s.resync, s.cause = true, err.Error()
			continue
		}
		ts := d.nowNS
		if at != nil {
			ts = at(pos + n)
		}
		if err := d.control(s, typ, flags, body, ts); err != nil {
			return err
		}
		pos += n
	}
	return nil
}

// resynced reports a gap decoding has found its place after.
func (d *pcapDecoder) resynced(s *stream) {
	var err error
	switch {
	case s.lost > 0:
		err = fmt.Errorf("%d bytes missing from the capture (lost segments or a packet longer than the snap length); "+
			"%d bytes around them skipped to the next whole MQTT packet", s.lost, s.skipped)
	case s.cause != "":
		err = fmt.Errorf("%s: %d bytes skipped to the next plausible MQTT packet", s.cause, s.skipped)
	case s.skipped > 0:
		err = fmt.Errorf("the capture began inside a packet: %d bytes skipped to the first whole one", s.skipped)
	}
	if err != nil {
		d.im.problem(d.ctx, d.where+" ("+s.name+")", err)
	}
	s.resync, s.lost, s.skipped, s.cause = false, 0, 0, ""
}

// verdict is what findStart makes of an offset.
type verdict int

const (
	no   verdict = iota // not a packet start
	yes                 // a plausible packet start
	wait                // cannot tell before more bytes arrive
)

// findStart returns the offset of the first plausible MQTT packet in buf
// and true, or how many bytes can be skipped for sure and false.
func findStart(buf []byte, proto byte, final bool) (int, bool) {
	for i := range buf {
		switch candidate(buf[i:], proto, final) {
		case yes:
			return i, true
		case wait:
			return i, false
		}
	}
	return len(buf), false
}

// candidate judges whether b starts with a packet a client sends: a valid
// fixed header, a plausible body, and after it another valid fixed header
// or the end of the bytes so far (a segment boundary).
func candidate(b []byte, proto byte, final bool) verdict {
	undecided := wait
	if final {
		undecided = no
	}
	h := header(b)
	if h != yes {
		return min(h, undecided)
	}
	rem, k, _ := varint(b[1:])
	if rem > maxResyncPacket {
		return no
	}
	body := b[1+k:]
	switch typ := b[0] >> 4; typ {
	case pktPublish:
		if v := plausiblePublish(b[0]&0x0f, body, rem, proto); v != yes {
			return min(v, undecided)
		}
	case pktConnect:
		if rem < 10 || len(body) >= 8 && string(body[:6]) != "\x00\x04MQTT" && string(body[:8]) != "\x00\x06MQIsdp" {
			return no
		}
	case 4, 5, 6, 7: // PUBACK, PUBREC, PUBREL, PUBCOMP
		if rem < 2 || proto != 5 && rem != 2 {
			return no
		}
	case 12: // PINGREQ
		if rem != 0 {
			return no
		}
	case pktDisconnect:
		if proto != 5 && rem != 0 {
			return no
		}
	default: // SUBSCRIBE, UNSUBSCRIBE, AUTH
		if rem < 3 {
			return no
		}
	}
	end := 1 + k + rem
	switch {
	case len(b) < end:
		return undecided
	case len(b) == end:
		return yes
	}
	if f := header(b[end:]); f != yes {
		return min(f, undecided)
	}
	return yes
}

// header judges the fixed header at the start of b.
func header(b []byte) verdict {
	if len(b) == 0 {
		return wait
	}
	typ := b[0] >> 4
	if typ == 0 || typ == 2 || typ == 9 || typ == 11 || typ == 13 || checkFlags(typ, b[0]&0x0f) != nil {
		return no // not a packet a client sends
	}
	if _, _, err := varint(b[1:]); err != nil {
		if errors.Is(err, errIncomplete) {
			return wait
		}
		return no
	}
	return yes
}

// plausiblePublish checks what of a PUBLISH body has arrived: a topic that
// fits the packet and is a valid name without control characters (or
// empty with an MQTT 5 alias), and a packet id for QoS > 0.
func plausiblePublish(flags byte, body []byte, rem int, proto byte) verdict {
	if len(body) < 2 {
		return wait
	}
	tl := int(body[0])<<8 | int(body[1])
	qos := flags >> 1 & 3
	need := 2 + tl
	if qos > 0 {
		need += 2
	}
	if need > rem || tl == 0 && proto != 5 {
		return no
	}
	if len(body) < need {
		return wait
	}
	t := body[2 : 2+tl]
	if !utf8.Valid(t) {
		return no
	}
	for _, c := range t {
		if c < 0x20 || c == '+' || c == '#' || c == 0x7f {
			return no
		}
	}
	if qos > 0 && body[2+tl] == 0 && body[3+tl] == 0 {
		return no
	}
	return yes
}

// flushOld makes reassembly give up on gaps older than reorderWindow, and
// writes the messages that nothing decoded later can precede.
func (d *pcapDecoder) flushOld() {
	if d.nowNS-d.flushedNS < int64(reorderWindow)/4 {
		return
	}
	d.flushedNS = d.nowNS
	d.asm.FlushWithOptions(reassembly.FlushOptions{T: time.Unix(0, d.nowNS-int64(reorderWindow))})
	d.release(d.nowNS - 2*int64(reorderWindow))
}

// hold keeps a decoded message until release: data reassembly delivers
// after a gap is older than what other connections delivered meanwhile.
func (d *pcapDecoder) hold(m storage.Message) {
	heap.Push(&d.held, heldMessage{m, d.heldN})
	d.heldN++
}

// release writes the held messages older than beforeNS, in time order.
func (d *pcapDecoder) release(beforeNS int64) {
	for len(d.held) > 0 && d.held[0].m.TimeNS < beforeNS {
		h := heap.Pop(&d.held).(heldMessage)
		d.keep(d.im.message(d.ctx, h.m))
	}
}

type heldMessage struct {
	m storage.Message
	n int64 // decoding order, for equal times
}

type heldMessages []heldMessage

func (h heldMessages) Len() int { return len(h) }
func (h heldMessages) Less(i, j int) bool {
	return h[i].m.TimeNS < h[j].m.TimeNS || h[i].m.TimeNS == h[j].m.TimeNS && h[i].n < h[j].n
}
func (h heldMessages) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldMessages) Push(x any)   { *h = append(*h, x.(heldMessage)) }
func (h *heldMessages) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
