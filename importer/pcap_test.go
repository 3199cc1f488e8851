package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
)

// --- MQTT packet encoders -------------------------------------------------

func mqttVarint(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

func mqttStr(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

func mqttPacket(first byte, body []byte) []byte {
	return append(append([]byte{first}, mqttVarint(len(body))...), body...)
}

func connectPkt(clientID string, version byte, user string) []byte {
	name := "MQTT"
	if version == 3 {
		name = "MQIsdp"
	}
	flags := byte(0x02)
	if user != "" {
		flags |= 0x80 | 0x40
	}
	body := append(mqttStr(name), version, flags, 0, 30)
	if version == 5 {
		body = append(body, 3, 0x21, 0, 10) // receive maximum 10
	}
	body = append(body, mqttStr(clientID)...)
	if user != "" {
		body = append(body, mqttStr(user)...)
		body = append(body, mqttStr("secret-password")...)
	}
	return mqttPacket(0x10, body)
}

type pubSpec struct {
	topic   string
	qos     byte
	retain  bool
	dup     bool
	pid     uint16
	payload []byte
	v5      bool
	alias   uint16
	props   bool
}

func publishPkt(p pubSpec) []byte {
	first := byte(0x30) | p.qos<<1
	if p.retain {
		first |= 1
	}
	if p.dup {
		first |= 8
	}
	body := mqttStr(p.topic)
	if p.qos > 0 {
		body = binary.BigEndian.AppendUint16(body, p.pid)
	}
	if p.v5 {
		var props []byte
		if p.alias != 0 {
			props = append(props, 0x23, byte(p.alias>>8), byte(p.alias))
		}
		if p.props {
			props = append(props, 0x26)
			props = append(props, mqttStr("k")...)
			props = append(props, mqttStr("v")...)
		}
		body = append(body, mqttVarint(len(props))...)
		body = append(body, props...)
	}
	return mqttPacket(first, append(body, p.payload...))
}

// --- pcap writer ------------------------------------------------------------

type pcapBuilder struct {
	t      testing.TB
	buf    bytes.Buffer
	w      *pcapgo.Writer
	at     time.Time
	frames int
}

func newPcap(t testing.TB) *pcapBuilder {
	b := &pcapBuilder{t: t, at: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	b.w = pcapgo.NewWriterNanos(&b.buf)
	if err := b.w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	return b
}

// conn is one TCP connection of a test capture.
type conn struct {
	b          *pcapBuilder
	src, dst   net.IP
	sport      uint16
	dport      uint16
	seq, rseq  uint32
	snapCutOne bool
}

func (b *pcapBuilder) conn(src, dst string, sport, dport uint16) *conn {
	return &conn{b: b, src: net.ParseIP(src), dst: net.ParseIP(dst), sport: sport, dport: dport, seq: 1000, rseq: 5000}
}

func (b *pcapBuilder) write(src, dst net.IP, sport, dport uint16, seq uint32, syn, fin, rst bool, payload []byte, capLen int) {
	b.t.Helper()
	b.at = b.at.Add(time.Millisecond)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: seq, SYN: syn, FIN: fin, RST: rst,
		ACK: !syn || dport > sport, PSH: len(payload) > 0, Window: 65535} // brokers have the low ports here: a SYN from one is a SYN-ACK
	var nl gopacket.SerializableLayer
	if src.To4() != nil {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
		tcp.SetNetworkLayerForChecksum(ip)
		nl = ip
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
		tcp.SetNetworkLayerForChecksum(ip)
		nl = ip
	}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, nl, tcp, gopacket.Payload(payload)); err != nil {
		b.t.Fatal(err)
	}
	data := sb.Bytes()
	ci := gopacket.CaptureInfo{Timestamp: b.at, CaptureLength: len(data), Length: len(data)}
	if capLen > 0 && capLen < len(data) {
		data, ci.CaptureLength = data[:capLen], capLen
	}
	if err := b.w.WritePacket(ci, data); err != nil {
		b.t.Fatal(err)
	}
	b.frames++
}

func (c *conn) syn() {
	c.b.write(c.src, c.dst, c.sport, c.dport, c.seq-1, true, false, false, nil, 0)
	c.b.write(c.dst, c.src, c.dport, c.sport, c.rseq-1, true, false, false, nil, 0) // SYN-ACK
}

// send writes data from client to broker in segments of the given sizes
// (the rest in one segment).
func (c *conn) send(data []byte, sizes ...int) {
	for _, n := range sizes {
		c.seg(c.seq, data[:n])
		c.seq += uint32(n)
		data = data[n:]
	}
	if len(data) > 0 {
		c.seg(c.seq, data)
		c.seq += uint32(len(data))
	}
}

func (c *conn) seg(seq uint32, data []byte) {
	c.b.write(c.src, c.dst, c.sport, c.dport, seq, false, false, false, data, 0)
}

// reply writes data from broker to client (ignored by the importer).
func (c *conn) reply(data []byte) {
	c.b.write(c.dst, c.src, c.dport, c.sport, c.rseq, false, false, false, data, 0)
	c.rseq += uint32(len(data))
}

func (c *conn) fin() { c.b.write(c.src, c.dst, c.sport, c.dport, c.seq, false, true, false, nil, 0) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// syntheticPcap builds the capture TestPcapSynthetic imports: seven
// connections, each exercising one reassembly or decoding case. It returns
// the builder and the payload of the big QoS 2 message.
func syntheticPcap(t testing.TB) (*pcapBuilder, []byte) {
	t.Helper()
	b := newPcap(t)
	// 1: MQTT 3.1.1, several packets per segment, one packet over three
	// segments, a retransmission, an overlapping retransmission.
	c1 := b.conn("10.0.0.2", "10.0.0.1", 50001, 1883)
	c1.syn()
	big := bytes.Repeat([]byte{0, 1, 2, 0xff}, 5000)
	stream := cat(connectPkt("dev-1", 4, "alice"),
		publishPkt(pubSpec{topic: "a/1", qos: 1, pid: 1, payload: []byte("one")}),
		publishPkt(pubSpec{topic: "a/2", retain: true, payload: []byte("two")}),
		publishPkt(pubSpec{topic: "big", qos: 2, pid: 2, payload: big}),
		publishPkt(pubSpec{topic: "a/3", qos: 1, pid: 3, dup: true, payload: []byte{}}),
		[]byte{0xc0, 0}, // PINGREQ
	)
	first := len(connectPkt("dev-1", 4, "alice")) + 10 // CONNECT, the first PUBLISH cut in two
	c1.send(stream[:first])
	c1.seg(c1.seq-5, stream[first-5:first]) // pure retransmission
	c1.reply(publishPkt(pubSpec{topic: "a/1", qos: 1, pid: 9, payload: []byte("one")}))
	rest := stream[first:]
	c1.send(rest, 20, 7000, 7000)
	c1.seg(c1.seq-10, []byte("0123456789")) // a late duplicate of the tail (ignored)
	c1.send(cat(mqttPacket(0xe0, nil)))     // DISCONNECT
	c1.fin()

	// 2: MQTT 5 with a topic alias reused with an empty topic, segments
	// arriving out of order, over IPv6.
	c2 := b.conn("fd00::2", "fd00::1", 50002, 1883)
	c2.syn()
	s2 := cat(connectPkt("v5-dev", 5, ""),
		publishPkt(pubSpec{topic: "v5/long/topic", v5: true, alias: 4, props: true, payload: []byte("x1")}),
		publishPkt(pubSpec{topic: "", v5: true, alias: 4, qos: 1, pid: 7, payload: []byte("x2")}),
		publishPkt(pubSpec{topic: "", v5: true, alias: 9, payload: []byte("unknown alias")}),
	)
	half := len(s2) / 2
	c2.seg(c2.seq+uint32(half), s2[half:]) // second half first
	c2.seg(c2.seq, s2[:half])
	c2.seq += uint32(len(s2))
	c2.fin()

	// 3: not MQTT (TLS), and 4: a connection open before the capture.
	c3 := b.conn("10.0.0.3", "10.0.0.1", 50003, 1883)
	c3.syn()
	c3.send([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00})
	c4 := b.conn("10.0.0.4", "10.0.0.1", 50004, 1883)
	c4.send(publishPkt(pubSpec{topic: "midway", payload: []byte("m")}))
	// 5: a packet cut by the snap length.
	c5 := b.conn("10.0.0.5", "10.0.0.1", 50005, 1883)
	c5.syn()
	c5.send(connectPkt("cut", 4, ""))
	pkt := publishPkt(pubSpec{topic: "cut", payload: bytes.Repeat([]byte("c"), 500)})
	b.write(c5.src, c5.dst, c5.sport, c5.dport, c5.seq, false, false, false, pkt, 100)
	// 6: another port (ignored) and a half-sent packet at the end.
	c6 := b.conn("10.0.0.6", "10.0.0.1", 50006, 8080)
	c6.syn()
	c6.send([]byte("GET / HTTP/1.1\r\n"))
	c7 := b.conn("10.0.0.7", "10.0.0.1", 50007, 1883)
	c7.syn()
	c7.send(cat(connectPkt("half", 4, ""), publishPkt(pubSpec{topic: "h", payload: []byte("12345")})[:6]))
	return b, big
}

func TestPcapSynthetic(t *testing.T) {
	b, big := syntheticPcap(t)
	res, msgs, sessions, events, err := importString(t, b.buf.Bytes(), Options{Format: FormatPcap, Name: "synthetic"})
	if err != nil {
		t.Fatal(err)
	}
	checkSyntheticMessages(t, msgs, big)
	checkSyntheticReport(t, res)
	if s := sessions[0]; s.Broker != "mqtt://10.0.0.1:1883" || s.StartedNS != time.Date(2026, 11, 26, 12, 0, 0, 1e6, time.UTC).UnixNano() {
		t.Errorf("session = %+v", s)
	}
	checkSyntheticEvents(t, events)
	// A truncated file: everything before the cut is imported, the cut is reported.
	res, msgs, _, _, err = importString(t, b.buf.Bytes()[:b.buf.Len()-30], Options{Format: FormatPcap})
	if err != nil || len(msgs) != 7 || !strings.Contains(fmt.Sprint(res.Problems), "truncated") {
		t.Errorf("truncated file: %v, %d messages, %v", err, len(msgs), res.Problems)
	}
}

// checkSyntheticMessages compares the imported messages of syntheticPcap
// field by field, the big payload byte for byte, and the MQTT 5 properties.
func checkSyntheticMessages(t *testing.T, msgs []storage.Message, big []byte) {
	t.Helper()
	type got struct {
		topic, client, payload string
		qos                    byte
		retain, dup            bool
		pid                    uint16
	}
	var gotMsgs []got
	for _, m := range msgs {
		p := string(m.Payload)
		if len(p) > 20 {
			p = fmt.Sprintf("%d bytes", len(p))
		}
		gotMsgs = append(gotMsgs, got{m.Topic, m.ClientID, p, m.QoS, m.Retain, m.Dup, m.PacketID})
	}
	want := []got{
		{"a/1", "dev-1", "one", 1, false, false, 1},
		{"a/2", "dev-1", "two", 0, true, false, 0},
		{"big", "dev-1", "20000 bytes", 2, false, false, 2},
		{"a/3", "dev-1", "", 1, false, true, 3},
		{"v5/long/topic", "v5-dev", "x1", 0, false, false, 0},
		{"v5/long/topic", "v5-dev", "x2", 1, false, false, 7},
		{"midway", "", "m", 0, false, false, 0},
	}
	if fmt.Sprint(gotMsgs) != fmt.Sprint(want) {
		t.Errorf("messages:\n got %v\nwant %v", gotMsgs, want)
	}
	if !bytes.Equal(msgs[2].Payload, big) {
		t.Error("the reassembled big payload differs")
	}
	if p := msgs[4].Props; p == nil || len(p.UserProperties) != 1 || p.UserProperties[0] != (mqtt.UserProperty{Key: "k", Value: "v"}) || msgs[5].Props != nil {
		t.Errorf("properties: %+v / %+v", msgs[4].Props, msgs[5].Props)
	}
}

// checkSyntheticReport wants each broken connection of syntheticPcap among
// the problems and the skipped traffic among the notes.
func checkSyntheticReport(t *testing.T, res Result) {
	t.Helper()
	for _, problem := range []string{"unknown topic alias 9", "TLS-encrypted", "snap length", "incomplete MQTT packet"} {
		found := false
		for _, p := range res.Problems {
			found = found || strings.Contains(p.String(), problem)
		}
		if !found {
			t.Errorf("no problem %q in %v", problem, res.Problems)
		}
	}
	if res.Bad != 4 {
		t.Errorf("bad = %d: %v", res.Bad, res.Problems)
	}
	notes := strings.Join(res.Notes, "\n")
	for _, n := range []string{"connections open before the capture started", "TCP packets not to or from port 1883"} {
		if !strings.Contains(notes, n) {
			t.Errorf("notes lack %q:\n%s", n, notes)
		}
	}
}

// checkSyntheticEvents wants the connects and disconnects of syntheticPcap
// as events, and no password in any of them.
func checkSyntheticEvents(t *testing.T, events []storage.Event) {
	t.Helper()
	var connects []string
	for _, e := range events {
		if e.Kind == storage.EventClientConnect || e.Kind == storage.EventClientDisconnect {
			connects = append(connects, e.Kind+" "+e.Detail)
		}
		if strings.Contains(e.Detail, "secret-password") {
			t.Errorf("a password was stored: %s", e.Detail)
		}
	}
	joined := strings.Join(connects, "\n")
	for _, w := range []string{`client_connect {"client_id":"dev-1","username":"alice"`, `client_disconnect {"client_id":"dev-1","error":""`,
		`"client_id":"v5-dev","error":"connection closed without DISCONNECT"`, `"protocol":5`} {
		if !strings.Contains(joined, w) {
			t.Errorf("events lack %s:\n%s", w, joined)
		}
	}
}

// TestPcapFiles imports the tshark captures of real mosquitto traffic (see
// testdata/make-pcaps.sh), pcap and pcapng alike.
func TestPcapFiles(t *testing.T) {
	for _, name := range []string{"mqtt.pcapng", "mqtt.pcap"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			res, msgs, sessions, _, err := importString(t, in, Options{Port: 18830})
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != FormatPcap || res.Bad != 0 || len(msgs) != 57 {
				t.Fatalf("result %+v, %d messages", res, len(msgs))
			}
			byTopic := map[string][]storage.Message{}
			for _, m := range msgs {
				byTopic[m.Topic] = append(byTopic[m.Topic], m)
			}
			door := byTopic["home/door/state"]
			if len(door) != 2 || !door[0].Retain || door[0].QoS != 2 || string(door[0].Payload) != "open" ||
				!door[1].Retain || len(door[1].Payload) != 0 || door[0].ClientID != "door-2" {
				t.Errorf("door = %+v", door)
			}
			if f := byTopic["plant/line1/frame"]; len(f) != 1 || !bytes.Equal(f[0].Payload, []byte("PLC\x00\x01\x02\xff\xfe\x00")) || f[0].ClientID != "plc-7" {
				t.Errorf("binary frame = %+v", f)
			}
			if s := byTopic["cam/3/snapshot"]; len(s) != 1 || len(s[0].Payload) != 100000 {
				t.Errorf("snapshot: %d messages", len(s))
			}
			burst := byTopic["burst/n"]
			for i, m := range burst {
				if string(m.Payload) != fmt.Sprintf(`{"n":%d}`, i+1) || m.ClientID != "burst-9" {
					t.Fatalf("burst %d = %q", i, m.Payload)
				}
			}
			if len(burst) != 50 || len(byTopic["v5/alias/topic"]) != 1 || byTopic["v5/props"][0].ClientID != "v5-dev2" {
				t.Errorf("burst %d, v5 %+v", len(burst), byTopic["v5/props"])
			}
			if p := byTopic["v5/props"][0].Props; p == nil || p.ContentType != "text/plain" || p.MessageExpiry == nil || *p.MessageExpiry != 60 {
				t.Errorf("v5 properties = %+v", p)
			}
			if p := byTopic["v5/alias/topic"][0].Props; p == nil || fmt.Sprint(p.UserProperties) != "[{k v}]" {
				t.Errorf("v5 alias properties = %+v", p)
			}
			if sessions[0].Broker != "mqtt://127.0.0.1:18830" {
				t.Errorf("broker %q", sessions[0].Broker)
			}
		})
	}
}

