// Package mcap writes MCAP files (https://mcap.dev/spec, major version 0):
// the magic, a Header, a data section of compressed Chunks each followed by
// its Message Index records, Data End with the data section's CRC, a
// summary section (Schemas, Channels, Statistics, Chunk Indexes, grouped by
// opcode), Summary Offset records and a Footer with the summary's CRC.
// Written from the specification; standard library only (a compressor is
// handed in).
package mcap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"sort"
)

// Magic starts and ends every MCAP file.
var Magic = []byte{0x89, 'M', 'C', 'A', 'P', '0', '\r', '\n'}

// Record opcodes.
const (
	OpHeader        = 0x01
	OpFooter        = 0x02
	OpSchema        = 0x03
	OpChannel       = 0x04
	OpMessage       = 0x05
	OpChunk         = 0x06
	OpMessageIndex  = 0x07
	OpChunkIndex    = 0x08
	OpStatistics    = 0x0B
	OpSummaryOffset = 0x0E
	OpDataEnd       = 0x0F
)

// Schema describes the messages of channels that refer to it.
type Schema struct {
	ID       uint16 // not 0
	Name     string
	Encoding string // e.g. "protobuf", "jsonschema"
	Data     []byte
}

// Channel is a stream of messages on a topic.
type Channel struct {
	ID              uint16
	SchemaID        uint16 // 0: no schema
	Topic           string
	MessageEncoding string // e.g. "json"
	Metadata        map[string]string
}

// Message is one message on a channel; times are ns since the Unix epoch.
type Message struct {
	ChannelID   uint16
	Sequence    uint32
	LogTime     uint64
	PublishTime uint64
	Data        []byte
}

// Options configure a Writer.
type Options struct {
	Profile, Library string
	// ChunkSize closes a chunk once its records reach this many bytes
	// (uncompressed; default 1 MiB). A chunk is held in memory.
	ChunkSize int
	// Compression names the chunk compression ("" none, "zstd", "lz4");
	// Compress does it (nil with "").
	Compression string
	Compress    func(dst, src []byte) []byte
}

// ErrClosed: the writer was closed or failed earlier.
var ErrClosed = errors.New("mcap: writer closed")

type indexEntry struct{ logTime, offset uint64 }

type chunkIndex struct {
	start, end               uint64
	offset, length           uint64
	indexOffsets             map[uint16]uint64
	indexLength              uint64
	compressed, uncompressed uint64
}

// Writer writes one MCAP file. Not safe for concurrent use.
type Writer struct {
	out  io.Writer
	pos  uint64
	crc  hash.Hash32 // of the data section, from the first byte of the file
	opts Options
	err  error

	schemas  map[uint16]Schema
	channels map[uint16]Channel
	inFile   map[uint16]bool // channels written into a chunk already
	schemaIn map[uint16]bool // schemas written into a chunk already

	chunk          bytes.Buffer
	chunkMessages  int
	chunkStartTime uint64
	chunkEndTime   uint64
	index          map[uint16][]indexEntry
	chunkIndexes   []chunkIndex
	compressed     []byte

	messages      uint64
	channelCounts map[uint16]uint64
	start, end    uint64
	scratch       []byte
}

// NewWriter writes the magic and the Header to out.
func NewWriter(out io.Writer, o Options) (*Writer, error) {
	if o.ChunkSize <= 0 {
		o.ChunkSize = 1 << 20
	}
	if (o.Compression == "") != (o.Compress == nil) {
		return nil, fmt.Errorf("mcap: compression %q needs a Compress function (and none without)", o.Compression)
	}
	w := &Writer{out: out, crc: crc32.NewIEEE(), opts: o, schemas: map[uint16]Schema{}, channels: map[uint16]Channel{},
		inFile: map[uint16]bool{}, schemaIn: map[uint16]bool{}, index: map[uint16][]indexEntry{}, channelCounts: map[uint16]uint64{}}
	w.write(Magic)
	b := appendString(appendString(nil, o.Profile), o.Library)
	w.writeRecord(OpHeader, b)
	return w, w.err
}

// AddSchema declares a schema; it is written before the first channel
// that uses it.
func (w *Writer) AddSchema(s Schema) error {
	if s.ID == 0 {
		return fmt.Errorf("mcap: schema %q: id 0 is reserved", s.Name)
	}
	w.schemas[s.ID] = s
	return nil
}

// AddChannel declares a channel; it is written into the chunk of its first
// message, and into the summary.
func (w *Writer) AddChannel(c Channel) error {
	if _, ok := w.channels[c.ID]; ok {
		return fmt.Errorf("mcap: channel %d declared twice", c.ID)
	}
	if _, ok := w.schemas[c.SchemaID]; c.SchemaID != 0 && !ok {
		return fmt.Errorf("mcap: channel %d (%s): no schema %d", c.ID, c.Topic, c.SchemaID)
	}
	w.channels[c.ID] = c
	return nil
}

