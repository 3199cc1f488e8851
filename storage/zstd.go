package storage

// Compressed payloads (format version 5, record --compress): each payload
// stays one row, stored as one zstd frame made with a dictionary trained on
// the capture's first payloads; from format version 6 a frame of one
// compressed block is stored as that block's content alone, and its
// headers (what the row already says: the dictionary, the size, the
// stored length) are rebuilt when it is read (blockHeaders).
// Reading decompresses inside SQLite, through the mqtape_payload SQL
// function that payloadSQL puts wherever a query reads a payload, so every
// reader (and PayloadContains, tested with instr) sees the payload as
// published.

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"modernc.org/sqlite"

	"github.com/mqtape/mqtape/mqtt"
)

// MaxPayload is the largest payload MQTT can carry (the packet's remaining
// length limit); a compressed row claiming more is damaged.
const MaxPayload = mqtt.MaxRemainingLength

// Training: a capture's dictionary is trained on the first trainMessages
// non-empty payloads of its first compressed session, or on fewer once
// trainBytes of them are collected (each sample is at most trainSampleMax
// bytes: what follows is rarely like other payloads). Until then payloads
// are stored as they are. The dictionary's content is the last dictHistory
// bytes of the samples.
const (
	trainMessages  = 1000
	trainBytes     = 256 << 10
	trainSampleMax = 4 << 10
	dictHistory    = 16 << 10
)

// payloadDamaged is the text of a compressed payload that cannot be read,
// as mqtape_payload reports it through SQLite (wrap finds it there).
const payloadDamaged = "compressed payload is damaged"

// codec decompresses the payloads of one open capture. The SQL function
// finds it by its token, a number the capture's queries carry as a literal.
type codec struct {
	token int64
	db    *sql.DB // where the dictionaries are read, on first use

	mu       sync.Mutex
	decoders map[int64]*zstd.Decoder
	bad      map[int64]error // dictionaries that cannot be used, and why
}

var (
	codecs      sync.Map // token → *codec
	codecTokens atomic.Int64
	registerFn  sync.Once
)

// registerPayloadFunction makes mqtape_payload known to the connections
// opened from now on.
func registerPayloadFunction() {
	registerFn.Do(func() {
		sqlite.MustRegisterDeterministicScalarFunction("mqtape_payload", 5, payloadFunction)
	})
}

// payloadFunction is mqtape_payload(payload, zstd_dict, payload_size, seq,
// token): the payload as published.
func payloadFunction(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	z, _ := args[0].([]byte)
	dict, okDict := args[1].(int64)
	size, okSize := args[2].(int64)
	seq, _ := args[3].(int64)
	token, _ := args[4].(int64)
	k, ok := codecs.Load(token)
	if !ok {
		return nil, errors.New("mqtape_payload: the capture is closed")
	}
	if args[1] == nil {
		return z, nil
	}
	if !okDict || !okSize {
		return nil, fmt.Errorf("message seq %d: %s (zstd_dict or payload_size is not a number)", seq, payloadDamaged)
	}
	out, err := k.(*codec).decode(dict, size, seq, z)
	if err != nil {
		return nil, err
	}
	return out, nil
}

func newCodec(db *sql.DB) *codec {
	registerPayloadFunction()
	k := &codec{token: codecTokens.Add(1), db: db, decoders: make(map[int64]*zstd.Decoder), bad: make(map[int64]error)}
	codecs.Store(k.token, k)
	return k
}

// close forgets the codec and releases its decoders.
func (k *codec) close() {
	if k == nil {
		return
	}
	codecs.Delete(k.token)
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, d := range k.decoders {
		d.Close()
	}
	clear(k.decoders)
}