// fakeSink collects what a decoder finds.
type fakeSink struct {
	msgs     []storage.Message
	problems []string
}

func (f *fakeSink) begin(context.Context, int64, string, int) error { return nil }
func (f *fakeSink) message(_ context.Context, m storage.Message) error {
	f.msgs = append(f.msgs, m)
	return nil
}
func (f *fakeSink) event(context.Context, string, string, int64) {}
func (f *fakeSink) problem(_ context.Context, where string, err error) {
	f.problems = append(f.problems, err.Error())
}
func (f *fakeSink) note(string) {}

// decodeSegments runs one client→broker stream through reassembly and
// decoding, cut into segments at the given points and delivered in the
// given order (then all of them again, as retransmissions). Message times
// are left out: they are the times of the segments that completed them.
func decodeSegments(data []byte, cuts []int, order []int) *fakeSink {
	sink := &fakeSink{}
	d := newPcapDecoder(context.Background(), sink, 1883)
	flow := gopacket.NewFlow(layers.EndpointIPv4, net.IP{10, 0, 0, 2}, net.IP{10, 0, 0, 1})
	at := time.Unix(1.7e9, 0)
	feed := func(seq uint32, payload []byte, syn bool) {
		at = at.Add(time.Millisecond)
		sb := gopacket.NewSerializeBuffer()
		gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true},
			&layers.TCP{SrcPort: 50000, DstPort: 1883, Seq: seq, SYN: syn, ACK: !syn}, gopacket.Payload(payload))
		tcp := &layers.TCP{}
		if err := tcp.DecodeFromBytes(sb.Bytes(), gopacket.NilDecodeFeedback); err != nil {
			panic(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(payload), Length: len(payload)}
		d.nowNS = at.UnixNano()
		d.asm.AssembleWithContext(flow, tcp, (*captureContext)(&ci))
	}
	feed(99, nil, true)
	var segs [][2]int
	prev := 0
	for _, c := range append(cuts, len(data)) {
		if c > prev && c <= len(data) {
			segs = append(segs, [2]int{prev, c})
			prev = c
		}
	}
	for _, i := range order {
		if i < len(segs) {
			sg := segs[i]
			feed(100+uint32(sg[0]), data[sg[0]:sg[1]], false)
		}
	}
	for _, sg := range segs { // anything the order left out
		feed(100+uint32(sg[0]), data[sg[0]:sg[1]], false)
	}
	d.finish()
	for i := range sink.msgs {
		sink.msgs[i].TimeNS = 0
	}
	return sink
}

