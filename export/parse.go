package export

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
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
	PayloadB64 *string          `json:"payload_b64"`
	Payload    json.RawMessage  `json:"payload"`
	Properties *mqtt.Properties `json:"properties"`
	// decoded and decode_error are derived from the payload: read, not used.
	Decoded     json.RawMessage `json:"decoded"`
	DecodeError string          `json:"decode_error"`
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
	case r.PayloadB64 != nil:
		if m.Payload, err = base64.StdEncoding.DecodeString(*r.PayloadB64); err != nil {
			return l, fmt.Errorf("payload_b64: %w", err)
		}
	case len(r.Payload) > 0 && r.Payload[0] == '"':
		var s string
		if err := json.Unmarshal(r.Payload, &s); err != nil {
			return l, fmt.Errorf("payload: %w", err)
		}
		m.Payload = []byte(s)
	case len(r.Payload) > 0 && string(r.Payload) != "null":
		m.Payload = []byte(r.Payload) // a JSON value written inline: its text
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
