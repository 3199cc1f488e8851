package mcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
)

// A reader of just what the tests check, written from the specification:
// records are <opcode uint8><length uint64><body>; integers little endian;
// strings and maps and arrays carry a uint32 byte length.

type record struct {
	op     byte
	offset int // of the opcode, from the start of the file
	body   []byte
}

func records(t *testing.T, b []byte, base int) []record {
	t.Helper()
	var rs []record
	for off := 0; off < len(b); {
		if len(b)-off < 9 {
			t.Fatalf("record at %d: %d bytes left, no room for a record header", base+off, len(b)-off)
		}
		n := binary.LittleEndian.Uint64(b[off+1:])
		if n > uint64(len(b)-off-9) {
			t.Fatalf("record 0x%02x at %d: length %d past the end", b[off], base+off, n)
		}
		rs = append(rs, record{b[off], base + off, b[off+9 : off+9+int(n)]})
		off += 9 + int(n)
	}
	return rs
}

type fields struct {
	b   []byte
	err error
}

func (f *fields) take(n int) []byte {
	if f.err == nil && len(f.b) < n {
		f.err = fmt.Errorf("record too short")
	}
	if f.err != nil {
		return make([]byte, n)
	}
	v := f.b[:n]
	f.b = f.b[n:]
	return v
}
func (f *fields) u16() uint16       { return binary.LittleEndian.Uint16(f.take(2)) }
func (f *fields) u32() uint32       { return binary.LittleEndian.Uint32(f.take(4)) }
func (f *fields) u64() uint64       { return binary.LittleEndian.Uint64(f.take(8)) }
func (f *fields) str() string       { return string(f.take(int(f.u32()))) }
func (f *fields) prefixed() *fields { return &fields{b: f.take(int(f.u32()))} }

// file is an MCAP file taken apart.
type file struct {
	header, footer fields
	data           []record // the data section, Data End last
	summary        []record
	offsets        []record
	chunkRecords   map[int][]record // the records inside each chunk, by chunk offset
}

// parse checks the framing, the CRCs and the footer's offsets.
func parse(t *testing.T, b []byte) file {
	t.Helper()
	if !bytes.HasPrefix(b, Magic) || !bytes.HasSuffix(b, Magic) || len(b) < 2*len(Magic)+9+29 {
		t.Fatalf("no magic at both ends (%d bytes)", len(b))
	}
	all := records(t, b[len(Magic):len(b)-len(Magic)], len(Magic))
	var f file
	f.chunkRecords = map[int][]record{}
	if all[0].op != OpHeader || all[len(all)-1].op != OpFooter {
		t.Fatalf("first record 0x%02x, last 0x%02x: want Header and Footer", all[0].op, all[len(all)-1].op)
	}
	f.header = fields{b: all[0].body}
	foot := all[len(all)-1]
	f.footer = fields{b: foot.body}
	summaryStart, offsetStart, summaryCRC := f.footer.u64(), f.footer.u64(), f.footer.u32()
	end := 0
	for i, r := range all {
		if r.op == OpDataEnd {
			end = i
			break
		}
	}
	if end == 0 {
		t.Fatal("no Data End record")
	}
	f.data = all[1 : end+1]
	dataEnd := all[end]
	if got, want := binary.LittleEndian.Uint32(dataEnd.body), crc32.ChecksumIEEE(b[:dataEnd.offset]); got != want {
		t.Errorf("data section CRC %08x, want %08x", got, want)
	}
	if summaryStart != uint64(dataEnd.offset+9+len(dataEnd.body)) {
		t.Errorf("summary_start %d, Data End ends at %d", summaryStart, dataEnd.offset+9+len(dataEnd.body))
	}
	if want := crc32.ChecksumIEEE(b[summaryStart : foot.offset+9+16]); summaryCRC != want {
		t.Errorf("summary CRC %08x, want %08x", summaryCRC, want)
	}
	for _, r := range all[end+1 : len(all)-1] {
		if uint64(r.offset) < offsetStart {
			f.summary = append(f.summary, r)
		} else {
			f.offsets = append(f.offsets, r)
		}
	}
	for _, r := range f.data {
		if r.op == OpChunk {
			f.chunkRecords[r.offset] = chunkContents(t, r)
		}
	}
	return f
}