// FuzzPcapStream checks that reassembly and decoding give the same
// messages however a stream of MQTT is cut into segments and reordered,
// and never panic on arbitrary bytes. (Where decoding must resynchronise,
// segment boundaries are among its clues, as in Wireshark: the results
// may differ.)
func FuzzPcapStream(f *testing.F) {
	f.Add(cat(connectPkt("c", 4, "u"), publishPkt(pubSpec{topic: "a", qos: 1, pid: 1, payload: []byte("x")}),
		publishPkt(pubSpec{topic: "b", payload: bytes.Repeat([]byte("y"), 300)})), uint16(7), uint16(40), uint8(3))
	f.Add(cat(connectPkt("v5", 5, ""), publishPkt(pubSpec{topic: "t", v5: true, alias: 1, payload: []byte("1")}),
		publishPkt(pubSpec{v5: true, alias: 1, props: true, payload: []byte("2")})), uint16(3), uint16(9), uint8(1))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, uint16(1), uint16(2), uint8(0))
	f.Add([]byte{0x16, 0x03, 0x01}, uint16(1), uint16(2), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, c1, c2 uint16, perm uint8) {
		whole := decodeSegments(data, nil, nil)
		cuts := []int{int(c1) % (len(data) + 1), int(c2) % (len(data) + 1)}
		if cuts[0] > cuts[1] {
			cuts[0], cuts[1] = cuts[1], cuts[0]
		}
		orders := [][]int{{0, 1, 2}, {2, 1, 0}, {1, 0, 2}, {0, 2, 1}}
		split := decodeSegments(data, cuts, orders[int(perm)%len(orders)])
		if len(whole.problems) == 0 && (!reflect.DeepEqual(whole.msgs, split.msgs) || len(split.problems) != 0) {
			t.Errorf("segmentation changed the result:\nwhole %v %v\nsplit %v %v", whole.msgs, whole.problems, split.msgs, split.problems)
		}
	})
}

