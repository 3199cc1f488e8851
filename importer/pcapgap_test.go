package importer

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// gapCapture writes one MQTT connection of n QoS 1 PUBLISHes, cut into
// segments of 30 to 150 bytes (several packets in one, one packet over
// several, as on loopback), each answered by the broker, and returns the
// capture and the byte range each message occupies in the stream. Segments
// whose index is in drop are left out of the capture (lost frames); the
// segment at snap is written cut to 80 bytes (longer than the snap length).
func gapCapture(t testing.TB, n int, drop map[int]bool, snap int) (*pcapBuilder, [][2]int, [][2]int) {
	b := newPcap(t)
	c := b.conn("10.0.0.2", "10.0.0.1", 50001, 1883)
	c.syn()
	c.send(connectPkt("gappy", 4, ""))
	c.reply([]byte{0x20, 2, 0, 0}) // CONNACK
	var stream []byte
	var spans [][2]int
	for i := range n {
		p := publishPkt(pubSpec{topic: fmt.Sprintf("plant/line%d/temp", i%7), qos: 1, pid: uint16(i + 1),
			payload: fmt.Appendf(nil, `{"n":%d,"v":"%s"}`, i, strings.Repeat("x", 40+i%60))})
		spans = append(spans, [2]int{len(stream), len(stream) + len(p)})
		stream = append(stream, p...)
	}
	rng := rand.New(rand.NewPCG(15, 2026))
	var lost [][2]int
	for off, k := 0, 0; off < len(stream); k++ {
		size := min(30+rng.IntN(121), len(stream)-off)
		seg := stream[off : off+size]
		switch {
		case drop[k]:
			lost = append(lost, [2]int{off, off + size})
		case k == snap:
			lost = append(lost, [2]int{off, off + size})
			b.write(c.src, c.dst, c.sport, c.dport, c.seq, false, false, false, seg, 80)
		default:
			c.seg(c.seq, seg)
		}
		c.seq += uint32(size)
		off += size
		c.reply([]byte{0x40, 2, byte((k + 1) >> 8), byte(k + 1)}) // a PUBACK
	}
	c.fin()
	return b, spans, lost
}

// decodable counts the messages none of whose bytes were lost: what
// decoding that resumes at the next whole packet after each gap gets.
func decodable(spans, lost [][2]int) (n int, want map[string]bool) {
	want = map[string]bool{}
	for i, s := range spans {
		ok := true
		for _, l := range lost {
			ok = ok && (s[1] <= l[0] || s[0] >= l[1])
		}
		if ok {
			n++
			want[fmt.Sprintf(`{"n":%d,`, i)] = true
		}
	}
	return n, want
}

// TestPcapLostSegments: two frames cut out of a capture of some 4,900
// frames, or one frame longer than the snap length, cost the messages in
// them and nothing else: decoding resumes at the next whole MQTT packet,
// messages keep their times and order, and each gap is one counted problem.
func TestPcapLostSegments(t *testing.T) {
	for _, tc := range []struct {
		name string
		drop map[int]bool
		snap int
		want string
	}{
		{"two frames lost", map[int]bool{500: true, 1100: true}, -1, "bytes missing from the capture"},
		{"a frame longer than the snap length", nil, 800, "snap length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, spans, lost := gapCapture(t, 2000, tc.drop, tc.snap)
			wantN, want := decodable(spans, lost)
			res, msgs, _, _, err := importString(t, b.buf.Bytes(), Options{Format: FormatPcap})
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != wantN || wantN < 1990 {
				t.Errorf("imported %d messages, want the %d of 2000 not touched by a lost frame", len(msgs), wantN)
			}
			for i, m := range msgs {
				key := strings.SplitAfter(string(m.Payload), ",")[0]
				if !want[key] || m.ClientID != "gappy" || m.QoS != 1 {
					t.Fatalf("message %d: %q from %q", i, m.Payload, m.ClientID)
				}
				delete(want, key)
			}
			t.Logf("%d frames; imported %d of 2000 messages; problems %v", b.frames, len(msgs), res.Problems)
			if res.Clamped != 0 {
				t.Errorf("%d messages were out of time order", res.Clamped)
			}
			gaps := 0
			for _, p := range res.Problems {
				if strings.Contains(p.String(), "bytes missing from the capture") {
					gaps++
				}
			}
			if gaps != len(lost) || !strings.Contains(fmt.Sprint(res.Problems), tc.want) {
				t.Errorf("problems (%d bad): %v", res.Bad, res.Problems)
			}
		})
	}
}

// TestPcapHugeRecord: a damaged record header claiming 2 GiB (in a file
// whose snap length allows it) is reported at once, without allocating it;
// the packets before it are imported.
func TestPcapHugeRecord(t *testing.T) {
	b, _ := syntheticPcap(t)
	data := append([]byte{}, b.buf.Bytes()...)
	binary.LittleEndian.PutUint32(data[16:], 0xffffffff) // snap length
	rec := make([]byte, 16)
	binary.LittleEndian.PutUint32(rec[8:], 0x7fffffff)
	binary.LittleEndian.PutUint32(rec[12:], 0x7fffffff)
	data = append(append(data, rec...), "short"...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, msgs, _, _, err := importString(t, data, Options{Format: FormatPcap})
	runtime.ReadMemStats(&after)
	if err != nil || len(msgs) != 7 || !strings.Contains(fmt.Sprint(res.Problems), "a packet record of 2147483647 bytes") {
		t.Errorf("%v, %d messages, problems %v", err, len(msgs), res.Problems)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
		t.Errorf("allocated %d MiB", grew>>20)
	}
}