// chunkContents checks a chunk's sizes and CRC and returns its records
// (this test writes uncompressed chunks).
func chunkContents(t *testing.T, r record) []record {
	t.Helper()
	c := fields{b: r.body}
	c.u64()
	c.u64()
	size, crc, compression := c.u64(), c.u32(), c.str()
	recs := c.take(int(c.u64()))
	if c.err != nil || compression != "" || uint64(len(recs)) != size || crc32.ChecksumIEEE(recs) != crc {
		t.Fatalf("chunk at %d: %v, compression %q, size %d of %d, crc %08x of %08x", r.offset, c.err, compression,
			len(recs), size, crc32.ChecksumIEEE(recs), crc)
	}
	return records(t, recs, 0)
}

func writeTest(t *testing.T, chunkSize int, msgs []Message) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{Library: "test", ChunkSize: chunkSize})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddSchema(Schema{ID: 1, Name: "s", Encoding: "jsonschema", Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	for i, topic := range []string{"a/b", "ферма/🌡", "unused"} {
		c := Channel{ID: uint16(i), Topic: topic, MessageEncoding: "json", Metadata: map[string]string{"qos": "1", "k": topic}}
		if i == 1 {
			c.SchemaID = 1
		}
		if err := w.AddChannel(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range msgs {
		if err := w.WriteMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessage(msgs[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	return buf.Bytes()
}

// TestWriterAgainstSpec writes messages on two channels over several
// chunks and checks every record the specification asks for: the Header,
// chunk CRCs and sizes, that each Message Index entry points at a Message
// with that log time, the Chunk Indexes (offsets, lengths, message index
// offsets), Statistics, the summary grouped by opcode with a Summary Offset
// per group, Data End's CRC and the Footer's.
func TestWriterAgainstSpec(t *testing.T) {
	var msgs []Message
	for i := range 100 {
		msgs = append(msgs, Message{ChannelID: uint16(i % 2), Sequence: uint32(i), LogTime: 1e18 + uint64(i)*1e6,
			PublishTime: 1e18 + uint64(i)*1e6, Data: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	b := writeTest(t, 1000, msgs)
	f := parse(t, b)
	if profile, library := f.header.str(), f.header.str(); profile != "" || library != "test" {
		t.Errorf("header %q %q", profile, library)
	}
	var seen []Message
	chunks := map[int]bool{}
	for _, r := range f.data {
		switch r.op {
		case OpChunk:
			chunks[r.offset] = true
			for _, cr := range f.chunkRecords[r.offset] {
				if cr.op == OpMessage {
					m := fields{b: cr.body}
					seen = append(seen, Message{ChannelID: m.u16(), Sequence: m.u32(), LogTime: m.u64(), PublishTime: m.u64(), Data: m.b})
				}
			}
		case OpMessageIndex, OpDataEnd:
		default:
			t.Errorf("record 0x%02x in the data section outside a chunk", r.op)
		}
	}
	if len(seen) != len(msgs) || len(chunks) < 3 {
		t.Fatalf("%d messages in %d chunks, want %d in several", len(seen), len(chunks), len(msgs))
	}
	for i := range msgs {
		if fmt.Sprint(seen[i]) != fmt.Sprint(msgs[i]) {
			t.Fatalf("message %d: %v, want %v", i, seen[i], msgs[i])
		}
	}
	checkChunkIndexes(t, b, f, chunks)
	checkSummary(t, f, len(chunks))
}

func checkChunkIndexes(t *testing.T, b []byte, f file, chunks map[int]bool) {
	t.Helper()
	n := 0
	for _, r := range f.summary {
		if r.op != OpChunkIndex {
			continue
		}
		n++
		c := fields{b: r.body}
		start, end, off, length := c.u64(), c.u64(), c.u64(), c.u64()
		idx := c.prefixed()
		indexLength, compression, compressed, uncompressed := c.u64(), c.str(), c.u64(), c.u64()
		if !chunks[int(off)] || b[off] != OpChunk || length != 9+binary.LittleEndian.Uint64(b[off+1:]) {
			t.Fatalf("chunk index: offset %d length %d is not a chunk record", off, length)
		}
		inner := f.chunkRecords[int(off)]
		ch := fields{b: b[off+9:]}
		if cs, ce := ch.u64(), ch.u64(); cs != start || ce != end || compression != "" || compressed != uncompressed {
			t.Errorf("chunk index times %d-%d, chunk %d-%d; compression %q %d/%d", start, end, cs, ce, compression, compressed, uncompressed)
		}
		var total uint64
		for len(idx.b) > 0 {
			id, at := idx.u16(), idx.u64()
			mi := records(t, b[at:at+9+binary.LittleEndian.Uint64(b[at+1:])], int(at))[0]
			m := fields{b: mi.body}
			total += 9 + uint64(len(mi.body))
			if mi.op != OpMessageIndex || m.u16() != id {
				t.Fatalf("message index of channel %d at %d: record 0x%02x", id, at, mi.op)
			}
			entries := m.prefixed()
			for len(entries.b) > 0 {
				logTime, recOff := entries.u64(), entries.u64()
				msg := findRecord(inner, int(recOff))
				mf := fields{b: msg.body}
				if msg.op != OpMessage || mf.u16() != id || func() uint64 { mf.u32(); return mf.u64() }() != logTime {
					t.Fatalf("index entry (%d, %d) of channel %d: not its message", logTime, recOff, id)
				}
			}
		}
		if total != indexLength || off+length+indexLength > uint64(len(b)) {
			t.Errorf("message_index_length %d, the records add up to %d", indexLength, total)
		}
	}
	if n != len(chunks) {
		t.Errorf("%d chunk indexes for %d chunks", n, len(chunks))
	}
}

func findRecord(rs []record, off int) record {
	for _, r := range rs {
		if r.offset == off {
			return r
		}
	}
	return record{}
}

func checkSummary(t *testing.T, f file, chunks int) {
	t.Helper()
	// Grouped by opcode, each group named by one Summary Offset.
	var groups []byte
	for i, r := range f.summary {
		if i == 0 || f.summary[i-1].op != r.op {
			groups = append(groups, r.op)
		}
	}
	if want := []byte{OpSchema, OpChannel, OpStatistics, OpChunkIndex}; !bytes.Equal(groups, want) {
		t.Errorf("summary groups % x, want % x", groups, want)
	}
	if len(f.offsets) != len(groups) {
		t.Fatalf("%d summary offsets for %d groups", len(f.offsets), len(groups))
	}
	for i, r := range f.offsets {
		o := fields{b: r.body}
		op, start, length := o.take(1)[0], o.u64(), o.u64()
		var first, size int
		first = -1
		for _, s := range f.summary {
			if s.op == op {
				if first < 0 {
					first = s.offset
				}
				size += 9 + len(s.body)
			}
		}
		if r.op != OpSummaryOffset || op != groups[i] || uint64(first) != start || uint64(size) != length {
			t.Errorf("summary offset %d: op %02x at %d+%d, group at %d+%d", i, op, start, length, first, size)
		}
	}
	for _, r := range f.summary {
		switch r.op {
		case OpChannel:
			c := fields{b: r.body}
			id, schema, topic, enc := c.u16(), c.u16(), c.str(), c.str()
			meta := c.prefixed()
			k, v, k2, v2 := meta.str(), meta.str(), meta.str(), meta.str()
			if id > 1 || (schema == 1) != (id == 1) || enc != "json" || k != "k" || v != topic || k2 != "qos" || v2 != "1" {
				t.Errorf("channel %d schema %d %q %q %s=%s %s=%s", id, schema, topic, enc, k, v, k2, v2)
			}
		case OpStatistics:
			s := fields{b: r.body}
			n, schemas, channels, att, meta, nChunks, start, end := s.u64(), s.u16(), s.u32(), s.u32(), s.u32(), s.u32(), s.u64(), s.u64()
			counts := s.prefixed()
			c0, n0, c1, n1 := counts.u16(), counts.u64(), counts.u16(), counts.u64()
			if n != 100 || schemas != 1 || channels != 2 || att != 0 || meta != 0 || int(nChunks) != chunks ||
				start != 1e18 || end != 1e18+99e6 || c0 != 0 || n0 != 50 || c1 != 1 || n1 != 50 {
				t.Errorf("statistics: %d messages, %d schemas, %d channels, %d chunks, %d-%d, counts %d:%d %d:%d",
					n, schemas, channels, nChunks, start, end, c0, n0, c1, n1)
			}
		}
	}
}

// TestEmptyFile: without messages, a valid file with a summary (zero
// statistics) and no chunks.
func TestEmptyFile(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f := parse(t, buf.Bytes())
	if len(f.data) != 1 || len(f.summary) != 1 || f.summary[0].op != OpStatistics || len(f.offsets) != 1 {
		t.Errorf("data %v, summary %v", f.data, f.summary)
	}
}

// TestCompressedChunk: the chunk says its compression, its CRC is of the
// uncompressed records, and its sizes are both.
func TestCompressedChunk(t *testing.T) {
	var buf bytes.Buffer
	reverse := func(dst, src []byte) []byte { // a stand-in codec: any bytes do
		for i := len(src) - 1; i >= 0; i-- {
			dst = append(dst, src[i])
		}
		return dst
	}
	w, err := NewWriter(&buf, Options{Compression: "x-reverse", Compress: reverse})
	if err != nil {
		t.Fatal(err)
	}
	w.AddChannel(Channel{ID: 7, Topic: "t", MessageEncoding: "json"})
	w.WriteMessage(Message{ChannelID: 7, LogTime: 5, PublishTime: 5, Data: []byte(`{}`)})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	rs := records(t, b[8:len(b)-8], 8)
	c := fields{b: rs[1].body}
	start, end, size, crc, compression := c.u64(), c.u64(), c.u64(), c.u32(), c.str()
	data := c.take(int(c.u64()))
	plain := reverse(nil, data)
	if rs[1].op != OpChunk || start != 5 || end != 5 || compression != "x-reverse" || size != uint64(len(plain)) ||
		crc != crc32.ChecksumIEEE(plain) || records(t, plain, 0)[0].op != OpChannel {
		t.Errorf("chunk: %d-%d %q size %d crc %08x", start, end, compression, size, crc)
	}
	if _, err := NewWriter(&buf, Options{Compression: "zstd"}); err == nil {
		t.Error("zstd without a Compress function: no error")
	}
}

// FuzzWriter: any topics, metadata and payloads, any chunk size, give a
// file whose every offset, length and CRC is what the specification says,
// with every message back in order.
func FuzzWriter(f *testing.F) {
	f.Add("a/b", "k", []byte(`{"x":1}`), uint16(3), uint16(100))
	f.Add("", "", []byte{}, uint16(0), uint16(1))
	f.Add("ферма/🌡", "\x00", []byte{0xff, 0, '\n'}, uint16(40), uint16(9))
	f.Fuzz(func(t *testing.T, topic, meta string, payload []byte, n, chunkSize uint16) {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, Options{Library: meta, ChunkSize: int(chunkSize)})
		if err != nil {
			t.Fatal(err)
		}
		for id := range uint16(3) {
			w.AddChannel(Channel{ID: id, Topic: topic + string(rune('a'+id)), MessageEncoding: "json", Metadata: map[string]string{meta: topic}})
		}
		var want []Message
		for i := range n % 64 {
			m := Message{ChannelID: i % 3, Sequence: uint32(i), LogTime: uint64(i) * 7 % 50, PublishTime: uint64(i), Data: payload[:int(i)%(len(payload)+1)]}
			want = append(want, m)
			if err := w.WriteMessage(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		file := parse(t, buf.Bytes())
		var got []Message
		for _, r := range file.data {
			for _, cr := range file.chunkRecords[r.offset] {
				if cr.op == OpMessage {
					m := fields{b: cr.body}
					got = append(got, Message{ChannelID: m.u16(), Sequence: m.u32(), LogTime: m.u64(), PublishTime: m.u64(), Data: m.b})
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("messages %v, want %v", got, want)
		}
		chunks := map[int]bool{}
		for off := range file.chunkRecords {
			chunks[off] = true
		}
		checkChunkIndexes(t, buf.Bytes(), file, chunks)
	})
}