// WriteMessage adds a message to the current chunk.
func (w *Writer) WriteMessage(m Message) error {
	if w.err != nil {
		return w.err
	}
	c, ok := w.channels[m.ChannelID]
	if !ok {
		return fmt.Errorf("mcap: message on channel %d, which was not added", m.ChannelID)
	}
	if !w.inFile[c.ID] {
		w.inFile[c.ID] = true
		if s, ok := w.schemas[c.SchemaID]; ok && !w.schemaIn[s.ID] {
			w.schemaIn[s.ID] = true
			appendRecord(&w.chunk, OpSchema, schemaRecord(s))
		}
		appendRecord(&w.chunk, OpChannel, channelRecord(c))
	}
	if w.chunkMessages == 0 || m.LogTime < w.chunkStartTime {
		w.chunkStartTime = m.LogTime
	}
	if w.chunkMessages == 0 || m.LogTime > w.chunkEndTime {
		w.chunkEndTime = m.LogTime
	}
	if w.messages == 0 || m.LogTime < w.start {
		w.start = m.LogTime
	}
	w.end = max(w.end, m.LogTime)
	w.index[m.ChannelID] = append(w.index[m.ChannelID], indexEntry{m.LogTime, uint64(w.chunk.Len())})
	b := binary.LittleEndian.AppendUint16(w.scratch[:0], m.ChannelID)
	b = binary.LittleEndian.AppendUint32(b, m.Sequence)
	b = binary.LittleEndian.AppendUint64(b, m.LogTime)
	b = binary.LittleEndian.AppendUint64(b, m.PublishTime)
	w.chunk.WriteByte(OpMessage)
	w.chunk.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(b)+len(m.Data))))
	w.chunk.Write(b)
	w.chunk.Write(m.Data)
	w.scratch = b
	w.chunkMessages++
	w.messages++
	w.channelCounts[m.ChannelID]++
	if w.chunk.Len() >= w.opts.ChunkSize {
		w.flushChunk()
	}
	return w.err
}

// flushChunk writes the current chunk and its message indexes.
func (w *Writer) flushChunk() {
	if w.chunk.Len() == 0 || w.err != nil {
		return
	}
	records := w.chunk.Bytes()
	data := records
	if w.opts.Compress != nil {
		w.compressed = w.opts.Compress(w.compressed[:0], records)
		data = w.compressed
	}
	var start, end uint64
	if w.chunkMessages > 0 {
		start, end = w.chunkStartTime, w.chunkEndTime
	}
	b := binary.LittleEndian.AppendUint64(nil, start)
	b = binary.LittleEndian.AppendUint64(b, end)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(records)))
	b = binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(records))
	b = appendString(b, w.opts.Compression)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	ci := chunkIndex{start: start, end: end, offset: w.pos, indexOffsets: map[uint16]uint64{},
		compressed: uint64(len(data)), uncompressed: uint64(len(records))}
	// The record's header and fields, then its records: not copied.
	w.write([]byte{OpChunk})
	w.write(binary.LittleEndian.AppendUint64(nil, uint64(len(b)+len(data))))
	w.write(b)
	w.write(data)
	ci.length = w.pos - ci.offset
	for _, id := range sortedKeys(w.index) {
		ci.indexOffsets[id] = w.pos
		r := binary.LittleEndian.AppendUint16(nil, id)
		r = binary.LittleEndian.AppendUint32(r, uint32(16*len(w.index[id])))
		for _, e := range w.index[id] {
			r = binary.LittleEndian.AppendUint64(r, e.logTime)
			r = binary.LittleEndian.AppendUint64(r, e.offset)
		}
		w.writeRecord(OpMessageIndex, r)
	}
	ci.indexLength = w.pos - ci.offset - ci.length
	w.chunkIndexes = append(w.chunkIndexes, ci)
	w.chunk.Reset()
	clear(w.index)
	w.chunkMessages = 0
}

