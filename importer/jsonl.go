package importer

import (
	"bufio"
	"bytes"
	"context"
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

// jsonlRecord is one line of mqtape export's JSON lines. Every field but
// topic is optional, so hand-written sources stay short: time can be given
// as ts_ns or time (RFC 3339), the payload as payload_b64, as a JSON string
// or as any other JSON value (its text is the payload).
type jsonlRecord struct {
	Seq        *int64           `json:"seq"`
	Session    *int64           `json:"session"`
	Time       *string          `json:"time"`
	TsNS       *int64           `json:"ts_ns"`
	OffsetNS   *int64           `json:"offset_ns"`
	Topic      *string          `json:"topic"`
	QoS        *int             `json:"qos"`
	Retain     flexBool         `json:"retain"`
	Dup        flexBool         `json:"dup"`
	PacketID   *int64           `json:"packet_id"`
	FromStore  flexBool         `json:"from_store"`
	ClientID   string           `json:"client_id"`
	PayloadB64 *string          `json:"payload_b64"`
	Payload    json.RawMessage  `json:"payload"`
	Properties *mqtt.Properties `json:"properties"`
}

// flexBool reads true/false or 0/1.
type flexBool bool

func (b *flexBool) UnmarshalJSON(d []byte) error {
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

// jsonlLine is a decoded line.
type jsonlLine struct {
	m          storage.Message
	session    int64
	hasSession bool // the line has a session number
	hasTime    bool // ts_ns or time
	hasOffset  bool
}

// parseJSONLRecord decodes one line.
func parseJSONLRecord(line []byte) (l jsonlLine, err error) {
	var r jsonlRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return l, fmt.Errorf("invalid JSON: %w", err)
	}
	if r.Topic == nil {
		return l, errors.New(`no "topic"`)
	}
	if err := topic.ValidateName(*r.Topic); err != nil {
		return l, err
	}
	m := &l.m
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
		m.TimeNS, l.hasTime = *r.TsNS, true
	case r.Time != nil:
		t, err := time.Parse(time.RFC3339Nano, *r.Time)
		if err != nil {
			return l, fmt.Errorf("time %q: not RFC 3339", *r.Time)
		}
		m.TimeNS, l.hasTime = t.UnixNano(), true
	}
	if r.OffsetNS != nil {
		if *r.OffsetNS < 0 {
			return l, fmt.Errorf("offset_ns %d: negative", *r.OffsetNS)
		}
		m.OffsetNS, l.hasOffset = *r.OffsetNS, true
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
		l.session, l.hasSession = *r.Session, true
	}
	if r.Properties != nil && !reflect.DeepEqual(*r.Properties, mqtt.Properties{}) {
		m.Props = r.Properties
	}
	return l, nil
}

// readJSONL imports mqtape JSON lines. Lines keep their order. A change of
// the "session" field starts a new session, whose start is its first line's
// ts_ns − offset_ns, so a complete export imported into a new file exports
// again identically (seq and session numbers included). Lines without a
// time take the previous line's (the first: Options.Time); lines without
// offset_ns get ts_ns − session start.
func (im *Importer) readJSONL(ctx context.Context, br *bufio.Reader) error {
	var (
		curSession int64
		started    bool
		prevTS     = im.opts.Time.UnixNano()
	)
	return im.readLines(ctx, br, func(n int, line []byte) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil // blank lines separate nothing
		}
		l, err := parseJSONLRecord(line)
		if err != nil {
			im.problem(ctx, fmt.Sprintf("line %d", n), err)
			return nil
		}
		m, hasOffset := l.m, l.hasOffset
		if !l.hasTime {
			m.TimeNS = prevTS
			if started && hasOffset {
				m.TimeNS = im.w.SessionStart() + m.OffsetNS
			}
		}
		prevTS = m.TimeNS
		if !started || (l.hasSession && l.session != curSession) {
			start := m.TimeNS
			if hasOffset {
				start -= m.OffsetNS
			}
			if err := im.startSession(ctx, start); err != nil {
				return err
			}
			started, curSession = true, l.session
		}
		if !hasOffset {
			m.OffsetNS = max(m.TimeNS-im.w.SessionStart(), 0)
		}
		return im.add(ctx, m)
	})
}
