package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/topic"
)

// mosquittoRecord is one line of mosquitto_sub -F %j (or %J) output:
//
//	{"tst":"2026-11-26T01:43:27.309783Z+0000","topic":"a/b","qos":1,"retain":0,"payloadlen":5,"mid":3,"payload":"hello"}
type mosquittoRecord struct {
	Tst        *string         `json:"tst"`
	Topic      *string         `json:"topic"`
	QoS        int             `json:"qos"`
	Retain     export.FlexBool `json:"retain"`
	PayloadLen *int            `json:"payloadlen"`
	Mid        int64           `json:"mid"`
	Properties json.RawMessage `json:"properties"`
	Payload    json.RawMessage `json:"payload"`
}

// mosquittoTime is the layout of mosquitto_sub's "tst": RFC 3339 with
// microseconds, a literal Z and then a numeric zone (not valid RFC 3339).
const mosquittoTime = "2006-01-02T15:04:05.999999999Z-0700"

// parseTst reads a mosquitto_sub timestamp (also plain RFC 3339).
func parseTst(s string) (time.Time, error) {
	if t, err := time.Parse(mosquittoTime, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("tst %q: not a mosquitto_sub time", s)
}

// parseMosquittoJSON decodes one -F %j line, MQTT 5 properties included.
func parseMosquittoJSON(line []byte) (m storage.Message, err error) {
	var r mosquittoRecord
	if err := json.Unmarshal(line, &r); err != nil {
		return m, fmt.Errorf("invalid JSON: %w", err)
	}
	if r.Topic == nil || r.Tst == nil {
		return m, errors.New(`not mosquitto_sub -F %j output (no "tst" or "topic")`)
	}
	if err := topic.ValidateName(*r.Topic); err != nil {
		return m, err
	}
	t, err := parseTst(*r.Tst)
	if err != nil {
		return m, err
	}
	if r.QoS < 0 || r.QoS > 2 {
		return m, fmt.Errorf("qos %d: must be 0, 1 or 2", r.QoS)
	}
	if r.Mid < 0 || r.Mid > 65535 {
		return m, fmt.Errorf("mid %d: out of range", r.Mid)
	}
	m = storage.Message{TimeNS: t.UnixNano(), Topic: *r.Topic, QoS: byte(r.QoS), Retain: bool(r.Retain),
		FromStore: bool(r.Retain), PacketID: uint16(r.Mid)}
	text := false
	switch {
	case len(r.Payload) == 0 || string(r.Payload) == "null":
		m.Payload, text = []byte{}, true
	case r.Payload[0] == '"':
		// Decoded byte-exactly: mosquitto_sub writes non-UTF-8 bytes raw.
		if m.Payload, err = unquoteRaw(r.Payload); err != nil {
			return m, fmt.Errorf("payload: %w", err)
		}
		text = true
	default:
		m.Payload = []byte(r.Payload) // -F %J: the payload's JSON as printed
	}
	if text && r.PayloadLen != nil && len(m.Payload) != *r.PayloadLen {
		return m, fmt.Errorf("payload has %d bytes, payloadlen says %d (mosquitto_sub cuts payloads at a NUL byte: record binary payloads with mqtape record)",
			len(m.Payload), *r.PayloadLen)
	}
	if len(r.Properties) > 0 && string(r.Properties) != "null" {
		if m.Props, err = parseMosquittoProps(r.Properties); err != nil {
			return m, fmt.Errorf("properties: %w", err)
		}
	}
	return m, nil
}

// parseMosquittoProps reads mosquitto_sub's "properties" object:
//
//	{"user-properties":{"k":"v","k":"v2"},"content-type":"text/plain","payload-format-indicator":1,
//	 "response-topic":"r","correlation-data":"abc","message-expiry-interval":60}
//
// User properties are an object whose keys may repeat: they are read in
// order, duplicates kept.
func parseMosquittoProps(raw json.RawMessage) (*mqtt.Properties, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	var p mqtt.Properties
	for k, v := range fields {
		var err error
		switch k {
		case "user-properties":
			p.UserProperties, err = orderedPairs(v)
		case "content-type":
			err = json.Unmarshal(v, &p.ContentType)
		case "response-topic":
			err = json.Unmarshal(v, &p.ResponseTopic)
		case "correlation-data":
			p.CorrelationData, err = unquoteRaw(v)
		case "payload-format-indicator":
			p.PayloadFormat = new(byte)
			err = json.Unmarshal(v, p.PayloadFormat)
		case "message-expiry-interval":
			p.MessageExpiry = new(uint32)
			err = json.Unmarshal(v, p.MessageExpiry)
		case "subscription-identifier":
			var id int
			if err = json.Unmarshal(v, &id); err == nil {
				p.SubscriptionIDs = append(p.SubscriptionIDs, id)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
	}
	if reflect.DeepEqual(p, mqtt.Properties{}) {
		return nil, nil
	}
	return &p, nil
}

// orderedPairs reads a JSON object's members in order, repeated keys kept.
func orderedPairs(raw json.RawMessage) ([]mqtt.UserProperty, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var out []mqtt.UserProperty
	for dec.More() {
		var k, v string
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ = kt.(string)
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, mqtt.UserProperty{Key: k, Value: v})
	}
	return out, nil
}

// unquoteRaw decodes a JSON string literal, keeping bytes that are not
// valid UTF-8 as they are (encoding/json would replace them).
func unquoteRaw(q []byte) ([]byte, error) {
	if len(q) < 2 || q[0] != '"' || q[len(q)-1] != '"' {
		return nil, errors.New("not a JSON string")
	}
	s := q[1 : len(q)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			return nil, errors.New("unescaped quote in string")
		}
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i >= len(s) {
			return nil, errors.New("string ends in a backslash")
		}
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n, err := hex4(s[i+1:])
			if err != nil {
				return nil, err
			}
			i += n
			if utf16.IsSurrogate(r) {
				if i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if r2, n2, err := hex4(s[i+3:]); err == nil {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							r = d
							i += 2 + n2
						}
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, fmt.Errorf("bad escape \\%c", s[i])
		}
	}
	return out, nil
}

func hex4(s []byte) (rune, int, error) {
	if len(s) < 4 {
		return 0, 0, errors.New(`short \u escape`)
	}
	v, err := strconv.ParseUint(string(s[:4]), 16, 32)
	if err != nil {
		return 0, 0, fmt.Errorf(`bad \u escape %q`, s[:4])
	}
	return rune(v), 4, nil
}

// isVLine reports whether a line looks like mosquitto_sub -v output: a
// valid topic name, a space, the payload.
func isVLine(line []byte) bool {
	_, _, err := parseVLine(line)
	return err == nil
}

// parseVLine splits a -v line at its first space. mosquitto_sub prints an
// empty payload as "(null)". Topics with spaces and payloads with line
// breaks cannot be told apart in this format: use -F %j.
func parseVLine(line []byte) (topicName string, payload []byte, err error) {
	t, p, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return "", nil, errors.New("no space between topic and payload (a payload's continuation line? use mosquitto_sub -F %j)")
	}
	if err := topic.ValidateName(string(t)); err != nil {
		return "", nil, err
	}
	if string(p) == "(null)" {
		p = nil
	}
	return string(t), append([]byte{}, p...), nil
}

