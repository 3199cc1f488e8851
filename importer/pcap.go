package importer

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/mqtape/mqtape/storage"
)

// packetSource reads packets with their link type.
type packetSource func() (data []byte, ci gopacket.CaptureInfo, lt layers.LinkType, err error)

func openPcap(br *bufio.Reader) (packetSource, error) {
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	if binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a {
		r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{})
		if err != nil {
			return nil, fmt.Errorf("read pcapng header: %w", err)
		}
		return func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := r.ReadPacketData()
			if err != nil {
				return nil, ci, 0, err
			}
			iface, err := r.Interface(ci.InterfaceIndex)
			if err != nil {
				return nil, ci, 0, err
			}
			return data, ci, iface.LinkType, nil
		}, nil
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	return func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
		data, ci, err := r.ReadPacketData()
		return data, ci, r.LinkType(), err
	}, nil
}

// flowKey identifies one direction of a TCP connection.
type flowKey struct{ net, tcp gopacket.Flow }

// stream is the client→broker direction of one TCP connection.
type stream struct {
	name     string // "10.0.0.2:51234→10.0.0.1:1883"
	client   string // the client's address
	broker   string
	started  bool
	next     uint32            // next expected sequence number
	pending  map[uint32][]byte // segments that arrived early
	pendSize int
	buf      []byte // bytes not yet parsed into packets
	broken   bool   // decoding stopped (gap or not MQTT)
	midway   bool   // the capture began after the connection
	conn     *connectInfo
	aliases  map[uint16]string
	closed   bool
}

// maxPending bounds the out-of-order bytes kept per stream.
const maxPending = 16 << 20

// pcapSink receives what a pcapDecoder finds (the Importer, or a test).
type pcapSink interface {
	// begin is called once, before the first message or event.
	begin(ctx context.Context, startNS int64, broker string, protocol int) error
	message(ctx context.Context, m storage.Message) error // m.TimeNS is set, m.OffsetNS is not
	event(ctx context.Context, kind, detail string, ts int64)
	problem(ctx context.Context, where string, err error)
	note(s string)
}

// importerSink writes into the import's session.
type importerSink struct{ im *Importer }

func (s importerSink) begin(ctx context.Context, startNS int64, broker string, protocol int) error {
	s.im.w.Info.Broker = broker
	if protocol != 0 {
		s.im.w.Info.Protocol = protocol
	}
	return s.im.startSession(ctx, startNS)
}

func (s importerSink) message(ctx context.Context, m storage.Message) error {
	m.OffsetNS = max(m.TimeNS-s.im.w.SessionStart(), 0)
	return s.im.add(ctx, m)
}

func (s importerSink) event(ctx context.Context, kind, detail string, ts int64) {
	s.im.event(ctx, kind, detail, ts)
}
func (s importerSink) problem(ctx context.Context, where string, err error) {
	s.im.problem(ctx, where, err)
}
func (s importerSink) note(n string) { s.im.note(n) }

type pcapDecoder struct {
	im      pcapSink
	begun   bool
	port    layers.TCPPort
	streams map[flowKey]*stream
	firstNS int64
	nowNS   int64 // capture time of the current packet
	where   string
	proto   int
}

// readPcap imports a pcap or pcapng file: every PUBLISH a client sent to
// the broker (TCP destination port Options.Port), in one session starting
// at the first packet's time.
func (im *Importer) readPcap(ctx context.Context, br *bufio.Reader) error {
	next, err := openPcap(br)
	if err != nil {
		return err
	}
	d := &pcapDecoder{im: importerSink{im}, port: layers.TCPPort(im.opts.Port), streams: map[flowKey]*stream{}, firstNS: -1}
	for n := 1; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return nil
		}
		data, ci, lt, err := next()
		if err == io.EOF {
			break
		}
		d.where = fmt.Sprintf("packet %d", n)
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("the capture file ends inside a packet (truncated)")
			}
			im.problem(ctx, d.where, err)
			break
		}
		if err := d.packet(ctx, data, ci, lt); err != nil {
			return err
		}
	}
	return d.finish(ctx)
}