// decode returns the payload of message seq, stored as frame z made with
// dictionary dict, size bytes long. It never produces more than size bytes
// (nor more than MaxPayload): a small row that would decompress to
// gigabytes is refused before it is decompressed, and one claiming more
// than its blocks can hold before size bytes are allocated.
func (k *codec) decode(dict, size, seq int64, z []byte) ([]byte, error) {
	damaged := func(why string, a ...any) error {
		return fmt.Errorf("message seq %d: %s (%s)", seq, payloadDamaged, fmt.Sprintf(why, a...))
	}
	if size < 0 || size > MaxPayload {
		return nil, damaged("payload_size %d is outside 0–%d", size, MaxPayload)
	}
	if !bytes.HasPrefix(z, frameMagic) {
		// Format 6: one compressed block's content, after the headers
		// the row implies.
		switch {
		case dict < 0 || dict > math.MaxUint32:
			return nil, damaged("zstd_dict %d is not a zstd dictionary id", dict)
		case len(z) == 0 || len(z) > maxBlock:
			return nil, damaged("%d bytes are no zstd block", len(z))
		case size > maxBlock:
			return nil, damaged("one zstd block holds at most %d bytes, payload_size says %d", maxBlock, size)
		}
		z = append(blockHeaders(uint32(dict), uint32(size), len(z)), z...)
	}
	var h zstd.Header
	if err := h.Decode(z); err != nil {
		return nil, damaged("%v", err)
	}
	switch {
	case !h.HasFCS || h.FrameContentSize != uint64(size):
		return nil, damaged("its frame does not say it holds %d bytes", size)
	case int64(h.DictionaryID) != dict:
		return nil, damaged("its frame names dictionary %d, the row %d", h.DictionaryID, dict)
	case size > int64(len(z)-h.HeaderSize)/3*maxBlock:
		// Each block has a 3-byte header and holds at most maxBlock
		// bytes: a small row is refused before size bytes are set aside.
		return nil, damaged("%d bytes of zstd blocks cannot hold %d", len(z)-h.HeaderSize, size)
	}
	d, err := k.decoder(dict)
	if err != nil {
		return nil, damaged("%v", err)
	}
	out, err := d.DecodeAll(z, make([]byte, 0, size))
	if err != nil {
		return nil, damaged("%v", err)
	}
	if int64(len(out)) != size {
		return nil, damaged("it holds %d bytes, payload_size says %d", len(out), size)
	}
	return out, nil
}

// frameMagic begins every zstd frame. A compressed row that begins with it
// holds a whole frame (format 5, and format 6 frames of several blocks or
// of a raw or RLE block); any other compressed row holds the content of a
// frame's one compressed block (format 6), which compress never stores
// when it begins with these bytes.
var frameMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// maxBlock is the most a zstd block holds.
const maxBlock = 128 << 10

// blockHeaders is what a format 6 row's block content is read after: the
// frame header — the magic number, the descriptor 0xa3 (single segment, a
// 4-byte content size, a 4-byte dictionary id, no checksum), the
// dictionary id and the content size, both little-endian — and the block
// header, 3 bytes little-endian: n×8 + 5 (the last block, compressed, n
// bytes). The view zstd_frames builds the same bytes in SQL, for the zstd
// tool.
func blockHeaders(dict, size uint32, n int) []byte {
	h := append(slices.Clip(frameMagic), 0xa3)
	h = binary.LittleEndian.AppendUint32(h, dict)
	h = binary.LittleEndian.AppendUint32(h, size)
	b := uint32(n)<<3 | 2<<1 | 1
	return append(h, byte(b), byte(b>>8), byte(b>>16))
}

// decoder returns the decoder of dictionary id, reading it on first use.
func (k *codec) decoder(id int64) (*zstd.Decoder, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if d := k.decoders[id]; d != nil {
		return d, nil
	}
	if err := k.bad[id]; err != nil {
		return nil, err
	}
	var b []byte
	err := k.db.QueryRowContext(context.Background(), "SELECT dict FROM zstd_dicts WHERE id = ?", id).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		// Not cached as bad: a recording into the file may add it.
		return nil, fmt.Errorf("dictionary %d does not exist", id)
	}
	if err == nil {
		var d *zstd.Decoder
		if d, err = newDecoder(id, b); err == nil {
			k.decoders[id] = d
			return d, nil
		}
	}
	err = fmt.Errorf("dictionary %d: %v", id, err)
	k.bad[id] = err
	return nil, err
}

// newDecoder makes a decoder of dictionary id from its stored bytes.
func newDecoder(id int64, b []byte) (*zstd.Decoder, error) {
	if err := checkDict(id, b); err != nil {
		return nil, err
	}
	return zstd.NewReader(nil, zstd.WithDecoderDicts(b), zstd.WithDecoderMaxMemory(MaxPayload),
		zstd.WithDecodeAllCapLimit(true), zstd.WithDecoderConcurrency(1))
}

// checkDict checks that b is zstd dictionary id.
func checkDict(id int64, b []byte) error {
	info, err := zstd.InspectDictionary(b)
	if err != nil {
		return fmt.Errorf("not a zstd dictionary (%v)", err)
	}
	if int64(info.ID()) != id {
		return fmt.Errorf("it says it is dictionary %d", info.ID())
	}
	return nil
}

