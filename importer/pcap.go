package importer

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/mqtape/mqtape/storage"
)

// packetSource reads packets with their link type.
type packetSource func() (data []byte, ci gopacket.CaptureInfo, lt layers.LinkType, err error)

func openPcap(br *bufio.Reader) (packetSource, error) {
	head, err := br.Peek(12)
	if err != nil && len(head) < 4 {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	if binary.LittleEndian.Uint32(head) == 0x0a0d0d0a {
		order := ngOrder(head)
		r, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{})
		if err != nil {
			return nil, fmt.Errorf("read pcapng header: %w", err)
		}
		return func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			if err := checkNgRecord(br, &order); err != nil {
				return nil, gopacket.CaptureInfo{}, 0, err
			}
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
	var order binary.ByteOrder = binary.LittleEndian
	if m := binary.BigEndian.Uint32(head); m == 0xa1b2c3d4 || m == 0xa1b23c4d {
		order = binary.BigEndian
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("read pcap header: %w", err)
	}
	return func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
		// The record's length, checked before pcapgo allocates it.
		if rec, _ := br.Peek(16); len(rec) == 16 {
			if n := order.Uint32(rec[8:]); n > maxRecord {
				return nil, gopacket.CaptureInfo{}, 0, recordTooLong(n)
			}
		}
		data, ci, err := r.ReadPacketData()
		return data, ci, r.LinkType(), err
	}, nil
}

// maxRecord bounds one packet record: the largest snap length tcpdump and
// Wireshark write (262,144 bytes). A longer record is damage (or hostile):
// pcapgo would allocate what its header claims, up to 4 GiB.
const maxRecord = 262144

func recordTooLong(n uint32) error {
	return fmt.Errorf("a packet record of %d bytes (no capture tool writes more than %d): the file is damaged from here on", n, maxRecord)
}

// ngOrder is the byte order of the pcapng section header at the start of b.
func ngOrder(b []byte) binary.ByteOrder {
	if len(b) >= 12 && binary.BigEndian.Uint32(b[8:]) == 0x1a2b3c4d {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// checkNgRecord looks at the pcapng blocks ahead (as far as br has them)
// up to the next packet block and refuses a packet longer than maxRecord
// before pcapgo allocates it.
func checkNgRecord(br *bufio.Reader, order *binary.ByteOrder) error {
	ahead, _ := br.Peek(br.Size())
	for off := 0; off+12 <= len(ahead); {
		b := ahead[off:]
		typ := (*order).Uint32(b)
		if typ == 0x0a0d0d0a { // a new section, maybe of the other byte order
			*order = ngOrder(b)
		}
		length := (*order).Uint32(b[4:])
		var n uint32
		switch typ {
		case 6, 2: // enhanced and obsolete packet blocks: captured length
			if len(b) < 24 {
				return nil
			}
			n = (*order).Uint32(b[20:])
		case 3: // simple packet block: original length
			n = (*order).Uint32(b[8:])
		default:
			if length < 12 || int(length) > len(ahead)-off {
				return nil // pcapgo reports it, or it is beyond what is buffered
			}
			off += int(length)
			continue
		}
		if n > maxRecord {
			return recordTooLong(n)
		}
		return nil
	}
	return nil
}

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

// readPcap imports a pcap or pcapng file: every PUBLISH a client sent to
// the broker (TCP destination port Options.Port), in one session starting
// at the first packet's time.
func (im *Importer) readPcap(ctx context.Context, br *bufio.Reader) error {
	return decodePcap(ctx, br, importerSink{im}, im.opts.Port)
}

// decodePcap decodes the packets of a pcap or pcapng file into sink.
func decodePcap(ctx context.Context, br *bufio.Reader, sink pcapSink, port int) error {
	next, err := openPcap(br)
	if err != nil {
		return err
	}
	d := newPcapDecoder(ctx, sink, port)
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
			sink.problem(ctx, d.where, err)
			break
		}
		if err := d.packet(data, ci, lt); err != nil {
			return err
		}
	}
	return d.finish()
}

func (d *pcapDecoder) packet(data []byte, ci gopacket.CaptureInfo, lt layers.LinkType) error {
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
	toBroker := tcp.DstPort == d.port
	if !toBroker {
		if tcp.SrcPort != d.port {
			d.im.note(fmt.Sprintf("TCP packets not to or from port %d (ignored)", d.port))
			if tcp.SYN && !tcp.ACK {
				d.im.note(fmt.Sprintf("connections to port %d (not --port)", tcp.DstPort))
			}
			return nil
		}
		if !tcp.FIN && !tcp.RST {
			return nil // the broker's side: every message is kept from its publisher
		}
	}
	nl := p.NetworkLayer()
	if nl == nil {
		return nil
	}
	if ip, ok := nl.(*layers.IPv4); ok && (ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0) {
		d.im.problem(d.ctx, d.where, errors.New("fragmented IPv4 packet (not reassembled)"))
		return nil
	}
	if toBroker && ci.CaptureLength < ci.Length && len(tcp.Payload) > 0 {
		// Its bytes are lost like a lost segment's: the stream resumes after it.
		d.im.problem(d.ctx, d.where, fmt.Errorf("packet longer than the capture's snap length (%d of %d bytes captured): skipped (capture with -s 0)",
			ci.CaptureLength, ci.Length))
		return nil
	}
	if !toBroker { // only the broker's FIN or RST, to end the connection
		t := *tcp
		t.Payload = nil
		tcp = &t
	}
	d.asm.AssembleWithContext(nl.NetworkFlow(), tcp, (*captureContext)(&ci))
	d.flushOld()
	return d.err
}

