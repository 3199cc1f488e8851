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

// MCAP export (README, "MCAP"): one json channel (schemaless) per topic and
// per combination of what an MCAP message has no room for: the QoS, the
// retain flag, whether the broker sent it from its retained store, and the
// publisher's client id, all four in the channel's metadata. A capture
// recorded by a subscriber at one QoS has one channel per topic. A JSON
// object payload is the message as it is; any other payload becomes
// {"text": "…"} (valid UTF-8) or {"base64": "…"}. log_time and publish_time
// are both the receive time (MQTT carries no publish time); sequence is the
// capture's seq (mod 2^32).

// mcapChannel is what one MCAP channel stands for.
type mcapChannel struct {
	topic, clientID   string
	qos               byte
	retain, fromStore bool
}

// MCAPWriter writes messages as one MCAP file, zstd-compressed chunks of
// 1 MiB: its memory is one chunk, whatever the capture's size.
type MCAPWriter struct {
	buf      *bufio.Writer
	w        *mcap.Writer
	channels map[mcapChannel]uint16
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
	return &MCAPWriter{buf: buf, w: mw, channels: map[mcapChannel]uint16{}}, nil
}

// Write adds one message. A payload a binary decoder read (Sparkplug B,
// protobuf, CBOR, …) goes in as its decoded JSON value, so Foxglove shows
// its fields: an object as it is, anything else as {"value": …}.
func (x *MCAPWriter) Write(m *storage.Message, res decode.Result) error {
	key := mcapChannel{m.Topic, m.ClientID, m.QoS, m.Retain, m.FromStore}
	id, ok := x.channels[key]
	if !ok {
		if len(x.channels) > 0xffff {
			return fmt.Errorf("mcap: more than 65,536 channels (topic, QoS, retain, publisher): MCAP channel ids are 16-bit; export fewer topics with -t/-x")
		}
		id = uint16(len(x.channels))
		meta := map[string]string{"qos": strconv.Itoa(int(m.QoS)), "retain": strconv.FormatBool(m.Retain),
			"from_store": strconv.FormatBool(m.FromStore)}
		if m.ClientID != "" {
			meta["client_id"] = m.ClientID
		}
		if err := x.w.AddChannel(mcap.Channel{ID: id, Topic: m.Topic, MessageEncoding: "json", Metadata: meta}); err != nil {
			return err
		}
		x.channels[key] = id
	}
	t := uint64(max(m.TimeNS, 0))
	return x.w.WriteMessage(mcap.Message{ChannelID: id, Sequence: uint32(m.Seq), LogTime: t, PublishTime: t,
		Data: x.message(m.Payload, res)})
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