// payloadSQL is the SQL expression of the payload as published of the
// messages row alias (e.g. "m."), decompressed when it is stored
// compressed.
func (c *Capture) payloadSQL(alias string) string { return payloadExpr(c.version, c.codec, alias) }

// payloadExpr is payloadSQL for a file of format version whose payloads k
// decompresses.
func payloadExpr(version int, k *codec, alias string) string {
	if version < compressionVersion {
		return alias + "payload"
	}
	return fmt.Sprintf("CASE WHEN %[1]szstd_dict IS NULL THEN %[1]spayload ELSE "+
		"mqtape_payload(%[1]spayload, %[1]szstd_dict, %[1]spayload_size, %[1]sseq, %[2]d) END", alias, k.token)
}

// sizeSQL is the SQL expression of the payload's length as published.
func (c *Capture) sizeSQL(alias string) string { return sizeExpr(c.version, alias) }

// sizeExpr is sizeSQL for a file of format version. payload_size counts
// only where the payload is compressed: on a row stored as published (an
// edited file) it would be a size nothing holds. Outside 0–MaxPayload it
// is NULL, which readers report as a damaged row (as decode does).
func sizeExpr(version int, alias string) string {
	if version < compressionVersion {
		return "length(" + alias + "payload)"
	}
	return fmt.Sprintf("CASE WHEN %[1]szstd_dict IS NULL THEN length(%[1]spayload) "+
		"WHEN %[1]spayload_size BETWEEN 0 AND %[2]d THEN %[1]spayload_size END", alias, MaxPayload)
}

// payloadError finds a damaged compressed payload in an error SQLite
// returned (mqtape_payload's text, inside the driver's).
func payloadError(msg string) (string, bool) {
	i := strings.Index(msg, "message seq ")
	if i < 0 || !strings.Contains(msg, payloadDamaged) {
		return "", false
	}
	msg = msg[i:]
	if j := strings.LastIndex(msg, ")"); j >= 0 && strings.HasSuffix(strings.TrimSpace(msg), "(1)") {
		msg = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(msg), "(1)"))
	}
	return msg, true
}

// compressor compresses the payloads a capture's sessions write
// (SetCompression). It belongs to the capture's one writer.
type compressor struct {
	dict    int64 // the dictionary in use; 0 until one is trained or found
	enc     *zstd.Encoder
	pending []byte // a dictionary trained for the batch being written
	trained int    // how many samples pending was trained on
	off     bool   // training failed: payloads are stored as they are
	looked  bool   // the capture's own dictionary was looked for

	samples     [][]byte
	sampleBytes int
}

// SetCompression makes the sessions begun from now on store payloads
// zstd-compressed (record --compress), with the capture's dictionary: the
// one it already has, else one trained on its first payloads.
func (c *Capture) SetCompression(on bool) {
	switch {
	case !on:
		c.zip = nil
	case c.zip == nil:
		c.zip = &compressor{}
	}
}

// Compressing reports whether SetCompression is on.
func (c *Capture) Compressing() bool { return c.zip != nil }

// prepare readies the compressor for a batch: it finds the capture's
// dictionary, or adds msgs' payloads to the training samples and trains
// one when it has enough (pending until the batch is committed).
func (z *compressor) prepare(ctx context.Context, c *Capture, msgs []Message) error {
	if z.enc != nil || z.off {
		return nil
	}
	if !z.looked {
		// The capture's newest dictionary, unless it is unusable (a
		// damaged file): then a new one is trained.
		var id int64
		var b []byte
		err := c.w.QueryRowContext(ctx, "SELECT id, dict FROM zstd_dicts ORDER BY id DESC LIMIT 1").Scan(&id, &b)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		z.looked = true
		if err == nil && z.use(id, b) == nil {
			return nil
		}
	}
	for _, m := range msgs {
		if len(z.samples) >= trainMessages || z.sampleBytes >= trainBytes {
			break
		}
		if len(m.Payload) == 0 {
			continue
		}
		s := append([]byte(nil), m.Payload[:min(len(m.Payload), trainSampleMax)]...)
		z.samples = append(z.samples, s)
		z.sampleBytes += len(s)
	}
	if len(z.samples) < trainMessages && z.sampleBytes < trainBytes {
		return nil
	}
	var next int64
	if err := c.w.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) + 1 FROM zstd_dicts").Scan(&next); err != nil {
		return err
	}
	b, err := trainDict(next, z.samples, dictHistory)
	if err != nil {
		z.off, z.samples = true, nil
		return nil
	}
	n := len(z.samples)
	if err := z.use(next, b); err != nil {
		z.off, z.samples = true, nil
		return nil
	}
	z.pending, z.trained = b, n
	return nil
}