func FuzzMQTTPackets(f *testing.F) {
	f.Add(connectPkt("c", 5, "u"))
	f.Add(connectPkt("c", 3, ""))
	f.Add(publishPkt(pubSpec{topic: "t", v5: true, alias: 2, props: true, qos: 2, pid: 5, payload: []byte("p")}))
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, flags, body, n, err := splitPacket(data)
		if err != nil {
			return
		}
		if n > len(data) || len(body) > n {
			t.Fatalf("split %d of %d bytes", n, len(data))
		}
		switch typ {
		case pktConnect:
			parseConnect(body)
		case pktPublish:
			for _, v := range []byte{4, 5} {
				if p, err := parsePublish(flags, body, v); err == nil && (p.qos > 2 || (p.topic == "" && p.alias == 0)) {
					t.Errorf("accepted %+v", p)
				}
			}
		}
	})
}

// FuzzPcapFile decodes arbitrary pcap and pcapng files (seeded with the
// captures in testdata and a synthetic one with every case): no panic,
// and every message it finds is a valid PUBLISH.
func FuzzPcapFile(f *testing.F) {
	for _, name := range []string{"mqtt.pcapng", "mqtt.pcap"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint16(18830))
	}
	b, _ := syntheticPcap(f)
	f.Add(b.buf.Bytes(), uint16(1883))
	f.Fuzz(func(t *testing.T, data []byte, port uint16) {
		sink := &fakeSink{}
		err := decodePcap(context.Background(), bufio.NewReader(bytes.NewReader(data)), sink, int(port))
		if err != nil && len(sink.msgs) > 0 {
			t.Fatalf("messages and an error: %v", err)
		}
		for _, m := range sink.msgs {
			if m.QoS > 2 || topic.ValidateName(m.Topic) != nil {
				t.Fatalf("decoded an invalid PUBLISH: %+v", m)
			}
		}
	})
}
