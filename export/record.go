// Package export is mqtape's message interchange format: the JSON lines
// and CSV rows that `mqtape export` prints, the inspector's `e` action
// writes and `mqtape import` reads back.
package export

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// Record is one exported message (the JSON lines form).
type Record struct {
	Seq        int64   `json:"seq"`
	Session    int64   `json:"session"`
	Time       string  `json:"time"` // RFC 3339 with ns, UTC
	TsNS       int64   `json:"ts_ns"`
	OffsetNS   int64   `json:"offset_ns"`
	Topic      string  `json:"topic"`
	QoS        byte    `json:"qos"`
	Retain     bool    `json:"retain"`
	Dup        bool    `json:"dup"`
	PacketID   uint16  `json:"packet_id"`
	FromStore  bool    `json:"from_store"`
	ClientID   string  `json:"client_id"`
	PayloadB64 string  `json:"payload_b64"`
	Payload    *string `json:"payload,omitempty"` // only when valid UTF-8
	// Properties are the MQTT 5 properties, only when the message had any.
	Properties *mqtt.Properties `json:"properties,omitempty"`
	// Decoded is the payload's value as a binary or compressed decoder
	// read it (package decode); JSON and text payloads have none.
	Decoded json.RawMessage `json:"decoded,omitempty"`
	// DecodeError says why the decoder selected for the message failed.
	DecodeError string `json:"decode_error,omitempty"`
}

// AddDecoded records what decoding the message gave: the value when a
// binary or compressed decoder read it, the error when the selected
// decoder failed.
func (r *Record) AddDecoded(res decode.Result) {
	switch {
	case res.Err != nil:
		r.DecodeError = res.Err.Error()
	case res.Selected && res.Format.Binary():
		r.Decoded = res.Value
	}
}

// New converts a stored message.
func New(m *storage.Message) Record {
	r := Record{Seq: m.Seq, Session: m.Session, Time: m.Time().Format(time.RFC3339Nano), TsNS: m.TimeNS,
		OffsetNS: m.OffsetNS, Topic: m.Topic, QoS: m.QoS, Retain: m.Retain, Dup: m.Dup, PacketID: m.PacketID,
		FromStore: m.FromStore, ClientID: m.ClientID, Properties: m.Props,
		PayloadB64: base64.StdEncoding.EncodeToString(m.Payload)}
	if utf8.Valid(m.Payload) {
		s := string(m.Payload)
		r.Payload = &s
	}
	return r
}

// CSVHeader names the CSV columns.
var CSVHeader = []string{"seq", "session", "time", "ts_ns", "offset_ns", "topic", "qos", "retain", "dup", "packet_id",
	"from_store", "client_id", "payload_b64", "payload", "properties", "decoded", "decode_error"}

// CSV returns the record as a CSV row: booleans as 0/1, payload empty when
// not UTF-8, properties and decoded as JSON text (or empty).
func (r Record) CSV() []string {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	payload, props := "", ""
	if r.Payload != nil {
		payload = *r.Payload
	}
	if r.Properties != nil {
		j, _ := json.Marshal(r.Properties)
		props = string(j)
	}
	return []string{strconv.FormatInt(r.Seq, 10), strconv.FormatInt(r.Session, 10), r.Time,
		strconv.FormatInt(r.TsNS, 10), strconv.FormatInt(r.OffsetNS, 10), r.Topic, strconv.Itoa(int(r.QoS)),
		b(r.Retain), b(r.Dup), strconv.Itoa(int(r.PacketID)), b(r.FromStore), r.ClientID, r.PayloadB64, payload, props,
		string(r.Decoded), r.DecodeError}
}
