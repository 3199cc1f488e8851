package export

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

// The Parquet file layout (https://parquet.apache.org/docs/file-format/):
// "PAR1", column chunks, the FileMetaData footer in the Thrift compact
// protocol, the footer's length (4 bytes, little endian), "PAR1". These
// tests read the footer with the decoder below, written from the Thrift
// compact protocol specification, not with the library that wrote it.

// thriftStruct is a decoded Thrift struct: field id to value (int64,
// bool, float64, []byte, []any, thriftStruct).
type thriftStruct map[int16]any

type compactReader struct {
	b   []byte
	err error
}

func (r *compactReader) byte() byte {
	if len(r.b) == 0 {
		r.err = fmt.Errorf("thrift: truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *compactReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = fmt.Errorf("thrift: bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *compactReader) zigzag() int64 { u := r.uvarint(); return int64(u>>1) ^ -int64(u&1) }

func (r *compactReader) value(typ byte) any {
	switch typ {
	case 1, 2: // bool in a list: one byte
		return r.byte() == 1
	case 3:
		return int64(int8(r.byte()))
	case 4, 5, 6:
		return r.zigzag()
	case 7:
		if len(r.b) < 8 {
			r.err = fmt.Errorf("thrift: truncated double")
			return nil
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
		r.b = r.b[8:]
		return v
	case 8:
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			r.err = fmt.Errorf("thrift: binary of %d bytes past the end", n)
			return nil
		}
		v := r.b[:n]
		r.b = r.b[n:]
		return v
	case 9, 10:
		h := r.byte()
		n := uint64(h >> 4)
		if n == 15 {
			n = r.uvarint()
		}
		var l []any
		for i := uint64(0); i < n && r.err == nil; i++ {
			l = append(l, r.value(h&0xf))
		}
		return l
	case 12:
		return r.structure()
	}
	r.err = fmt.Errorf("thrift: type %d not expected in a Parquet footer", typ)
	return nil
}

func (r *compactReader) structure() thriftStruct {
	s := thriftStruct{}
	var id int16
	for r.err == nil {
		h := r.byte()
		if h == 0 {
			return s
		}
		if d := h >> 4; d != 0 {
			id += int16(d)
		} else {
			id = int16(r.zigzag())
		}
		switch typ := h & 0xf; typ {
		case 1, 2: // a bool field: its value is its type
			s[id] = typ == 1
		default:
			s[id] = r.value(typ)
		}
	}
	return s
}

// parquetFooter checks the file's frame and decodes its FileMetaData.
func parquetFooter(t *testing.T, file []byte) thriftStruct {
	t.Helper()
	if len(file) < 12 || string(file[:4]) != "PAR1" || string(file[len(file)-4:]) != "PAR1" {
		t.Fatalf("not framed by PAR1: % x … % x", file[:min(4, len(file))], file[max(0, len(file)-4):])
	}
	n := int(binary.LittleEndian.Uint32(file[len(file)-8:]))
	if n <= 0 || n > len(file)-12 {
		t.Fatalf("footer length %d in a file of %d bytes", n, len(file))
	}
	r := &compactReader{b: file[len(file)-8-n : len(file)-8]}
	meta := r.structure()
	if r.err != nil || len(r.b) != 0 {
		t.Fatalf("footer: %v (%d bytes left)", r.err, len(r.b))
	}
	return meta
}

// TestParquetFooterAgainstSpec writes messages across several row groups
// and checks the footer field by field: version, the schema (physical
// type, repetition, logical type of every column), the row count, the row
// groups (their rows add up; zstd; a dictionary for topics), created_by.
func TestParquetFooterAgainstSpec(t *testing.T) {
	var msgs []storage.Message
	n := parquetGroupRows + 1000 // two row groups
	for i := range n {
		m := capturetest.Msg(time.Duration(i)*time.Millisecond, fmt.Sprintf("dev/%d/temp", i%50), byte(i%3),
			fmt.Sprintf(`{"i":%d}`, i))
		if i%7 == 0 {
			m.Payload = []byte{0xff, byte(i)}
		}
		msgs = append(msgs, m)
	}
	path := capturetest.WriteOffsets(t, msgs)
	c, err := storage.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var buf bytes.Buffer
	w := NewParquetWriter(&buf, "9.9.9")
	for m, err := range c.Messages(t.Context(), storage.Query{}) {
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(&m, decode.Result{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	meta := parquetFooter(t, buf.Bytes())
	if meta[1] != int64(1) && meta[1] != int64(2) {
		t.Errorf("version %v", meta[1])
	}
	if meta[3] != int64(n) {
		t.Errorf("num_rows %v, want %d", meta[3], n)
	}
	if cb := string(meta[6].([]byte)); !strings.HasPrefix(cb, "mqtape version 9.9.9") {
		t.Errorf("created_by %q", cb)
	}
	checkFooterSchema(t, meta[2].([]any))
	groups := meta[4].([]any)
	var rows int64
	for _, g := range groups {
		g := g.(thriftStruct)
		rows += g[3].(int64)
		for _, cc := range g[1].([]any) {
			md := cc.(thriftStruct)[3].(thriftStruct)
			const zstd, rleDictionary = 6, 8
			path := string(md[3].([]any)[0].([]byte))
			if md[4] != int64(zstd) {
				t.Errorf("column %s: codec %v, want ZSTD (6)", path, md[4])
			}
			if path == "topic" && !strings.Contains(fmt.Sprint(md[2]), fmt.Sprint(rleDictionary)) {
				t.Errorf("topic encodings %v: no RLE_DICTIONARY (8)", md[2])
			}
		}
	}
	if len(groups) != 2 || rows != int64(n) {
		t.Errorf("%d row groups of %d rows, want 2 of %d", len(groups), rows, n)
	}
}

// checkFooterSchema compares the schema elements with the columns the
// export promises (parquet.thrift: Type, FieldRepetitionType, LogicalType).
func checkFooterSchema(t *testing.T, schema []any) {
	t.Helper()
	const (
		tBool, tInt32, tInt64, tBytes = 0, 1, 2, 6
		required, optional            = 0, 1
		str, timestamp, integer, json = 1, 8, 10, 12 // LogicalType union members
	)
	want := []struct {
		name          string
		typ, rep, log int64
	}{
		{"seq", tInt64, required, integer}, {"session", tInt64, required, integer}, {"ts_ns", tInt64, required, integer},
		{"time", tInt64, required, timestamp}, {"offset_ns", tInt64, required, integer},
		{"topic", tBytes, required, str}, {"qos", tInt32, required, integer}, {"retain", tBool, required, 0},
		{"dup", tBool, required, 0}, {"from_store", tBool, required, 0}, {"client_id", tBytes, required, str},
		{"payload", tBytes, required, 0}, {"payload_text", tBytes, optional, str},
		{"decoded", tBytes, optional, json}, {"packet_id", tInt32, required, integer},
		{"properties", tBytes, optional, json},
	}
	root := schema[0].(thriftStruct)
	if root[5] != int64(len(want)) || len(schema) != len(want)+1 {
		t.Fatalf("root has %v children, %d elements follow; want %d", root[5], len(schema)-1, len(want))
	}
	for i, w := range want {
		e := schema[i+1].(thriftStruct)
		var log int64
		var logical thriftStruct
		if l, ok := e[10].(thriftStruct); ok {
			for id, v := range l {
				log, logical = int64(id), v.(thriftStruct)
			}
		}
		if string(e[4].([]byte)) != w.name || e[1] != w.typ || e[3] != w.rep || log != w.log {
			t.Errorf("element %d: %s type %v repetition %v logical %d, want %+v", i+1, e[4], e[1], e[3], log, w)
		}
		if w.name == "time" {
			// TimestampType: isAdjustedToUTC, unit NANOS (TimeUnit member 3).
			if _, nanos := logical[2].(thriftStruct)[3]; logical[1] != true || !nanos {
				t.Errorf("time: %v, want TIMESTAMP(isAdjustedToUTC, NANOS)", logical)
			}
		}
	}
}

// TestParquetBigPayloads: payload bytes close a row group before its row
// count does, so a capture of big payloads never holds more than about
// parquetGroupBytes of them; and a payload is stored once per column, not
// copied again into page statistics and bounds (which made 3 payloads of
// 4 MiB a 117 MB file).
func TestParquetBigPayloads(t *testing.T) {
	big := "\xff" + strings.Repeat("x", 4<<20-1) // binary: payload_text is null
	var msgs []storage.Message
	for i := range 40 { // 160 MiB
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*time.Millisecond, "big", 0, big))
	}
	var buf bytes.Buffer
	w := NewParquetWriter(&buf, "1")
	for i := range msgs {
		if err := w.Write(&msgs[i], decode.Result{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 1<<20 {
		t.Errorf("160 MiB of one repeated byte took %d bytes", buf.Len())
	}
	meta := parquetFooter(t, buf.Bytes())
	groups := meta[4].([]any)
	perGroup := (parquetGroupBytes + len(big) - 1) / len(big)
	if want := (len(msgs) + perGroup - 1) / perGroup; len(groups) != want {
		t.Errorf("%d row groups for 160 MiB of payloads, want %d (%d MiB each at most)", len(groups), want, parquetGroupBytes>>20)
	}
}
