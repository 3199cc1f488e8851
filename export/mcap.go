package export

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/mcap"
	"github.com/mqtape/mqtape/storage"
)

// MCAP export (README, "MCAP"): one channel per topic and per combination of what an MCAP message has no room for: the QoS, the
// retain flag, whether the broker sent it from its retained store, and the
// publisher's client id, all four in the channel's metadata. A capture
// recorded by a subscriber at one QoS has one channel per topic. A message
// a protobuf decoder read (gzip+ and the like undone) goes in as its
// protobuf bytes on a protobuf channel whose schema is the message type's
// FileDescriptorSet; the rest go on json channels (schemaless). A JSON
// object payload is the message as it is; any other payload becomes
// {"text": "…"} (valid UTF-8) or {"base64": "…"}. log_time and publish_time
// are both the receive time (MQTT carries no publish time); sequence is the
// capture's seq (mod 2^32).

// mcapChannel is what one MCAP channel stands for.
type mcapChannel struct {
	topic, clientID   string
	qos               byte
	retain, fromStore bool
	schema            uint16 // 0: json, else the protobuf schema's id
}

// protoType is a protobuf message type in the schema a capture carries.
type protoType struct {
	schema  *decode.Schema
	message string
}

// MCAPWriter writes messages as one MCAP file, zstd-compressed chunks of
// 1 MiB: its memory is one chunk, whatever the capture's size.
type MCAPWriter struct {
	buf      *bufio.Writer
	w        *mcap.Writer
	channels map[mcapChannel]uint16
	types    map[protoType]uint16 // schema ids
	schemas  map[string]uint16    // schema ids by name and FileDescriptorSet: one record per distinct schema
	data     bytes.Buffer
	wrapped  bytes.Buffer // a decoded value that is not an object, wrapped
}

// NewMCAPWriter writes the MCAP header to w; version is mqtape's.
func NewMCAPWriter(w io.Writer, version string) (*MCAPWriter, error) {
	buf := bufio.NewWriterSize(w, 256<<10)
	zstd := newZstdCodec()
	mw, err := mcap.NewWriter(buf, mcap.Options{Library: "mqtape " + version, ChunkSize: 1 << 20, Compression: "zstd",
		Compress: func(dst, src []byte) []byte { b, _ := zstd.Encode(dst, src); return b }})
	if err != nil {
		return nil, err
	}
	return &MCAPWriter{buf: buf, w: mw, channels: map[mcapChannel]uint16{},
		types: map[protoType]uint16{}, schemas: map[string]uint16{}}, nil
}

// Write adds one message. A payload a binary decoder read (Sparkplug B,
// CBOR, …) goes in as its decoded JSON value, so Foxglove shows its fields:
// an object as it is, anything else as {"value": …}; a protobuf one as its
// protobuf bytes.
func (x *MCAPWriter) Write(m *storage.Message, res decode.Result) error {
	schema, err := x.schema(res)
	if err != nil {
		return err
	}
	key := mcapChannel{m.Topic, m.ClientID, m.QoS, m.Retain, m.FromStore, schema}
	id, ok := x.channels[key]
	if !ok {
		if id, err = x.addChannel(key); err != nil {
			return err
		}
	}
	data := res.Raw
	if schema == 0 {
		data = x.message(m.Payload, res)
	}
	t := uint64(max(m.TimeNS, 0))
	return x.w.WriteMessage(mcap.Message{ChannelID: id, Sequence: uint32(m.Seq), LogTime: t, PublishTime: t, Data: data})
}

// addChannel declares the channel of key.
func (x *MCAPWriter) addChannel(key mcapChannel) (uint16, error) {
	if len(x.channels) > 0xffff {
		return 0, fmt.Errorf("mcap: more than 65,536 channels (topic, QoS, retain, publisher, schema): MCAP channel ids are 16-bit; export fewer topics with -t/-x")
	}
	id := uint16(len(x.channels))
	meta := map[string]string{"qos": strconv.Itoa(int(key.qos)), "retain": strconv.FormatBool(key.retain),
		"from_store": strconv.FormatBool(key.fromStore)}
	if key.clientID != "" {
		meta["client_id"] = key.clientID
	}
	enc := "json"
	if key.schema != 0 {
		enc = "protobuf"
	}
	err := x.w.AddChannel(mcap.Channel{ID: id, SchemaID: key.schema, Topic: key.topic, MessageEncoding: enc, Metadata: meta})
	if err != nil {
		return 0, err
	}
	x.channels[key] = id
	return id, nil
}

// schema is the id of the protobuf schema of a message a protobuf decoder
// read, declaring it the first time; 0 for any other message.
func (x *MCAPWriter) schema(res decode.Result) (uint16, error) {
	if res.Err != nil || !res.Selected || res.Format.Kind != decode.KindProtobuf || res.Schema == nil {
		return 0, nil
	}
	t := protoType{res.Schema, res.Format.Message}
	if id, ok := x.types[t]; ok {
		return id, nil
	}
	set, err := res.Schema.DescriptorSet(t.message)
	if err != nil {
		return 0, fmt.Errorf("mcap: schema of %s: %w", t.message, err)
	}
	key := t.message + "\x00" + string(set)
	id, ok := x.schemas[key]
	if !ok {
		if len(x.schemas) >= 0xffff {
			return 0, fmt.Errorf("mcap: more than 65,535 protobuf schemas: MCAP schema ids are 16-bit")
		}
		id = uint16(len(x.schemas) + 1) // 0 is "no schema"
		if err := x.w.AddSchema(mcap.Schema{ID: id, Name: t.message, Encoding: "protobuf", Data: set}); err != nil {
			return 0, err
		}
		x.schemas[key] = id
	}
	x.types[t] = id
	return id, nil
}

// message is the message as a JSON object: its decoded value, else its
// payload (jsonData).
func (x *MCAPWriter) message(p []byte, res decode.Result) []byte {
	if res.Err != nil || !res.Selected || !res.Format.Binary() || res.Value == nil {
		return x.jsonData(p)
	}
	if v := bytes.TrimLeft(res.Value, " \t\r\n"); len(v) > 0 && v[0] == '{' {
		return res.Value
	}
	x.wrapped.Reset()
	x.wrapped.WriteString(`{"value":`)
	x.wrapped.Write(res.Value)
	x.wrapped.WriteByte('}')
	return x.wrapped.Bytes()
}

// jsonData is the payload as a JSON object.
func (x *MCAPWriter) jsonData(p []byte) []byte {
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) > 0 && t[0] == '{' && json.Valid(p) {
		return p
	}
	x.data.Reset()
	if utf8.Valid(p) {
		x.data.WriteString(`{"text":`)
		enc := json.NewEncoder(&x.data)
		enc.SetEscapeHTML(false)
		enc.Encode(string(p))
		x.data.Truncate(x.data.Len() - 1) // Encode's newline
	} else {
		x.data.WriteString(`{"base64":"`)
		x.data.WriteString(base64.StdEncoding.EncodeToString(p))
		x.data.WriteByte('"')
	}
	x.data.WriteByte('}')
	return x.data.Bytes()
}

// Close writes the summary and footer and flushes; it does not close the
// underlying writer.
func (x *MCAPWriter) Close() error {
	if err := x.w.Close(); err != nil {
		return err
	}
	return x.buf.Flush()
}
