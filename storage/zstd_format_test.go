package storage

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// blockFixture is telemetry (more than a dictionary is trained on), then
// payloads whose zstd frames hold each kind of block: several blocks (200
// KiB of text), a raw block (128 KiB of noise) before a compressed one, RLE
// blocks (200 KiB of zeros, 100 bytes of one letter), and an empty
// payload, a small binary one, then telemetry again.
func blockFixture() []Message {
	f := &payloadMix{r: rand.New(rand.NewPCG(11, 12))}
	f.telemetry(trainMessages+100, 10, 0)
	text := bytes.Repeat([]byte(`{"frame":"0123456789abcdef"}`), (200<<10)/28+1)[:200<<10]
	f.add("empty", []byte{})
	f.add("bin", f.noise(100))
	f.add("blocks/text", text)
	f.add("blocks/raw", append(f.noise(128<<10), text[:64<<10]...))
	f.add("blocks/rle", make([]byte, 200<<10))
	f.add("rle/small", bytes.Repeat([]byte("a"), 100))
	f.telemetry(100, 10, trainMessages+100)
	return f.msgs
}

// v5Fixture is a capture of blockFixture's messages compressed by format
// 5 (whole zstd frames), made by mqtape before format 6: blockFixture as
// JSON lines (ts_ns, offset_ns, topic, qos, packet_id 1 for QoS 1 and 2,
// payload_b64), `mqtape import` into a plain capture, then
// `mqtape cut --compress` of that into this file.
const v5Fixture = "testdata/compressed-v5.db"

// blockKinds lists the kinds of the blocks of a whole frame (0 raw, 1
// RLE, 2 compressed), or fails.
func blockKinds(t *testing.T, frame []byte) []int {
	t.Helper()
	var h zstd.Header
	if err := h.Decode(frame); err != nil {
		t.Fatalf("not a zstd frame: %v", err)
	}
	stored := frame[h.HeaderSize:]
	var kinds []int
	for len(stored) > 0 {
		if len(stored) < 3 {
			t.Fatalf("%d bytes left after the blocks", len(stored))
		}
		h := int(stored[0]) | int(stored[1])<<8 | int(stored[2])<<16
		kind, size := h>>1&3, h>>3
		kinds = append(kinds, kind)
		n := size // raw, compressed: size bytes follow; RLE: one
		if kind == 1 {
			n = 1
		}
		if len(stored) < 3+n {
			t.Fatalf("block of %d bytes, %d left", n, len(stored)-3)
		}
		stored = stored[3+n:]
		if h&1 == 1 && len(stored) > 0 {
			t.Fatalf("%d bytes after the last block", len(stored))
		}
	}
	return kinds
}

