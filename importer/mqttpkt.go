package importer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"unicode/utf8"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/topic"
)

// MQTT control packet types.
const (
	pktConnect    = 1
	pktPublish    = 3
	pktDisconnect = 14
	pktAuth       = 15
)

// maxRemaining is the largest remaining length MQTT can encode.
const maxRemaining = mqtt.MaxRemainingLength

var errIncomplete = errors.New("incomplete packet")

// splitPacket finds the first MQTT control packet in buf. It returns
// errIncomplete when buf holds only part of it, and another error when the
// bytes cannot be MQTT (the stream is then lost: MQTT has no resync marker).
func splitPacket(buf []byte) (typ, flags byte, body []byte, n int, err error) {
	if len(buf) < 2 {
		return 0, 0, nil, 0, errIncomplete
	}
	typ, flags = buf[0]>>4, buf[0]&0x0f
	if err := checkFlags(typ, flags); err != nil {
		return 0, 0, nil, 0, err
	}
	rem, k, err := varint(buf[1:])
	if err != nil {
		return 0, 0, nil, 0, err
	}
	total := 1 + k + rem
	if len(buf) < total {
		return 0, 0, nil, 0, errIncomplete
	}
	return typ, flags, buf[1+k : total], total, nil
}

// checkFlags validates the fixed header's flags (MQTT 3.1.1 §2.2.2, 5.0
// §2.1.3): a first sign that a byte stream is not MQTT.
func checkFlags(typ, flags byte) error {
	switch typ {
	case 0:
		return errors.New("packet type 0 is reserved: not MQTT")
	case pktPublish:
		if flags&0x06 == 0x06 {
			return errors.New("PUBLISH with QoS 3: not MQTT")
		}
	case 6, 8, 10: // PUBREL, SUBSCRIBE, UNSUBSCRIBE
		if flags != 2 {
			return fmt.Errorf("packet type %d with flags %#x: not MQTT", typ, flags)
		}
	default:
		if flags != 0 {
			return fmt.Errorf("packet type %d with flags %#x: not MQTT", typ, flags)
		}
	}
	return nil
}

// varint decodes a variable byte integer (at most 4 bytes). It returns
// errIncomplete when b ends inside it.
func varint(b []byte) (v, n int, err error) {
	mult := 1
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, errIncomplete
		}
		v += int(b[i]&0x7f) * mult
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
		mult *= 128
	}
	return 0, 0, errors.New("remaining length longer than 4 bytes: not MQTT")
}

// reader reads the fields of a packet body.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("malformed %s", what)
	}
}

func (r *reader) byte1(what string) byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail(what)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) uint16(what string) uint16 {
	if r.err != nil || len(r.b) < 2 {
		r.fail(what)
		return 0
	}
	v := binary.BigEndian.Uint16(r.b)
	r.b = r.b[2:]
	return v
}

