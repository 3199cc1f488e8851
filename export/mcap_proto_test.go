package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/mcap"
	"github.com/mqtape/mqtape/storage"
)

// mcapRecord is one record of an MCAP file: its opcode and its fields.
type mcapRecord struct {
	op   byte
	body []byte
}

// mcapRecords walks b's records (after the magic, or a chunk's records),
// opening chunks: their records follow them.
func mcapRecords(t *testing.T, b []byte) []mcapRecord {
	t.Helper()
	var out []mcapRecord
	for len(b) >= 9 {
		op, n := b[0], binary.LittleEndian.Uint64(b[1:9])
		if uint64(len(b)-9) < n {
			t.Fatalf("record 0x%02x: length %d past the end", op, n)
		}
		body := b[9 : 9+n]
		out = append(out, mcapRecord{op, body})
		if op == mcap.OpChunk {
			f := &mcapFields{b: body}
			f.take(8 + 8 + 8 + 4)
			compression := f.str()
			data := f.take(int(f.u64()))
			if compression == "zstd" {
				dec, _ := zstd.NewReader(nil)
				var err error
				if data, err = dec.DecodeAll(data, nil); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, mcapRecords(t, data)...)
		}
		b = b[9+n:]
	}
	return out
}

type mcapFields struct{ b []byte }

func (f *mcapFields) take(n int) []byte { v := f.b[:n]; f.b = f.b[n:]; return v }
func (f *mcapFields) u16() uint16       { return binary.LittleEndian.Uint16(f.take(2)) }
func (f *mcapFields) u32() uint32       { return binary.LittleEndian.Uint32(f.take(4)) }
func (f *mcapFields) u64() uint64       { return binary.LittleEndian.Uint64(f.take(8)) }
func (f *mcapFields) str() string       { return string(f.take(int(f.u32()))) }

const mcapProto = `syntax = "proto3";
package acme.v1;
import "google/protobuf/timestamp.proto";
import "units.proto";
message Reading {
  string sensor_id = 1;
  double celsius = 2;
  google.protobuf.Timestamp at = 3;
  Unit unit = 4;
}
`

