package storage

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// telemetry is message i of device d: JSON telemetry of about 130 bytes
// whose readings vary as a sensor's do.
func telemetry(r *rand.Rand, d, i int) []byte {
	return fmt.Appendf(nil, `{"device":"dev-%03d","ts":%d,"seq":%d,"temp":%.2f,"humidity":%.1f,"battery":%d,"rssi":%d,"status":"ok"}`,
		d, 1764767531000+int64(i)*1000+int64(d), i, 20+r.NormFloat64(), 40+r.Float64()*10, 100-i/500, -40-r.IntN(40))
}

// zipFixture is a mix of payloads: JSON telemetry (more than a dictionary
// is trained on), then empty, binary noise, a 1 MiB payload of text and
// one of noise, then telemetry again.
func zipFixture() []Message {
	f := &payloadMix{r: rand.New(rand.NewPCG(1, 2))}
	f.telemetry(trainMessages+200, 20, 0)
	f.add("empty", []byte{})
	f.add("bin", f.noise(1024))
	f.add("big/text", bytes.Repeat([]byte(`{"frame":"0123456789abcdef"}`), (1<<20)/28+1)[:1<<20])
	f.add("big/noise", f.noise(1<<20))
	f.telemetry(300, 20, trainMessages+200)
	return f.msgs
}

// payloadMix builds test messages: each one's time, offset and QoS come from
// its index.
type payloadMix struct {
	r    *rand.Rand
	msgs []Message
}

func (f *payloadMix) add(topic string, p []byte) {
	i := len(f.msgs)
	f.msgs = append(f.msgs, Message{TimeNS: 1e18 + int64(i)*1000, OffsetNS: int64(i) * 1000, Topic: topic, QoS: byte(i % 3), Payload: p})
}

// telemetry adds n readings of devices devices (dev/D/telemetry), the
// readings numbered from first.
func (f *payloadMix) telemetry(n, devices, first int) {
	for i := range n {
		f.add(fmt.Sprintf("dev/%d/telemetry", i%devices), telemetry(f.r, i%devices, first+i))
	}
}

// noise is n random bytes.
func (f *payloadMix) noise(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.r.IntN(256))
	}
	return b
}

