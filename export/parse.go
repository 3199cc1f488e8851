package export

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
)

// lineRecord is Record as ParseLine reads it: the same keys (a test keeps
// them the same),  every field but
// topic optional, so hand-written sources stay short: time can be given
// as ts_ns or time (RFC 3339), the payload as payload_b64, as a JSON string
// or as any other JSON value (its text is the payload).
type lineRecord struct {
	Seq        *int64           `json:"seq"`
	Session    *int64           `json:"session"`
	Time       *string          `json:"time"`
	TsNS       *int64           `json:"ts_ns"`
	OffsetNS   *int64           `json:"offset_ns"`
	Topic      *string          `json:"topic"`
	QoS        *int             `json:"qos"`
	Retain     FlexBool         `json:"retain"`
	Dup        FlexBool         `json:"dup"`
	PacketID   *int64           `json:"packet_id"`
	FromStore  FlexBool         `json:"from_store"`
	ClientID   string           `json:"client_id"`
	PayloadB64 b64Payload       `json:"payload_b64"`
	Payload    rawRef           `json:"payload"`
	Properties *mqtt.Properties `json:"properties"`
	// decoded and decode_error are derived from the payload: read, not used.
	Decoded     json.RawMessage `json:"decoded"`
	DecodeError string          `json:"decode_error"`
}

// b64Payload decodes payload_b64 straight from the line, with no copy of
// its text: a payload of size P costs P, not the 2.3 P of a string and
// then its decoding.
type b64Payload struct {
	set bool
	b   []byte
}

func (p *b64Payload) UnmarshalJSON(d []byte) error {
	if string(d) == "null" {
		return nil
	}
	p.set = true
	if len(d) < 2 || d[0] != '"' || bytes.IndexByte(d, '\\') >= 0 {
		// Escapes (a writer that escapes "/" as "\/"): unquote first.
		var s string
		if err := json.Unmarshal(d, &s); err != nil {
			return fmt.Errorf("payload_b64: %w", err)
		}
		d = []byte(strconv.Quote(s)) // base64 text needs no escaping
	}
	d = d[1 : len(d)-1]
	p.b = make([]byte, base64.StdEncoding.DecodedLen(len(d)))
	n, err := base64.StdEncoding.Decode(p.b, d)
	if err != nil {
		return fmt.Errorf("payload_b64: %w", err)
	}
	p.b = p.b[:n]
	return nil
}

// rawRef is the text of a JSON value without a copy of it: it refers into
// the line given to ParseLine, which it must not outlive (ParseLine copies
// what it keeps). The export's "payload" duplicates payload_b64, so copying
// it would cost P for nothing.
type rawRef []byte

func (r *rawRef) UnmarshalJSON(d []byte) error {
	*r = d
	return nil
}

// FlexBool is a JSON boolean that also reads 0/1 (and null as false).
type FlexBool bool

func (b *FlexBool) UnmarshalJSON(d []byte) error {
	switch string(d) {
	case "true", "1":
		*b = true
	case "false", "0", "null":
		*b = false
	default:
		return fmt.Errorf("not a boolean: %s", d)
	}
	return nil
}

// Line is a parsed line and which of the optional fields it had.
type Line struct {
	Message    storage.Message // Seq and Session are not set
	Session    int64
	HasSession bool // the line has a session number
	HasTime    bool // ts_ns or time
	HasOffset  bool
}

// ParseLine reads one line of the JSON lines form leniently: time as ts_ns
// or RFC 3339, the payload as payload_b64, a JSON string or any other JSON
// value (its text), booleans as true/false or 0/1.
func ParseLine(line []byte) (l Line, err error) {
	var r lineRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return l, fmt.Errorf("invalid JSON: %w", err)
	}
	if r.Topic == nil {
		return l, errors.New(`no "topic"`)
	}
	if err := topic.ValidateName(*r.Topic); err != nil {
		return l, err
	}
	m := &l.Message
	m.Topic = *r.Topic
	if r.QoS != nil {
		if *r.QoS < 0 || *r.QoS > 2 {
			return l, fmt.Errorf("qos %d: must be 0, 1 or 2", *r.QoS)
		}
		m.QoS = byte(*r.QoS)
	}
	if r.PacketID != nil {
		if *r.PacketID < 0 || *r.PacketID > 65535 {
			return l, fmt.Errorf("packet_id %d: out of range", *r.PacketID)
		}
		m.PacketID = uint16(*r.PacketID)
	}
	m.Retain, m.Dup, m.FromStore, m.ClientID = bool(r.Retain), bool(r.Dup), bool(r.FromStore), r.ClientID
	switch {
	case r.TsNS != nil:
		m.TimeNS, l.HasTime = *r.TsNS, true
	case r.Time != nil:
		t, err := time.Parse(time.RFC3339Nano, *r.Time)
		if err != nil {
			return l, fmt.Errorf("time %q: not RFC 3339", *r.Time)
		}
		m.TimeNS, l.HasTime = t.UnixNano(), true
	}
	if r.OffsetNS != nil {
		if *r.OffsetNS < 0 {
			return l, fmt.Errorf("offset_ns %d: negative", *r.OffsetNS)
		}
		m.OffsetNS, l.HasOffset = *r.OffsetNS, true
	}
	switch {
	case r.PayloadB64.set:
		m.Payload = r.PayloadB64.b
	case len(r.Payload) > 0 && r.Payload[0] == '"':
		var s string
		if err := json.Unmarshal(r.Payload, &s); err != nil {
			return l, fmt.Errorf("payload: %w", err)
		}
		m.Payload = []byte(s)
	case len(r.Payload) > 0 && string(r.Payload) != "null":
		m.Payload = bytes.Clone(r.Payload) // a JSON value written inline: its text
	default:
		m.Payload = []byte{}
	}
	if r.Session != nil {
		l.Session, l.HasSession = *r.Session, true
	}
	if r.Properties != nil && !reflect.DeepEqual(*r.Properties, mqtt.Properties{}) {
		m.Props = r.Properties
	}
	return l, nil
}