func (r *reader) binary(what string) []byte {
	n := int(r.uint16(what))
	if r.err != nil || len(r.b) < n {
		r.fail(what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) str(what string) string {
	v := r.binary(what)
	if r.err == nil && !utf8.Valid(v) {
		r.err = fmt.Errorf("%s is not UTF-8", what)
	}
	return string(v)
}

func (r *reader) skip(n int, what string) {
	if r.err != nil || len(r.b) < n {
		r.fail(what)
		return
	}
	r.b = r.b[n:]
}

// properties reads an MQTT 5 property list, returning the topic alias (0
// when absent) and, when props is not nil, filling it with the PUBLISH
// properties mqtape keeps.
func (r *reader) properties(what string, props *mqtt.Properties) (alias uint16) {
	if r.err != nil {
		return 0
	}
	n, k, err := varint(r.b)
	if err != nil || len(r.b) < k+n {
		r.fail(what + " properties")
		return 0
	}
	p := &reader{b: r.b[k : k+n]}
	r.b = r.b[k+n:]
	if props == nil {
		props = new(mqtt.Properties) // read and dropped
	}
	for len(p.b) > 0 && p.err == nil {
		id := p.byte1(what)
		switch id {
		case 0x01:
			v := p.byte1(what)
			props.PayloadFormat = &v
		case 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A:
			p.skip(1, what)
		case 0x23:
			alias = p.uint16(what)
		case 0x13, 0x21, 0x22:
			p.skip(2, what)
		case 0x02:
			if len(p.b) < 4 {
				p.fail(what)
				break
			}
			v := binary.BigEndian.Uint32(p.b)
			props.MessageExpiry = &v
			p.skip(4, what)
		case 0x11, 0x18, 0x27:
			p.skip(4, what)
		case 0x0B:
			v, k, err := varint(p.b)
			if err != nil {
				p.fail(what)
				break
			}
			props.SubscriptionIDs = append(props.SubscriptionIDs, v)
			p.skip(k, what)
		case 0x03:
			props.ContentType = p.str(what)
		case 0x08:
			props.ResponseTopic = p.str(what)
		case 0x12, 0x15, 0x1A, 0x1C, 0x1F:
			p.str(what)
		case 0x09:
			props.CorrelationData = append([]byte{}, p.binary(what)...)
		case 0x16:
			p.binary(what)
		case 0x26:
			k := p.str(what)
			v := p.str(what)
			props.UserProperties = append(props.UserProperties, mqtt.UserProperty{Key: k, Value: v})
		default:
			p.err = fmt.Errorf("unknown %s property %#x", what, id)
		}
	}
	if p.err != nil {
		r.err = p.err
	}
	return alias
}

// connectInfo is what a CONNECT says about its client (never the password).
type connectInfo struct {
	ClientID  string `json:"client_id"`
	Username  string `json:"username"`
	Clean     bool   `json:"clean_session"`
	KeepAlive uint16 `json:"keepalive"`
	Protocol  byte   `json:"protocol"`
	Remote    string `json:"remote"`
}

// parseConnect decodes a CONNECT body (MQTT 3.1, 3.1.1 and 5).
func parseConnect(body []byte) (connectInfo, error) {
	r := &reader{b: body}
	var ci connectInfo
	name := r.str("CONNECT protocol name")
	ci.Protocol = r.byte1("CONNECT protocol level")
	flags := r.byte1("CONNECT flags")
	ci.KeepAlive = r.uint16("CONNECT keepalive")
	if r.err != nil {
		return ci, r.err
	}
	if (name != "MQTT" || (ci.Protocol != 4 && ci.Protocol != 5)) && (name != "MQIsdp" || ci.Protocol != 3) {
		return ci, fmt.Errorf("CONNECT for protocol %q level %d: not MQTT 3.1, 3.1.1 or 5", name, ci.Protocol)
	}
	ci.Clean = flags&0x02 != 0
	if ci.Protocol == 5 {
		r.properties("CONNECT", nil)
	}
	ci.ClientID = r.str("CONNECT client id")
	if flags&0x04 != 0 { // will
		if ci.Protocol == 5 {
			r.properties("will", nil)
		}
		r.str("will topic")
		r.binary("will payload")
	}
	if flags&0x80 != 0 {
		ci.Username = r.str("username")
	}
	return ci, r.err
}

// publish is a decoded PUBLISH.
type publish struct {
	topic    string
	qos      byte
	retain   bool
	dup      bool
	packetID uint16
	alias    uint16           // MQTT 5 topic alias (0: none)
	props    *mqtt.Properties // MQTT 5 properties (nil: none)
	payload  []byte
}

// parsePublish decodes a PUBLISH body. An empty topic is allowed only with
// a topic alias (MQTT 5); the caller resolves it.
func parsePublish(flags byte, body []byte, protocol byte) (publish, error) {
	p := publish{qos: flags >> 1 & 3, retain: flags&1 != 0, dup: flags&8 != 0}
	r := &reader{b: body}
	p.topic = r.str("PUBLISH topic")
	if p.qos > 0 {
		p.packetID = r.uint16("PUBLISH packet id")
		if r.err == nil && p.packetID == 0 {
			return p, errors.New("PUBLISH with QoS > 0 and packet id 0")
		}
	}
	if protocol == 5 {
		var props mqtt.Properties
		p.alias = r.properties("PUBLISH", &props)
		if !reflect.DeepEqual(props, mqtt.Properties{}) {
			p.props = &props
		}
	}
	if r.err != nil {
		return p, r.err
	}
	if p.topic != "" || p.alias == 0 {
		if err := topic.ValidateName(p.topic); err != nil {
			return p, fmt.Errorf("PUBLISH topic: %w", err)
		}
	}
	p.payload = append([]byte{}, r.b...)
	return p, nil
}