// writeZip writes msgs as one session in batches of 100, compressed or not.
func writeZip(t *testing.T, path string, msgs []Message, compress bool) {
	t.Helper()
	ctx := context.Background()
	c, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	c.SetCompression(compress)
	s := begin(t, c)
	for i := 0; i < len(msgs); i += 100 {
		batch := append([]Message(nil), msgs[i:min(i+100, len(msgs))]...)
		if err := s.Write(ctx, batch, nil, batch[len(batch)-1].TimeNS); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.End(ctx, msgs[len(msgs)-1].TimeNS, "count", 0); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func openRead(t *testing.T, path string) *Capture {
	t.Helper()
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawQuery returns one integer SQLite computes on the file, as sqlite3 would.
func rawInt(t *testing.T, path, query string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func samePayloads(t *testing.T, got, want []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d messages, wrote %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Topic != want[i].Topic || !bytes.Equal(got[i].Payload, want[i].Payload) || got[i].Payload == nil {
			t.Fatalf("message %d: %s %d bytes, wrote %s %d bytes", i, got[i].Topic, len(got[i].Payload), want[i].Topic, len(want[i].Payload))
		}
	}
}

// TestCompressedRoundTrip: binary, empty, 1 MiB and JSON payloads read back
// exactly through every read path (whole messages, inspector rows, payload
// searches, statistics, messages_view's size), the telemetry is stored
// compressed, and check finds nothing wrong.
func TestCompressedRoundTrip(t *testing.T) {
	ctx := context.Background()
	msgs := zipFixture()
	path := filepath.Join(t.TempDir(), "zip.db")
	writeZip(t, path, msgs, true)
	c := openRead(t, path)

	got, err := c.Page(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	samePayloads(t, got, msgs)
	if n := rawInt(t, path, "SELECT count(*) FROM messages WHERE zstd_dict IS NOT NULL"); n < 600 {
		t.Errorf("%d messages stored compressed, want every telemetry message from the batch that trained the dictionary on (≥ 600)", n)
	}
	if n := rawInt(t, path, "SELECT count(*) FROM zstd_dicts"); n != 1 {
		t.Errorf("%d dictionaries, want 1", n)
	}
	var total int64
	for _, m := range msgs {
		total += int64(len(m.Payload))
	}
	if n := rawInt(t, path, "SELECT sum(size) FROM messages_view"); n != total {
		t.Errorf("messages_view sizes sum to %d, want %d (uncompressed)", n, total)
	}
	tot, _, err := c.Stats(ctx)
	if err != nil || tot.Bytes != total || tot.Stored >= tot.Bytes || tot.Stored != rawInt(t, path, "SELECT sum(length(payload)) FROM messages") {
		t.Errorf("stats: bytes %d stored %d (%v), want bytes %d and less stored", tot.Bytes, tot.Stored, err, total)
	}
	last := msgs[len(msgs)-1]
	n, err := c.Count(ctx, Query{PayloadContains: [][]byte{last.Payload[:40]}})
	if err != nil || n != 1 {
		t.Errorf("payload search in compressed rows: %d, %v", n, err)
	}
	p, err := c.Prepare(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := p.Rows(ctx, int64(len(msgs)), int64(len(msgs)), 1, 16)
	if err != nil || len(rows) != 1 || rows[0].Size != len(last.Payload) || string(rows[0].Preview) != string(last.Payload[:16]) {
		t.Errorf("inspector row: %+v, %v", rows, err)
	}
	if m, err := c.Get(ctx, int64(len(msgs))); err != nil || !bytes.Equal(m.Payload, last.Payload) {
		t.Errorf("Get: %v", err)
	}
	rep, err := Check(ctx, path, CheckOptions{})
	if err != nil || !rep.OK() {
		t.Errorf("check: %+v, %v", rep, err)
	}
}

// TestCompressedMixedSessions: one file holds sessions stored as they are
// and compressed; a compressed session appended to an older capture
// migrates it and uses the capture's one dictionary, also after reopening.
func TestCompressedMixedSessions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	writeV1(t, path) // one message "hi", format version 1
	msgs := zipFixture()
	writeZip(t, path, msgs[:trainMessages+100], true)
	writeZip(t, path, msgs[trainMessages+100:], true)
	writeZip(t, path, msgs[:50], false)

	c := openRead(t, path)
	got, err := c.Page(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	want := append([]Message{{Topic: "old/topic", Payload: []byte("hi")}}, msgs...)
	samePayloads(t, got, append(want, msgs[:50]...))
	if n := rawInt(t, path, "SELECT count(*) FROM zstd_dicts"); n != 1 {
		t.Errorf("%d dictionaries, want the capture's one", n)
	}
	// The second compressed session compressed from its first message.
	if n := rawInt(t, path, "SELECT count(*) FROM messages WHERE session = 3 AND zstd_dict IS NULL AND topic_id IN "+
		"(SELECT id FROM topics WHERE name LIKE 'dev/%')"); n != 0 {
		t.Errorf("%d telemetry messages of the second compressed session stored as they are", n)
	}
	if n := rawInt(t, path, "SELECT count(*) FROM messages WHERE session = 4 AND zstd_dict IS NOT NULL"); n != 0 {
		t.Errorf("%d messages of the session without --compress compressed", n)
	}
}

// TestCompressedDamage: a damaged compressed payload or dictionary, and a
// row that claims to decompress to more than an MQTT payload can hold, is
// ErrCorrupt naming the message for readers, a problem for check, and
// recover keeps every other message: in rows holding a frame's blocks
// (format 6) and whole frames (format 5, the fixture).
func TestCompressedDamage(t *testing.T) {
	msgs := zipFixture()
	v6 := filepath.Join(t.TempDir(), "zip.db")
	writeZip(t, v6, msgs, true)
	t.Run("blocks", func(t *testing.T) { testCompressedDamage(t, v6, len(msgs), 6) })
	t.Run("frames", func(t *testing.T) { testCompressedDamage(t, v5Fixture, len(blockFixture()), 5) })
}

// bombFrame is SQL for a zstd frame of dictionary 1 whose header says it
// holds 64 MiB, followed by one compressed block of 16 random bytes.
const bombFrame = "CAST(x'28b52ffda30100000000000004850000' || randomblob(16) AS BLOB)"

func testCompressedDamage(t *testing.T, clean string, messages, format int) {
	ctx := context.Background()
	target := rawInt(t, clean, "SELECT max(seq) FROM messages WHERE zstd_dict IS NOT NULL AND payload_size < 1000")
	compressed := rawInt(t, clean, "SELECT count(*) FROM messages WHERE zstd_dict IS NOT NULL")
	bomb := fmt.Sprintf("UPDATE messages SET payload_size = %d WHERE seq = %d", int64(1)<<40, target)
	// What the error says where the formats differ: format 6 rebuilds
	// the frame's header from the row, so the frame cannot disagree
	// with it; decoding finds the lie.
	lie, wrongDict := "does not say it holds", "names dictionary 1, the row 7"
	if format == 6 {
		lie, wrongDict = "frame size does not match", "dictionary 7 does not exist"
	}
	for _, tc := range []struct {
		name, stmt, want string
		lost             int64
	}{
		{"flipped bytes", fmt.Sprintf("UPDATE messages SET payload = CAST(substr(payload, 1, 8) || x'ffffffffffff' || substr(payload, 15) AS BLOB) WHERE seq = %d", target), "", 1},
		{"cut short", fmt.Sprintf("UPDATE messages SET payload = substr(payload, 1, 12) WHERE seq = %d", target), "", 1},
		{"not zstd", fmt.Sprintf("UPDATE messages SET payload = x'00010203' WHERE seq = %d", target), "", 1},
		{"size lie", fmt.Sprintf("UPDATE messages SET payload_size = payload_size + 1 WHERE seq = %d", target), lie, 1},
		{"size missing", fmt.Sprintf("UPDATE messages SET payload_size = NULL WHERE seq = %d", target), "not a number", 1},
		{"size one short", fmt.Sprintf("UPDATE messages SET payload_size = payload_size - 1 WHERE seq = %d", target), "", 1},
		{"bomb", bomb, "outside 0–268435455", 1},
		{"wrong dictionary", fmt.Sprintf("UPDATE messages SET zstd_dict = 7 WHERE seq = %d", target), wrongDict, 1},
		{"dictionary id beyond 32 bits", fmt.Sprintf("UPDATE messages SET zstd_dict = %d WHERE seq = %d", int64(1)<<32+1, target), "", 1},
		{"size negative", fmt.Sprintf("UPDATE messages SET payload_size = -5 WHERE seq = %d", target), "outside 0–268435455", 1},
		{"size zero", fmt.Sprintf("UPDATE messages SET payload_size = 0 WHERE seq = %d", target), "", 1},
		{"size 64 MiB", fmt.Sprintf("UPDATE messages SET payload_size = %d WHERE seq = %d", 64<<20, target), "", 1},
		{"zstd_dict not a number", fmt.Sprintf("UPDATE messages SET zstd_dict = 'one' WHERE seq = %d", target), "not a number", 1},
		{"magic and garbage", fmt.Sprintf("UPDATE messages SET payload = CAST(x'28b52ffd' || randomblob(40) AS BLOB) WHERE seq = %d", target), "", 1},
		{"frame claiming 64 MiB", fmt.Sprintf("UPDATE messages SET payload = %s, payload_size = %d WHERE seq = %d", bombFrame, 64<<20, target), "", 1},
		{"huge dictionary", "UPDATE zstd_dicts SET dict = zeroblob(4194304)", "dictionary 1", compressed},
		{"damaged dictionary", "UPDATE zstd_dicts SET dict = substr(dict, 1, 20)", "dictionary 1", compressed},
		{"missing dictionary", "DELETE FROM zstd_dicts", "dictionary 1 does not exist", compressed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.db")
			copyFile(t, clean, path)
			rawExec(t, path, tc.stmt)
			c := openRead(t, path)
			_, err := c.Page(ctx, Query{})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "message seq ") ||
				!strings.Contains(err.Error(), payloadDamaged) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("read: %v, want ErrCorrupt naming the message and %q", err, tc.want)
			}
			if _, err := c.Get(ctx, target); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Get: %v, want ErrCorrupt", err)
			}
			if _, err := c.Count(ctx, Query{PayloadContains: [][]byte{[]byte("x")}}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("payload search: %v, want ErrCorrupt", err)
			}
			// Stats read sizes, not payloads: a size no payload can have
			// is damage there too.
			outside := tc.name == "size negative" || tc.name == "size missing" || tc.name == "bomb"
			if _, _, err := c.Stats(ctx); outside && !errors.Is(err, ErrCorrupt) {
				t.Errorf("stats: %v, want ErrCorrupt for a size outside 0–MaxPayload", err)
			}
			rep, err := Check(ctx, path, CheckOptions{})
			if err != nil || rep.OK() || !strings.Contains(fmt.Sprint(rep.Problems), payloadDamaged) {
				t.Errorf("check: %+v, %v", rep.Problems, err)
			}
			out := filepath.Join(t.TempDir(), "out.db")
			rr, err := Recover(ctx, path, out)
			if err != nil || rr.Messages != int64(messages)-tc.lost || !strings.Contains(fmt.Sprint(rr.Notes), payloadDamaged) {
				t.Fatalf("recover: kept %d of %d (want all but %d), notes %q, %v", rr.Messages, messages, tc.lost, rr.Notes, err)
			}
			if got, err := openRead(t, out).Page(ctx, Query{}); err != nil || len(got) != int(rr.Messages) {
				t.Errorf("recovered capture: %d messages, %v", len(got), err)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCompressedDegenerateSamples: samples that give the dictionary little
// to learn (1-byte payloads, one payload repeated, noise) leave payloads
// readable, stored compressed where it helps (the repeated one), else as
// they are.
func TestCompressedDegenerateSamples(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for name, gen := range map[string]func(i int) []byte{
		"one byte": func(int) []byte { return []byte{'x'} },
		"repeated": func(int) []byte { return bytes.Repeat([]byte(`{"state":"on"}`), 20) },
		"noise": func(int) []byte {
			b := make([]byte, 200)
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return b
		},
	} {
		t.Run(name, func(t *testing.T) {
			var msgs []Message
			for i := range trainMessages + 300 {
				msgs = append(msgs, Message{TimeNS: 1e18 + int64(i), OffsetNS: int64(i), Topic: "t", Payload: gen(i)})
			}
			path := filepath.Join(t.TempDir(), "d.db")
			writeZip(t, path, msgs, true)
			got, err := openRead(t, path).Page(context.Background(), Query{})
			if err != nil {
				t.Fatal(err)
			}
			samePayloads(t, got, msgs)
			zipped := rawInt(t, path, "SELECT count(*) FROM messages WHERE zstd_dict IS NOT NULL")
			if name == "repeated" && zipped < 300 {
				t.Errorf("%d of the repeated payloads after training stored compressed, want all 300", zipped)
			}
		})
	}
}

// TestCompressedAppendToDamagedDictionary: a compressing session appended
// to a capture whose dictionary is damaged trains a new one (the old rows
// stay damaged; the new ones read).
func TestCompressedAppendToDamagedDictionary(t *testing.T) {
	msgs := zipFixture()
	path := filepath.Join(t.TempDir(), "zip.db")
	writeZip(t, path, msgs[:trainMessages], true)
	rawExec(t, path, "UPDATE zstd_dicts SET dict = x'00'")
	writeZip(t, path, msgs, true)
	if n := rawInt(t, path, "SELECT count(*) FROM zstd_dicts"); n != 2 {
		t.Fatalf("%d dictionaries, want the damaged one and a new one", n)
	}
	got, err := openRead(t, path).Page(context.Background(), Query{Session: 2})
	if err != nil {
		t.Fatal(err)
	}
	samePayloads(t, got, msgs)
	if n := rawInt(t, path, "SELECT count(*) FROM messages WHERE session = 2 AND zstd_dict = 2"); n < 300 {
		t.Errorf("%d messages of the new session compressed with the new dictionary", n)
	}
}

// FuzzCompressedPayload: whatever a row holds (a frame or its blocks, claimed size),
// decoding returns exactly the claimed size or a damaged-payload error,
// never a panic. Sizes over 16 MiB are left out (a frame may legitimately
// expand to them; the bound beyond MaxPayload is TestCompressedDamage's).
func FuzzCompressedPayload(f *testing.F) {
	r := rand.New(rand.NewPCG(7, 8))
	var samples [][]byte
	for i := range 300 {
		samples = append(samples, telemetry(r, i%5, i))
	}
	dict, err := trainDict(1, samples, dictHistory)
	if err != nil {
		f.Fatal(err)
	}
	z := &compressor{}
	if err := z.use(1, dict); err != nil {
		f.Fatal(err)
	}
	d, err := newDecoder(1, dict)
	if err != nil {
		f.Fatal(err)
	}
	k := &codec{decoders: map[int64]*zstd.Decoder{1: d}, bad: map[int64]error{}}
	p := telemetry(r, 1, 1000)
	frame, _, _ := z.compress(p) // one block's content (format 6)
	f.Add(frame, int64(len(p)))
	f.Add(append(blockHeaders(1, uint32(len(p)), len(frame)), frame...), int64(len(p))) // the whole frame (format 5)
	f.Add(frame, int64(len(p)-1))
	f.Add(frame[:len(frame)/2], int64(len(p)))
	f.Add([]byte{}, int64(0))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, int64(MaxPayload+1))
	f.Fuzz(func(t *testing.T, frame []byte, size int64) {
		if size > 16<<20 {
			return
		}
		out, err := k.decode(1, size, 1, frame)
		if err != nil && !strings.Contains(err.Error(), payloadDamaged) {
			t.Fatalf("error %v does not say the payload is damaged", err)
		}
		if err == nil && int64(len(out)) != size {
			t.Fatalf("decoded %d bytes, the row claims %d", len(out), size)
		}
	})
}

// TestCompressedBombMemory: reading a small row that claims to hold
// 64 MiB — one block's content (format 6) or a frame whose header says
// so (format 5) — is refused without allocating what it claims.
func TestCompressedBombMemory(t *testing.T) {
	ctx := context.Background()
	clean := filepath.Join(t.TempDir(), "zip.db")
	writeZip(t, clean, zipFixture(), true)
	target := rawInt(t, clean, "SELECT max(seq) FROM messages WHERE zstd_dict IS NOT NULL AND payload_size < 1000")
	for name, stmt := range map[string]string{
		"block": fmt.Sprintf("UPDATE messages SET payload_size = %d WHERE seq = %d", 64<<20, target),
		"frame": fmt.Sprintf("UPDATE messages SET payload = %s, payload_size = %d WHERE seq = %d", bombFrame, 64<<20, target),
		"frame of max size": fmt.Sprintf("UPDATE messages SET payload = CAST(x'28b52ffda301000000ffffff0f850000' || randomblob(16) AS BLOB), payload_size = %d WHERE seq = %d",
			MaxPayload, target),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bomb.db")
			copyFile(t, clean, path)
			rawExec(t, path, stmt)
			c := openRead(t, path)
			if _, err := c.Get(ctx, target-1); err != nil { // the dictionary read, the connection warm
				t.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := c.Get(ctx, target)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), payloadDamaged) {
				t.Errorf("read: %v, want a damaged payload", err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Errorf("reading the row allocated %d MiB, want at most 4", got>>20)
			}
			if testing.Verbose() {
				t.Log(err)
			}
		})
	}
}

// TestCompressedRLEFrame: a small frame of RLE blocks that truly holds
// 64 MiB (what its header and payload_size say) reads as those bytes, with
// memory for them alone.
func TestCompressedRLEFrame(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zip.db")
	writeZip(t, path, zipFixture(), true)
	target := rawInt(t, path, "SELECT max(seq) FROM messages WHERE zstd_dict IS NOT NULL AND payload_size < 1000")
	const blocks = 512 // of maxBlock bytes: 64 MiB
	frame := append(slices.Clip(frameMagic), 0xa3, 1, 0, 0, 0, 0, 0, 0, 4)
	for i := range blocks {
		h := uint32(maxBlock)<<3 | 1<<1
		if i == blocks-1 {
			h |= 1
		}
		frame = append(frame, byte(h), byte(h>>8), byte(h>>16), 'A')
	}
	rawExec(t, path, fmt.Sprintf("UPDATE messages SET payload = x'%x', payload_size = %d WHERE seq = %d", frame, blocks*maxBlock, target))
	c := openRead(t, path)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m, err := c.Get(ctx, target)
	runtime.ReadMemStats(&after)
	if err != nil || len(m.Payload) != blocks*maxBlock || bytes.Count(m.Payload, []byte("A")) != blocks*maxBlock {
		t.Fatalf("read: %d bytes (%v), want %d bytes of A", len(m.Payload), err, blocks*maxBlock)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 3*blocks*maxBlock+(16<<20) {
		t.Errorf("reading 64 MiB allocated %d MiB, want at most 3×64 + 16", got>>20)
	}
}

// TestCompressedSizeOfPlainRow: a payload_size on a row stored as
// published (an edited file) is not its size: stats and the inspector's
// rows count the bytes the row holds, not the terabyte it claims.
func TestCompressedSizeOfPlainRow(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "zip.db")
	msgs := zipFixture()
	writeZip(t, path, msgs, true)
	rawExec(t, path, "UPDATE messages SET payload_size = 1099511627776 WHERE seq = 1 AND zstd_dict IS NULL")
	c := openRead(t, path)
	var total int64
	for _, m := range msgs {
		total += int64(len(m.Payload))
	}
	if tot, _, err := c.Stats(ctx); err != nil || tot.Bytes != total {
		t.Errorf("stats: %d bytes (%v), want %d", tot.Bytes, err, total)
	}
	p, err := c.Prepare(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := p.Rows(ctx, 1, 1, 1, 8); err != nil || len(rows) != 1 || rows[0].Size != len(msgs[0].Payload) {
		t.Errorf("inspector row: %+v (%v), want size %d", rows, err, len(msgs[0].Payload))
	}
}