// Close writes the last chunk, Data End, the summary section, the summary
// offsets, the Footer and the magic. It does not close the io.Writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	w.flushChunk()
	w.writeRecord(OpDataEnd, binary.LittleEndian.AppendUint32(nil, w.crc.Sum32()))
	summaryStart := w.pos
	w.crc = crc32.NewIEEE() // from here: the summary's CRC
	type group struct {
		op            byte
		start, length uint64
	}
	var groups []group
	emit := func(op byte, records [][]byte) {
		if len(records) == 0 {
			return
		}
		g := group{op: op, start: w.pos}
		for _, r := range records {
			w.writeRecord(op, r)
		}
		g.length = w.pos - g.start
		groups = append(groups, g)
	}
	var schemas, channels, indexes [][]byte
	for _, id := range sortedKeys(w.schemas) {
		if w.schemaIn[id] {
			schemas = append(schemas, schemaRecord(w.schemas[id]))
		}
	}
	for _, id := range sortedKeys(w.channels) {
		if w.inFile[id] {
			channels = append(channels, channelRecord(w.channels[id]))
		}
	}
	for _, ci := range w.chunkIndexes {
		indexes = append(indexes, chunkIndexRecord(ci, w.opts.Compression))
	}
	emit(OpSchema, schemas)
	emit(OpChannel, channels)
	emit(OpStatistics, [][]byte{w.statistics(len(schemas), len(channels))})
	emit(OpChunkIndex, indexes)
	offsetStart := w.pos
	for _, g := range groups {
		b := []byte{g.op}
		b = binary.LittleEndian.AppendUint64(b, g.start)
		b = binary.LittleEndian.AppendUint64(b, g.length)
		w.writeRecord(OpSummaryOffset, b)
	}
	// Footer: the CRC covers the summary and offsets, and the footer's
	// fields before it (its opcode and length included).
	f := binary.LittleEndian.AppendUint64(nil, summaryStart)
	f = binary.LittleEndian.AppendUint64(f, offsetStart)
	head := append([]byte{OpFooter}, binary.LittleEndian.AppendUint64(nil, uint64(len(f)+4))...)
	w.write(head)
	w.crc.Write(f)
	w.write(binary.LittleEndian.AppendUint32(f, w.crc.Sum32()))
	w.write(Magic)
	err := w.err
	if err == nil {
		w.err = ErrClosed
	}
	return err
}

func (w *Writer) statistics(schemas, channels int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, w.messages)
	b = binary.LittleEndian.AppendUint16(b, uint16(schemas))
	b = binary.LittleEndian.AppendUint32(b, uint32(channels))
	b = binary.LittleEndian.AppendUint32(b, 0) // attachments
	b = binary.LittleEndian.AppendUint32(b, 0) // metadata
	b = binary.LittleEndian.AppendUint32(b, uint32(len(w.chunkIndexes)))
	b = binary.LittleEndian.AppendUint64(b, w.start)
	b = binary.LittleEndian.AppendUint64(b, w.end)
	ids := sortedKeys(w.channelCounts)
	b = binary.LittleEndian.AppendUint32(b, uint32(10*len(ids)))
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint16(b, id)
		b = binary.LittleEndian.AppendUint64(b, w.channelCounts[id])
	}
	return b
}

func schemaRecord(s Schema) []byte {
	b := binary.LittleEndian.AppendUint16(nil, s.ID)
	b = appendString(appendString(b, s.Name), s.Encoding)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Data)))
	return append(b, s.Data...)
}

func channelRecord(c Channel) []byte {
	b := binary.LittleEndian.AppendUint16(nil, c.ID)
	b = binary.LittleEndian.AppendUint16(b, c.SchemaID)
	b = appendString(appendString(b, c.Topic), c.MessageEncoding)
	var m []byte
	keys := make([]string, 0, len(c.Metadata))
	for k := range c.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		m = appendString(appendString(m, k), c.Metadata[k])
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m)))
	return append(b, m...)
}

func chunkIndexRecord(ci chunkIndex, compression string) []byte {
	b := binary.LittleEndian.AppendUint64(nil, ci.start)
	b = binary.LittleEndian.AppendUint64(b, ci.end)
	b = binary.LittleEndian.AppendUint64(b, ci.offset)
	b = binary.LittleEndian.AppendUint64(b, ci.length)
	ids := sortedKeys(ci.indexOffsets)
	b = binary.LittleEndian.AppendUint32(b, uint32(10*len(ids)))
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint16(b, id)
		b = binary.LittleEndian.AppendUint64(b, ci.indexOffsets[id])
	}
	b = binary.LittleEndian.AppendUint64(b, ci.indexLength)
	b = appendString(b, compression)
	b = binary.LittleEndian.AppendUint64(b, ci.compressed)
	return binary.LittleEndian.AppendUint64(b, ci.uncompressed)
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendRecord(buf *bytes.Buffer, op byte, body []byte) {
	buf.WriteByte(op)
	buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(body))))
	buf.Write(body)
}

func (w *Writer) writeRecord(op byte, body []byte) {
	w.write(append([]byte{op}, binary.LittleEndian.AppendUint64(nil, uint64(len(body)))...))
	w.write(body)
}

// write writes to the file, counting its position and its CRC; the first
// error sticks.
func (w *Writer) write(b []byte) {
	if w.err != nil {
		return
	}
	n, err := w.out.Write(b)
	w.pos += uint64(n)
	w.crc.Write(b[:n])
	if err != nil {
		w.err = fmt.Errorf("mcap: write: %w", err)
	}
}

func sortedKeys[V any](m map[uint16]V) []uint16 {
	ids := make([]uint16, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
