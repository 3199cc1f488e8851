package export

import (
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// ParquetRow is one message as a Parquet row: the schema of
// `mqtape export --format parquet` (docs/capture-format.md, "Parquet
// export"). Every column but payload_text, decoded and properties is
// required.
type ParquetRow struct {
	Seq     int64 `parquet:"seq"`
	Session int64 `parquet:"session"`
	TsNS    int64 `parquet:"ts_ns"`
	// Time is ts_ns again, as a TIMESTAMP(NANOS, UTC) for SQL engines.
	Time      int64  `parquet:"time,timestamp(nanosecond:utc)"`
	OffsetNS  int64  `parquet:"offset_ns"`
	Topic     string `parquet:"topic,dict"`
	QoS       int32  `parquet:"qos"`
	Retain    bool   `parquet:"retain"`
	Dup       bool   `parquet:"dup"`
	FromStore bool   `parquet:"from_store"`
	ClientID  string `parquet:"client_id,dict"`
	Payload   []byte `parquet:"payload"`
	// PayloadText is the payload as text, null when it is not UTF-8.
	PayloadText *string `parquet:"payload_text,optional"`
	// Decoded is the payload decoded to JSON where a decoder applies.
	// Null when no binary decoder read the payload (or with --no-decode).
	Decoded *string `parquet:"decoded,optional,json"`
	// PacketID and Properties keep what JSON lines export keeps, so the
	// export is lossless: the MQTT packet id, and the MQTT 5 properties
	// as JSON (null when the message had none).
	PacketID   int32   `parquet:"packet_id"`
	Properties *string `parquet:"properties,optional,json"`
}

// Row groups close at whichever limit comes first: a reader streams one
// row group at a time, and the writer holds one (compressed) in memory.
const (
	parquetGroupRows  = 64 << 10
	parquetGroupBytes = 24 << 20 // payload and payload_text bytes before compression
)

// ParquetWriter writes messages as one Parquet file, in row groups that
// keep its memory bounded whatever the capture's size.
type ParquetWriter struct {
	w *parquet.GenericWriter[ParquetRow]
	// batch holds rows until parquetBatchRows or parquetBatchBytes
	// (parquet-go writes a batch much faster than as many single rows);
	// arena holds their payloads.
	batch []ParquetRow
	arena []byte
	rows  int // in the row group
	bytes int // payload and payload_text bytes in the row group
}

// Rows are handed to parquet-go in batches of at most this many rows or
// payload bytes.
const (
	parquetBatchRows  = 512
	parquetBatchBytes = 1 << 20
)

// NewParquetWriter returns a ParquetWriter to w (zstd compressed); version
// is mqtape's, recorded as the file's created_by.
func NewParquetWriter(w io.Writer, version string) *ParquetWriter {
	return &ParquetWriter{w: parquet.NewGenericWriter[ParquetRow](w,
		parquet.Compression(newZstdCodec()),
		parquet.CreatedBy("mqtape", version, "mqtape"),
		parquet.PageBufferSize(1<<20),
		// Bounds and statistics of payloads would copy whole payloads
		// into every page header and the footer: a 1 MiB payload would
		// be written several times.
		parquet.SkipPageBounds("payload"), parquet.SkipPageBounds("payload_text"),
		parquet.SkipPageBounds("decoded"), parquet.SkipPageBounds("properties"),
		parquet.SkipPageStatistics("payload"), parquet.SkipPageStatistics("payload_text"),
		parquet.SkipPageStatistics("decoded"), parquet.SkipPageStatistics("properties"),
		parquet.KeyValueMetadata("mqtape.schema", "1"))}
}

// Write adds one message and what decoding it gave (its decoded value
// fills the decoded column, as Record.AddDecoded fills JSON's). It keeps
// no reference to m.
func (x *ParquetWriter) Write(m *storage.Message, res decode.Result) error {
	start := len(x.arena)
	x.arena = append(x.arena, m.Payload...)
	r := ParquetRow{Seq: m.Seq, Session: m.Session, TsNS: m.TimeNS, Time: m.TimeNS, OffsetNS: m.OffsetNS,
		Topic: m.Topic, QoS: int32(m.QoS), Retain: m.Retain, Dup: m.Dup, FromStore: m.FromStore,
		ClientID: m.ClientID, Payload: x.arena[start:len(x.arena):len(x.arena)], PacketID: int32(m.PacketID)}
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		r.PayloadText = &s
		x.bytes += len(m.Payload)
	}
	if res.Err == nil && res.Selected && res.Format.Binary() && res.Value != nil {
		d := string(res.Value)
		r.Decoded = &d
	}
	if m.Props != nil {
		j, err := json.Marshal(m.Props)
		if err != nil {
			return fmt.Errorf("parquet: message %d: properties: %w", m.Seq, err)
		}
		s := string(j)
		r.Properties = &s
	}
	x.batch = append(x.batch, r)
	x.rows++
	x.bytes += len(m.Payload)
	if len(x.batch) >= parquetBatchRows || len(x.arena) >= parquetBatchBytes {
		if err := x.writeBatch(); err != nil {
			return err
		}
	}
	if x.rows >= parquetGroupRows || x.bytes >= parquetGroupBytes {
		if err := x.writeBatch(); err != nil {
			return err
		}
		x.rows, x.bytes = 0, 0
		if err := x.w.Flush(); err != nil {
			return fmt.Errorf("parquet: write row group: %w", err)
		}
	}
	return nil
}

// writeBatch hands the batch to parquet-go, which copies it.
func (x *ParquetWriter) writeBatch() error {
	if len(x.batch) == 0 {
		return nil
	}
	if _, err := x.w.Write(x.batch); err != nil {
		return fmt.Errorf("parquet: write messages %d to %d: %w", x.batch[0].Seq, x.batch[len(x.batch)-1].Seq, err)
	}
	clear(x.batch) // hold no payload
	x.batch, x.arena = x.batch[:0], x.arena[:0]
	if cap(x.arena) > 4*parquetBatchBytes {
		x.arena = nil // after a big payload
	}
	return nil
}

// Close writes the last row group and the footer; it does not close the
// underlying writer.
func (x *ParquetWriter) Close() error {
	if err := x.writeBatch(); err != nil {
		return err
	}
	if err := x.w.Close(); err != nil {
		return fmt.Errorf("parquet: write footer: %w", err)
	}
	return nil
}