// TestMCAPProtobufChannels: messages a protobuf decoder read go on a
// protobuf channel whose schema record holds the message type's
// FileDescriptorSet (its file and its imports), as their protobuf bytes —
// a gzip+protobuf one decompressed; a message of the same topic that does
// not decode goes on a json channel; one schema record for two topics.
func TestMCAPProtobufChannels(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "units.proto"), []byte("syntax = \"proto3\";\npackage acme.v1;\nenum Unit { UNIT_UNSPECIFIED = 0; UNIT_CELSIUS = 1; }\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "reading.proto"), []byte(mcapProto), 0o644)
	schema, err := decode.LoadSchema(context.Background(), []string{filepath.Join(dir, "reading.proto")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := decode.ParseRules([]string{"pb/#=protobuf:acme.v1.Reading", "gz/#=gzip+protobuf:acme.v1.Reading"})
	reg, err := decode.NewRegistry(rules, schema)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := schema.Message("acme.v1.Reading")
	m := dynamicpb.NewMessage(md)
	m.Set(md.Fields().ByName("sensor_id"), protoreflect.ValueOfString("s-1"))
	m.Set(md.Fields().ByName("celsius"), protoreflect.ValueOfFloat64(21.5))
	pb, _ := proto.Marshal(m)
	msgs := []storage.Message{
		{Seq: 1, TimeNS: 10, Topic: "pb/1", Payload: pb},
		{Seq: 2, TimeNS: 20, Topic: "pb/1", Payload: []byte{0xff, 0xff}}, // not a Reading
		{Seq: 3, TimeNS: 30, Topic: "gz/1", Payload: gzipBytes(t, pb)},
		{Seq: 4, TimeNS: 40, Topic: "plain", Payload: []byte(`{"v":1}`)},
	}
	var out bytes.Buffer
	w, err := NewMCAPWriter(&out, "test")
	if err != nil {
		t.Fatal(err)
	}
	dec := reg.NewDecoder()
	for i := range msgs {
		if err := w.Write(&msgs[i], dec.Decode(msgs[i].Topic, nil, msgs[i].Payload)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	schemas, channels, data := readMCAPRecords(t, out.Bytes())
	if len(schemas) != 1 || schemas[1].name != "acme.v1.Reading" || schemas[1].encoding != "protobuf" {
		t.Fatalf("schemas %+v", schemas)
	}
	checkDescriptorSet(t, schemas[1].data, pb)
	want := []struct {
		topic, encoding string
		schema          uint16
		data            []byte
	}{{"pb/1", "protobuf", 1, pb}, {"pb/1", "json", 0, []byte(`{"base64":"//8="}`)}, {"gz/1", "protobuf", 1, pb}, {"plain", "json", 0, []byte(`{"v":1}`)}}
	if len(data) != len(want) {
		t.Fatalf("%d messages", len(data))
	}
	for i, w := range want {
		c := channels[data[i].channel]
		if c.topic != w.topic || c.encoding != w.encoding || c.schema != w.schema || !bytes.Equal(data[i].data, w.data) {
			t.Errorf("message %d: channel %+v data %q; want %+v", i, c, data[i].data, w)
		}
	}
}

type mcapSchemaRec struct {
	name, encoding string
	data           []byte
}

type mcapChannelRec struct {
	topic, encoding string
	schema          uint16
}

type mcapMessageRec struct {
	channel uint16
	data    []byte
}

// readMCAPRecords gives the file's schemas and channels by id (the
// summary's, which repeat the chunks') and its messages in order.
func readMCAPRecords(t *testing.T, b []byte) (map[uint16]mcapSchemaRec, map[uint16]mcapChannelRec, []mcapMessageRec) {
	t.Helper()
	if !bytes.HasPrefix(b, mcap.Magic) || !bytes.HasSuffix(b, mcap.Magic) {
		t.Fatal("no MCAP magic")
	}
	schemas, channels := map[uint16]mcapSchemaRec{}, map[uint16]mcapChannelRec{}
	var msgs []mcapMessageRec
	for _, r := range mcapRecords(t, b[len(mcap.Magic):len(b)-len(mcap.Magic)]) {
		f := &mcapFields{b: r.body}
		switch r.op {
		case mcap.OpSchema:
			id := f.u16()
			s := mcapSchemaRec{name: f.str(), encoding: f.str()}
			s.data = f.take(int(f.u32()))
			schemas[id] = s
		case mcap.OpChannel:
			id, schema := f.u16(), f.u16()
			channels[id] = mcapChannelRec{topic: f.str(), encoding: f.str(), schema: schema}
		case mcap.OpMessage:
			id := f.u16()
			f.take(4 + 8 + 8)
			msgs = append(msgs, mcapMessageRec{id, f.b})
		}
	}
	return schemas, channels, msgs
}

// checkDescriptorSet: set is a FileDescriptorSet that stands alone (no
// global registry) and decodes pb as an acme.v1.Reading.
func checkDescriptorSet(t *testing.T, set, pb []byte) {
	t.Helper()
	var fds descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(set, &fds); err != nil {
		t.Fatalf("schema data: %v", err)
	}
	files, err := protodesc.NewFiles(&fds)
	if err != nil {
		t.Fatalf("schema data does not stand alone (%d files): %v", len(fds.File), err)
	}
	d, err := files.FindDescriptorByName("acme.v1.Reading")
	if err != nil {
		t.Fatal(err)
	}
	m := dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
	if err := proto.Unmarshal(pb, m); err != nil || m.Get(m.Descriptor().Fields().ByName("sensor_id")).String() != "s-1" {
		t.Fatalf("decoding with the schema: %v %v", m, err)
	}
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