// readMosquitto imports mosquitto_sub output into one session: -F %j/%J
// lines (time from "tst", microseconds; retain=1 means the message came
// from the broker's retained store, as for any MQTT 3.1.1 subscriber) or -v
// lines, which carry no time: every message gets Options.Time, so a replay
// sends them back to back. The first line decides which.
func (im *Importer) readMosquitto(ctx context.Context, br *bufio.Reader) error {
	mode := 0 // 0 undecided, 1 JSON, 2 -v
	return im.readLines(ctx, br, func(n int, line []byte) error {
		if len(bytes.TrimSpace(line)) == 0 {
			// mosquitto_sub -F %J prints an empty line for a payload that is
			// not JSON (the message is lost); in -v output it is part of a
			// payload with line breaks.
			im.problem(ctx, fmt.Sprintf("line %d", n), errors.New("empty line (-F %J prints one for a payload that is not JSON; in -v output it belongs to a payload with line breaks)"))
			return nil
		}
		if mode == 0 {
			mode = 2
			if line[0] == '{' {
				mode = 1
			}
		}
		var m storage.Message
		if mode == 1 {
			var err error
			if m, err = parseMosquittoJSON(line); err != nil {
				im.problem(ctx, fmt.Sprintf("line %d", n), err)
				return nil
			}
		} else {
			t, p, err := parseVLine(line)
			if err != nil {
				im.problem(ctx, fmt.Sprintf("line %d", n), err)
				return nil
			}
			m = storage.Message{TimeNS: im.opts.Time.UnixNano(), Topic: t, Payload: p}
		}
		if !im.w.InSession() {
			if err := im.startSession(ctx, m.TimeNS); err != nil {
				return err
			}
		}
		m.OffsetNS = max(m.TimeNS-im.w.SessionStart(), 0)
		if m.Props != nil && m.Props.CorrelationData != nil && (len(m.Props.CorrelationData) == 0 || !utf8.Valid(m.Props.CorrelationData)) {
			im.propsTruncated(ctx, fmt.Sprintf("line %d", n), correlationCut)
		}
		return im.add(ctx, m)
	})
}

// correlationCut explains binary or empty correlation data in mosquitto_sub
// output: it may have been cut short.
const correlationCut = "correlation data is binary or empty: mosquitto_sub prints it only up to its first NUL byte, so it may be cut short"