func (d *pcapDecoder) control(s *stream, typ, flags byte, body []byte, ts int64) error {
	switch typ {
	case pktConnect:
		ci, err := parseConnect(body)
		if err != nil {
			d.im.problem(d.ctx, d.where+" ("+s.name+")", err)
			return nil
		}
		ci.Remote = s.client
		s.conn = &ci
		if ci.Protocol == 5 {
			d.proto = 5
		}
		detail, _ := json.Marshal(ci)
		return d.emitEvent(s, storage.EventClientConnect, string(detail), ts)
	case pktPublish:
		p, err := parsePublish(flags, body, s.protocol())
		if err != nil {
			d.im.problem(d.ctx, d.where+" ("+s.name+")", err)
			return nil
		}
		if p.alias != 0 {
			if p.topic != "" {
				s.aliases[p.alias] = p.topic
			} else if p.topic = s.aliases[p.alias]; p.topic == "" {
				d.im.problem(d.ctx, d.where+" ("+s.name+")", fmt.Errorf("PUBLISH with unknown topic alias %d", p.alias))
				return nil
			}
		}
		if err := d.ensureSession(s); err != nil {
			return err
		}
		m := storage.Message{TimeNS: ts, Topic: p.topic,
			QoS: p.qos, Retain: p.retain, Dup: p.dup, PacketID: p.packetID, Payload: p.payload, Props: p.props}
		if s.conn != nil {
			m.ClientID = s.conn.ClientID
		}
		d.hold(m)
	case pktDisconnect:
		s.closed = true
		return d.disconnectEvent(s, "", ts)
	}
	return nil
}

// ensureSession starts the import's session at the first packet's time.
func (d *pcapDecoder) ensureSession(s *stream) error {
	if d.begun {
		return nil
	}
	d.begun = true
	return d.im.begin(d.ctx, d.firstNS, "mqtt://"+s.broker, d.proto)
}

func (d *pcapDecoder) emitEvent(s *stream, kind, detail string, ts int64) error {
	if err := d.ensureSession(s); err != nil {
		return err
	}
	d.im.event(d.ctx, kind, detail, ts)
	return nil
}

func (d *pcapDecoder) disconnectEvent(s *stream, why string, ts int64) error {
	id := ""
	if s.conn != nil {
		id = s.conn.ClientID
	} else if s.midway {
		return nil // nothing is known about the client
	}
	detail, _ := json.Marshal(map[string]string{"client_id": id, "error": why, "remote": s.client})
	return d.emitEvent(s, storage.EventClientDisconnect, string(detail), ts)
}

// closeStream ends a stream on FIN or RST.
func (d *pcapDecoder) closeStream(s *stream, why string, ts int64) error {
	if s.closed {
		return nil
	}
	d.leftover(s)
	s.closed = true
	return d.disconnectEvent(s, why, ts)
}

// leftover decodes what a stream still holds after a gap, now that no
// more data will come, and reports what cannot be decoded.
func (d *pcapDecoder) leftover(s *stream) {
	if s.broken {
		return
	}
	if s.resync {
		s.final = true
		d.keep(d.parse(s, nil))
	}
	if s.resync {
		if n := s.skipped + len(s.buf); s.lost+n > 0 {
			d.im.problem(d.ctx, s.name, fmt.Errorf("nothing could be decoded after the last gap (%d bytes missing from the capture, %d skipped)", s.lost, n))
		}
		s.buf = nil
		return
	}
	if len(s.buf) > 0 {
		d.im.problem(d.ctx, s.name, fmt.Errorf("%d bytes of an incomplete MQTT packet at the end of the connection", len(s.buf)))
	}
	s.buf = nil
}

// finish pushes out what the reassembly still holds (skipping the gaps it
// was waiting to see filled), reports what the streams could not decode
// and writes the messages held back for time order.
func (d *pcapDecoder) finish() error {
	d.asm.FlushAll()
	open := slices.DeleteFunc(slices.Clone(d.streams), func(s *stream) bool { return s.closed })
	slices.SortFunc(open, func(a, b *stream) int { return strings.Compare(a.name, b.name) })
	for _, s := range open {
		d.leftover(s)
	}
	d.release(math.MaxInt64)
	return d.err
}