func (d *pcapDecoder) packet(ctx context.Context, data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) error {
	d.nowNS = ci.Timestamp.UnixNano()
	if d.firstNS < 0 {
		d.firstNS = d.nowNS
	}
	p := gopacket.NewPacket(data, lt, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	tl := p.Layer(layers.LayerTypeTCP)
	if tl == nil {
		d.im.note("packets that are not TCP (ignored)")
		return nil
	}
	tcp := tl.(*layers.TCP)
	if tcp.DstPort != d.port {
		if tcp.SrcPort != d.port {
			d.im.note(fmt.Sprintf("TCP packets not to or from port %d (ignored)", d.port))
			if tcp.SYN && !tcp.ACK {
				d.im.note(fmt.Sprintf("connections to port %d (not --port)", tcp.DstPort))
			}
		}
		return nil // the broker's side: every message is kept from its publisher
	}
	nl := p.NetworkLayer()
	if nl == nil {
		return nil
	}
	if ip, ok := nl.(*layers.IPv4); ok && (ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0) {
		d.im.problem(ctx, d.where, errors.New("fragmented IPv4 packet (not reassembled)"))
		return nil
	}
	key := flowKey{nl.NetworkFlow(), tcp.TransportFlow()}
	s := d.streams[key]
	if tcp.SYN {
		if s != nil && s.started {
			if err := d.closeStream(ctx, s, "a new connection on the same ports"); err != nil {
				return err
			}
		}
		s = d.newStream(nl, tcp)
		d.streams[key] = s
		s.started, s.next = true, tcp.Seq+1
		return nil
	}
	if s == nil {
		s = d.newStream(nl, tcp)
		d.streams[key] = s
	}
	if s.closed {
		return nil
	}
	payload := tcp.Payload
	if ci.CaptureLength < ci.Length && len(payload) > 0 && !s.broken {
		s.broken = true
		d.im.problem(ctx, d.where+" ("+s.name+")", errors.New("packet cut by the capture's snap length: the rest of this connection cannot be decoded (capture with -s 0)"))
	}
	if len(payload) > 0 && !s.broken {
		if !s.started {
			s.started, s.next, s.midway = true, tcp.Seq, true
			d.im.note("connections open before the capture started (decoded from their first segment; client id unknown)")
		}
		if err := d.segment(ctx, s, tcp.Seq, payload); err != nil {
			return err
		}
	}
	if tcp.FIN || tcp.RST {
		why := "connection closed without DISCONNECT"
		if tcp.RST {
			why = "connection reset"
		}
		return d.closeStream(ctx, s, why)
	}
	return nil
}

func (d *pcapDecoder) newStream(nl gopacket.NetworkLayer, tcp *layers.TCP) *stream {
	src := net.JoinHostPort(nl.NetworkFlow().Src().String(), strconv.Itoa(int(tcp.SrcPort)))
	dst := net.JoinHostPort(nl.NetworkFlow().Dst().String(), strconv.Itoa(int(tcp.DstPort)))
	return &stream{name: src + "→" + dst, client: src, broker: dst, pending: map[uint32][]byte{}, aliases: map[uint16]string{}}
}

// segment adds one TCP segment's payload at seq, in order.
func (d *pcapDecoder) segment(ctx context.Context, s *stream, seq uint32, payload []byte) error {
	switch diff := int32(seq - s.next); {
	case diff > 0: // early: keep until the gap fills
		if _, dup := s.pending[seq]; !dup {
			s.pending[seq] = append([]byte{}, payload...)
			s.pendSize += len(payload)
		}
		if s.pendSize > maxPending {
			s.broken = true
			d.im.problem(ctx, d.where+" ("+s.name+")", fmt.Errorf("%d bytes missing from the capture: the rest of this connection cannot be decoded", int32(seq-s.next)))
		}
		return nil
	case diff < 0: // a retransmission, maybe with new bytes at its end
		if int(-diff) >= len(payload) {
			return nil
		}
		payload = payload[-diff:]
	}
	s.buf = append(s.buf, payload...)
	s.next += uint32(len(payload))
	for len(s.pending) > 0 {
		progressed := false
		for pseq, p := range s.pending {
			off := int32(s.next - pseq)
			if off < 0 {
				continue
			}
			delete(s.pending, pseq)
			s.pendSize -= len(p)
			if int(off) < len(p) {
				s.buf = append(s.buf, p[off:]...)
				s.next += uint32(len(p) - int(off))
			}
			progressed = true
		}
		if !progressed {
			break
		}
	}
	return d.parse(ctx, s)
}

// parse decodes the complete MQTT packets at the start of s.buf.
func (d *pcapDecoder) parse(ctx context.Context, s *stream) error {
	for !s.broken {
		typ, flags, body, n, err := splitPacket(s.buf)
		if errors.Is(err, errIncomplete) {
			break
		}
		if err != nil {
			s.broken = true
			if len(s.buf) > 1 && s.buf[0] == 0x16 && s.buf[1] == 0x03 {
				err = fmt.Errorf("TLS-encrypted (cannot be decoded): %w", err)
			}
			d.im.problem(ctx, d.where+" ("+s.name+")", fmt.Errorf("%v: the rest of this connection cannot be decoded", err))
			break
		}
		if err := d.control(ctx, s, typ, flags, body); err != nil {
			return err
		}
		s.buf = s.buf[n:]
	}
	if len(s.buf) == 0 {
		s.buf = nil // let a large buffer go
	}
	return nil
}

func (d *pcapDecoder) control(ctx context.Context, s *stream, typ, flags byte, body []byte) error {
	switch typ {
	case pktConnect:
		ci, err := parseConnect(body)
		if err != nil {
			d.im.problem(ctx, d.where+" ("+s.name+")", err)
			return nil
		}
		ci.Remote = s.client
		s.conn = &ci
		if ci.Protocol == 5 {
			d.proto = 5
		}
		detail, _ := json.Marshal(ci)
		return d.emitEvent(ctx, s, storage.EventClientConnect, string(detail))
	case pktPublish:
		proto := byte(4)
		if s.conn != nil {
			proto = s.conn.Protocol
		}
		p, err := parsePublish(flags, body, proto)
		if err != nil {
			d.im.problem(ctx, d.where+" ("+s.name+")", err)
			return nil
		}
		if p.alias != 0 {
			if p.topic != "" {
				s.aliases[p.alias] = p.topic
			} else if p.topic = s.aliases[p.alias]; p.topic == "" {
				d.im.problem(ctx, d.where+" ("+s.name+")", fmt.Errorf("PUBLISH with unknown topic alias %d", p.alias))
				return nil
			}
		}
		if err := d.ensureSession(ctx, s); err != nil {
			return err
		}
		m := storage.Message{TimeNS: d.nowNS, Topic: p.topic,
			QoS: p.qos, Retain: p.retain, Dup: p.dup, PacketID: p.packetID, Payload: p.payload, Props: p.props}
		if s.conn != nil {
			m.ClientID = s.conn.ClientID
		}
		return d.im.message(ctx, m)
	case pktDisconnect:
		s.closed = true
		return d.disconnectEvent(ctx, s, "")
	}
	return nil
}

// ensureSession starts the import's session at the first packet's time.
func (d *pcapDecoder) ensureSession(ctx context.Context, s *stream) error {
	if d.begun {
		return nil
	}
	d.begun = true
	return d.im.begin(ctx, d.firstNS, "mqtt://"+s.broker, d.proto)
}

func (d *pcapDecoder) emitEvent(ctx context.Context, s *stream, kind, detail string) error {
	if err := d.ensureSession(ctx, s); err != nil {
		return err
	}
	d.im.event(ctx, kind, detail, d.nowNS)
	return nil
}

func (d *pcapDecoder) disconnectEvent(ctx context.Context, s *stream, why string) error {
	id := ""
	if s.conn != nil {
		id = s.conn.ClientID
	} else if s.midway {
		return nil // nothing is known about the client
	}
	detail, _ := json.Marshal(map[string]string{"client_id": id, "error": why, "remote": s.client})
	return d.emitEvent(ctx, s, storage.EventClientDisconnect, string(detail))
}

// closeStream ends a stream on FIN or RST (or a new SYN on its ports).
func (d *pcapDecoder) closeStream(ctx context.Context, s *stream, why string) error {
	if s.closed {
		return nil
	}
	d.leftover(ctx, s)
	s.closed = true
	if !s.started {
		return nil
	}
	return d.disconnectEvent(ctx, s, why)
}

// leftover reports the bytes of a stream that could not be decoded.
func (d *pcapDecoder) leftover(ctx context.Context, s *stream) {
	if s.broken {
		return
	}
	if s.pendSize > 0 {
		d.im.problem(ctx, s.name, fmt.Errorf("%d bytes after a gap in the capture were never completed", s.pendSize))
	} else if len(s.buf) > 0 {
		d.im.problem(ctx, s.name, fmt.Errorf("%d bytes of an incomplete MQTT packet at the end of the connection", len(s.buf)))
	}
	s.buf, s.pending, s.pendSize = nil, nil, 0
}

func (d *pcapDecoder) finish(ctx context.Context) error {
	var open []*stream
	for _, s := range d.streams {
		if !s.closed {
			open = append(open, s)
		}
	}
	slices.SortFunc(open, func(a, b *stream) int { return strings.Compare(a.name, b.name) })
	for _, s := range open {
		d.leftover(ctx, s)
	}
	return nil
}