// trainDict builds dictionary id from samples, its content the last
// history bytes of them.
func trainDict(id int64, samples [][]byte, history int) (dict []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("train a zstd dictionary: %v", r)
		}
	}()
	var hist []byte
	for _, s := range samples {
		hist = append(hist, s...)
	}
	hist = hist[max(0, len(hist)-history):]
	opts := zstd.BuildDictOptions{ID: uint32(id), Contents: samples, History: hist,
		Offsets: [3]int{1, 4, 8}, Level: zstd.SpeedFastest, CompatV155: true}
	dict, err = zstd.BuildDict(opts)
	if err != nil && len(hist) >= 8 {
		// Samples the history matches whole (one payload repeated) leave
		// no literals to build the literal table from: one more sample
		// holding every byte value gives it some.
		every := make([]byte, 256)
		for i := range every {
			every[i] = byte(i)
		}
		opts.Contents = append(samples[:len(samples):len(samples)], every)
		dict, err = zstd.BuildDict(opts)
	}
	return dict, err
}

// use makes dictionary id (its stored bytes b) the one payloads are
// compressed with.
func (z *compressor) use(id int64, b []byte) error {
	if err := checkDict(id, b); err != nil {
		return err
	}
	enc, err := newEncoder(b, encoderLevel)
	if err != nil {
		return err
	}
	z.dict, z.enc, z.samples = id, enc, nil
	return nil
}

// onlyBlock returns the content of blocks when they are one block, the
// last, compressed: what blockHeaders describes.
func onlyBlock(blocks []byte) ([]byte, bool) {
	if len(blocks) < 4 {
		return nil, false
	}
	h := uint32(blocks[0]) | uint32(blocks[1])<<8 | uint32(blocks[2])<<16
	content := blocks[3:]
	return content, h == uint32(len(content))<<3|2<<1|1
}

// encoderLevel is the level payloads are compressed at: with a
// dictionary, better levels save about 3 bytes of a ~120-byte JSON payload
// for three times the CPU (BenchmarkZstdPayload).
const encoderLevel = zstd.SpeedFastest

// newEncoder makes an encoder of payloads with dictionary b: one frame per
// payload, single segment (its content size in the header), no checksum:
// the frames frameHeader describes.
func newEncoder(b []byte, level zstd.EncoderLevel) (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderDict(b), zstd.WithEncoderCRC(false),
		zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithSingleSegment(true))
}

// commit ends a batch: a dictionary trained for it is stored (failed:
// false drops it, and training starts over).
func (z *compressor) commit(ok bool) {
	if !ok && z.pending != nil {
		z.dict, z.enc = 0, nil
	}
	z.pending = nil
}

// storeDict inserts the pending dictionary, trained in session.
func (z *compressor) storeDict(ctx context.Context, tx *sql.Tx, session int64) error {
	if z.pending == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO zstd_dicts (id, session, created_ns, samples, dict) VALUES (?,?,?,?,?)",
		z.dict, session, time.Now().UnixNano(), z.trained, z.pending)
	return err
}

// compress returns how payload is stored: compressed with its dictionary
// and uncompressed size, or as it is (dict and size nil) when compressing
// does not make it smaller or no dictionary is trained yet. Compressed, a
// frame of one compressed block is stored as the block's content alone
// (blockHeaders is what it left out), any other frame whole.
func (z *compressor) compress(payload []byte) (stored []byte, dict, size any) {
	if z == nil || z.enc == nil || len(payload) == 0 {
		return payload, nil, nil
	}
	out := z.enc.EncodeAll(payload, make([]byte, 0, len(payload)))
	var h zstd.Header
	if err := h.Decode(out); err != nil || h.HeaderSize <= 0 || h.HasCheckSum {
		return payload, nil, nil // not a frame this package makes: never stored
	}
	if block, ok := onlyBlock(out[h.HeaderSize:]); ok && !bytes.HasPrefix(block, frameMagic) {
		out = block
	}
	if len(out) >= len(payload) {
		return payload, nil, nil
	}
	return out, z.dict, int64(len(payload))
}