// storedRows returns topic → the stored payload of the compressed rows
// of the capture at path, read as sqlite3 would.
func storedRows(t *testing.T, path string) map[string][][]byte {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT t.name, m.payload FROM messages m JOIN topics t ON t.id = m.topic_id WHERE m.zstd_dict IS NOT NULL ORDER BY m.seq")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][][]byte{}
	for rows.Next() {
		var topic string
		var p []byte
		if err := rows.Scan(&topic, &p); err != nil {
			t.Fatal(err)
		}
		out[topic] = append(out[topic], p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCompressedBlocks: format 6 stores a payload whose zstd frame is one
// compressed block as the block's content alone (no magic number, no
// headers), and every other frame whole — several blocks, a raw block, RLE
// blocks, and a block whose content begins with the magic number (raw
// literals b5 2f fd …) — and every read path gives back each payload as
// published: Page, Messages, MessagesBySeq, Get, Payload (the SQL
// function), a payload search, and the view zstd_frames, whose frames the
// zstd format decodes with the capture's dictionary.
func TestCompressedBlocks(t *testing.T) {
	msgs := blockFixture()
	// A payload of 5 literals then a match of the dictionary's last
	// sample: its block begins with the literals' header 28, then b5 2f fd.
	magic := append([]byte{0xb5, 0x2f, 0xfd, 1, 2}, msgs[trainMessages-1].Payload...)
	msgs = append(msgs, Message{TimeNS: 2e18, OffsetNS: 1e18, Topic: "magic", Payload: magic})
	path := filepath.Join(t.TempDir(), "blocks.db")
	writeZip(t, path, msgs, true)

	stored := storedRows(t, path)
	for topic, ps := range stored {
		for _, p := range ps {
			whole := bytes.HasPrefix(p, frameMagic)
			if strings.HasPrefix(topic, "dev/") == whole {
				t.Fatalf("%s: whole frame %v, want only the block's content for telemetry", topic, whole)
			}
			if !whole {
				if kinds := blockKinds(t, append(blockHeaders(1, 1, len(p)), p...)); !slices.Equal(kinds, []int{2}) {
					t.Fatalf("%s: blocks %v", topic, kinds)
				}
			}
		}
	}
	if len(stored["dev/0/telemetry"]) < 10 {
		t.Errorf("%d telemetry rows of dev/0 compressed", len(stored["dev/0/telemetry"]))
	}
	for topic, want := range map[string]func(k []int) bool{
		"blocks/text": func(k []int) bool { return len(k) > 1 },
		"blocks/raw":  func(k []int) bool { return slices.Contains(k, 0) && slices.Contains(k, 2) },
		"blocks/rle":  func(k []int) bool { return slices.Contains(k, 1) },
		"rle/small":   func(k []int) bool { return slices.Equal(k, []int{1}) },
		"magic":       func(k []int) bool { return slices.Equal(k, []int{2}) },
	} {
		if len(stored[topic]) != 1 || !want(blockKinds(t, stored[topic][0])) {
			t.Errorf("%s: stored %d rows compressed, blocks %v", topic, len(stored[topic]), blockKinds(t, stored[topic][0]))
		}
	}
	var h zstd.Header
	if f := stored["magic"][0]; h.Decode(f) != nil || !bytes.HasPrefix(f[h.HeaderSize+3:], frameMagic) {
		t.Errorf("the magic payload's block does not begin with the magic number: % x", f)
	}
	readsBack(t, path, msgs)
}

// readsBack checks that every read path of the capture at path gives
// msgs' payloads, and that zstd_frames' frames decode to them.
func readsBack(t *testing.T, path string, msgs []Message) {
	t.Helper()
	ctx := context.Background()
	c := openRead(t, path)
	got, err := c.Page(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	samePayloads(t, got, msgs)
	var it, bySeq []Message
	var seqs []int64
	for m, err := range c.Messages(ctx, Query{}) {
		if err != nil {
			t.Fatal(err)
		}
		it = append(it, m)
		seqs = append(seqs, m.Seq)
	}
	samePayloads(t, it, msgs)
	for m, err := range c.MessagesBySeq(ctx, seqs) {
		if err != nil {
			t.Fatal(err)
		}
		bySeq = append(bySeq, m)
	}
	samePayloads(t, bySeq, msgs)
	for i, seq := range seqs {
		m, err := c.Get(ctx, seq)
		if err != nil || !bytes.Equal(m.Payload, msgs[i].Payload) {
			t.Fatalf("Get(%d): %d bytes, %v", seq, len(m.Payload), err)
		}
		err = c.Payload(ctx, seq, func(p []byte) error {
			if !bytes.Equal(p, msgs[i].Payload) {
				return fmt.Errorf("%d bytes, want %d", len(p), len(msgs[i].Payload))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Payload(%d): %v", seq, err)
		}
	}
	if n, err := c.Count(ctx, Query{PayloadContains: [][]byte{[]byte(`"frame":"0123`)}}); err != nil || n != 2 {
		t.Errorf("payload search: %d, %v; want the text and raw-block payloads", n, err)
	}
	if c.Version() >= 6 {
		zstdFrames(t, path, seqs, msgs)
	}
}

// zstdFrames checks, as a sqlite3 user would, that zstd_frames gives a
// zstd frame for every compressed row, which decompresses with the
// capture's dictionary to the payload as published.
func zstdFrames(t *testing.T, path string, seqs []int64, msgs []Message) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dicts [][]byte
	rows, err := db.Query("SELECT dict FROM zstd_dicts")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var d []byte
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		dicts = append(dicts, d)
	}
	rows.Close()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderDicts(dicts...))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	want := map[int64][]byte{}
	for i, seq := range seqs {
		want[seq] = msgs[i].Payload
	}
	rows, err = db.Query("SELECT seq, typeof(frame), frame FROM zstd_frames")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq int64
		var kind string
		var frame []byte
		if err := rows.Scan(&seq, &kind, &frame); err != nil {
			t.Fatal(err)
		}
		out, err := dec.DecodeAll(frame, nil)
		if kind != "blob" || err != nil || !bytes.Equal(out, want[seq]) {
			t.Fatalf("zstd_frames seq %d: a %s that decodes to %d bytes (%v), want %d", seq, kind, len(out), err, len(want[seq]))
		}
		n++
	}
	if err := rows.Err(); err != nil || n == 0 {
		t.Fatalf("zstd_frames: %d frames, %v", n, err)
	}
}

// TestCompressedV5Capture: a capture of format 5 (whole zstd frames)
// reads exactly as it was written, and stays readable when a compressed
// session is appended to it: the file moves to format 6, its old rows keep
// their frames byte for byte, the new ones hold a block's content,
// zstd_frames gives frames of both.
func TestCompressedV5Capture(t *testing.T) {
	msgs := blockFixture()
	old := openRead(t, v5Fixture)
	if old.Version() != 5 {
		t.Fatalf("%s is format %d, want 5", v5Fixture, old.Version())
	}
	readsBack(t, v5Fixture, msgs)
	for topic, ps := range storedRows(t, v5Fixture) {
		for _, p := range ps {
			if !bytes.HasPrefix(p, frameMagic) {
				t.Fatalf("%s: a format 5 row without a whole frame", topic)
			}
		}
	}

	path := filepath.Join(t.TempDir(), "v5.db")
	copyFile(t, v5Fixture, path)
	const frames = "SELECT group_concat(hex(payload), ' ') FROM (SELECT payload FROM messages WHERE zstd_dict IS NOT NULL AND session = 1 ORDER BY seq)"
	before := rawText(t, path, frames)
	more := msgs[:300]
	writeZip(t, path, more, true)
	c := openRead(t, path)
	if c.Version() != FormatVersion {
		t.Errorf("appending made format %d, want %d", c.Version(), FormatVersion)
	}
	if after := rawText(t, path, frames); after != before {
		t.Errorf("the format 5 rows changed: %s, were %s", after, before)
	}
	if n := rawInt(t, path, "SELECT count(*) FROM messages WHERE session = 2 AND zstd_dict IS NOT NULL AND substr(payload, 1, 4) != X'28B52FFD'"); n != int64(len(more)) {
		t.Errorf("%d of the %d appended messages stored as a block's content", n, len(more))
	}
	readsBack(t, path, append(slices.Clip(msgs), more...))
}

// rawText returns one value SQLite computes on the file, as text.
func rawText(t *testing.T, path, query string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRow(query).Scan(&s); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return s
}

// BenchmarkZstdPayload compresses ~130-byte JSON telemetry one payload at
// a time as a compressing session stores it (format 6: the frame's blocks),
// with a dictionary of each size trained on each number of payloads, at
// each encoder level, and reports the bytes stored and the CPU per payload
// (compressing, and decompressing as readers do); and the bytes per
// payload when 10 or 100 payloads are compressed together:
//
//	go test ./storage -run X -bench ZstdPayload -benchtime 3x
func BenchmarkZstdPayload(b *testing.B) {
	const measured = 10_000
	r := rand.New(rand.NewPCG(9, 10))
	payloads := make([][]byte, 5000+measured)
	for i := range payloads {
		payloads[i] = telemetry(r, i%10, i/10)
	}
	levels := map[zstd.EncoderLevel]string{zstd.SpeedFastest: "fastest", zstd.SpeedDefault: "default", zstd.SpeedBetterCompression: "better"}
	for _, d := range []struct{ samples, history int }{{1000, dictHistory}, {200, 16 << 10}, {5000, 16 << 10}, {1000, 4 << 10}, {1000, 64 << 10}, {5000, 64 << 10}} {
		dict, err := trainDict(1, payloads[:d.samples], d.history)
		if err != nil {
			b.Fatal(err)
		}
		dec, err := newDecoder(1, dict)
		if err != nil {
			b.Fatal(err)
		}
		k := &codec{decoders: map[int64]*zstd.Decoder{1: dec}, bad: map[int64]error{}}
		for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression} {
			b.Run(fmt.Sprintf("samples=%d/dict=%dKiB/level=%s", d.samples, d.history>>10, levels[level]), func(b *testing.B) {
				enc, err := newEncoder(dict, level)
				if err != nil {
					b.Fatal(err)
				}
				z := &compressor{dict: 1, enc: enc}
				stored := make([][]byte, measured)
				var bytes int
				var encode, decode time.Duration
				for b.Loop() {
					bytes = 0
					start := cpuTime()
					for i, p := range payloads[5000:] {
						stored[i], _, _ = z.compress(p)
						bytes += len(stored[i])
					}
					encode += cpuTime() - start
					start = cpuTime()
					for i, s := range stored {
						if _, err := k.decode(1, int64(len(payloads[5000+i])), 1, s); err != nil {
							b.Fatal(err)
						}
					}
					decode += cpuTime() - start
				}
				perPayload := float64(b.N * measured)
				b.ReportMetric(float64(bytes)/measured, "stored-B/payload")
				b.ReportMetric(float64(encode.Nanoseconds())/1e3/perPayload, "encode-µs/payload")
				b.ReportMetric(float64(decode.Nanoseconds())/1e3/perPayload, "decode-µs/payload")
				b.ReportMetric(0, "ns/op")
			})
		}
		if d.samples != 1000 || d.history != dictHistory {
			continue
		}
		// What one row per payload rules out: payloads compressed
		// together, n to a frame (headers included).
		for _, n := range []int{10, 100} {
			b.Run(fmt.Sprintf("samples=%d/dict=%dKiB/together=%d", d.samples, d.history>>10, n), func(b *testing.B) {
				enc, err := newEncoder(dict, encoderLevel)
				if err != nil {
					b.Fatal(err)
				}
				var bytes int
				for b.Loop() {
					bytes = 0
					for i := 5000; i+n <= len(payloads); i += n {
						bytes += len(enc.EncodeAll(slices.Concat(payloads[i:i+n]...), nil))
					}
				}
				b.ReportMetric(float64(bytes)/measured, "stored-B/payload")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
