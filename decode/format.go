// Package decode turns MQTT payloads into JSON values: the one decoder
// registry that export (and later inspect, diff and the filter language)
// use. It chooses a decoder by the user's topic map, the Sparkplug B
// namespace or the MQTT 5 content type — never by sniffing binary bytes —
// and knows protobuf (from .proto files compiled at run time or a
// FileDescriptorSet), Sparkplug B, CBOR, MessagePack, JSON and text, each
// optionally behind a gzip, zlib or deflate content encoding.
package decode

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mqtape/mqtape/topic"
)

// ErrBadFormat marks a FORMAT or FILTER=FORMAT the user wrote wrongly, and
// a protobuf message type that no loaded schema defines.
var ErrBadFormat = errors.New("bad decoder")

// kindError is an error of a kind (ErrBadFormat, ErrBadSchema) whose text
// is only its own message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

func badFormat(format string, a ...any) error {
	return &kindError{ErrBadFormat, fmt.Sprintf(format, a...)}
}

func badSchema(format string, a ...any) error {
	return &kindError{ErrBadSchema, fmt.Sprintf(format, a...)}
}

// Kinds of payload a Format decodes.
const (
	KindJSON      = "json"
	KindText      = "text"
	KindCBOR      = "cbor"
	KindMsgpack   = "msgpack"
	KindSparkplug = "sparkplug"
	KindProtobuf  = "protobuf"
)

// Content encodings that may prefix a kind (gzip+json).
var encodings = []string{"gzip", "zlib", "deflate"}

var kinds = []string{KindJSON, KindText, KindCBOR, KindMsgpack, KindSparkplug, KindProtobuf + ":MESSAGE.NAME"}

// Format is one decoder: an optional content encoding, a kind and, for
// protobuf, the full message name.
type Format struct {
	Encoding string // "", gzip, zlib or deflate
	Kind     string // one of the Kind constants
	Message  string // protobuf only: the full message name (acme.v1.Reading)
}

// String gives the format as the user writes it (gzip+protobuf:acme.v1.Reading).
func (f Format) String() string {
	s := f.Kind
	if f.Kind == KindProtobuf {
		s += ":" + f.Message
	}
	if f.Encoding != "" {
		s = f.Encoding + "+" + s
	}
	return s
}

// Binary reports whether the format's decoded value is new information
// (a binary or compressed payload): export prints it as `decoded`. Plain
// JSON and text payloads are already readable.
func (f Format) Binary() bool {
	return f.Encoding != "" || (f.Kind != KindJSON && f.Kind != KindText)
}

// ParseFormat reads a FORMAT: json, text, cbor, msgpack, sparkplug or
// protobuf:FULL.MESSAGE.NAME, optionally prefixed by gzip+, zlib+ or
// deflate+.
func ParseFormat(s string) (Format, error) {
	var f Format
	rest := s
	if enc, after, ok := strings.Cut(s, "+"); ok {
		found := false
		for _, e := range encodings {
			found = found || e == enc
		}
		if !found {
			return f, badFormat("unknown content encoding %q (use %s)", enc,
				strings.Join(encodings, "+, ")+"+")
		}
		f.Encoding, rest = enc, after
	}
	kind, msg, hasMsg := strings.Cut(rest, ":")
	switch kind {
	case KindJSON, KindText, KindCBOR, KindMsgpack, KindSparkplug:
		if hasMsg {
			return f, badFormat("%q: only protobuf takes a message name", s)
		}
	case KindProtobuf:
		if !hasMsg || !validFullName(msg) {
			return f, badFormat("%q: protobuf needs the full message name, e.g. protobuf:acme.v1.Reading", s)
		}
		f.Message = msg
	default:
		return f, badFormat("unknown format %q (use %s)", kind, strings.Join(kinds, ", "))
	}
	f.Kind = kind
	return f, nil
}

func validFullName(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return false
		}
		for i, r := range part {
			ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
			if !ok {
				return false
			}
		}
	}
	return true
}

// Rule maps the topics matching an MQTT filter to a format.
type Rule struct {
	Filter string
	Format Format
}

// String gives the rule as the user writes it (FILTER=FORMAT).
func (r Rule) String() string { return r.Filter + "=" + r.Format.String() }

// ParseRule reads FILTER=FORMAT. A topic filter may itself contain "=",
// a format never does: the last "=" splits them.
func ParseRule(s string) (Rule, error) {
	i := strings.LastIndex(s, "=")
	if i < 0 {
		return Rule{}, badFormat("%q: use FILTER=FORMAT, e.g. 'sensors/#=cbor'", s)
	}
	filter, format := s[:i], s[i+1:]
	if err := topic.ValidateFilter(filter); err != nil {
		return Rule{}, badFormat("%q: %v", s, err)
	}
	f, err := ParseFormat(format)
	if err != nil {
		return Rule{}, &kindError{ErrBadFormat, fmt.Sprintf("%q: %v", s, err)}
	}
	return Rule{Filter: filter, Format: f}, nil
}

// ParseRules reads each FILTER=FORMAT in order.
func ParseRules(ss []string) ([]Rule, error) {
	rules := make([]Rule, 0, len(ss))
	for _, s := range ss {
		r, err := ParseRule(s)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// FromContentType maps an MQTT 5 content type to a format: JSON, text/*,
// CBOR, MessagePack and protobuf with a messageType (or proto) parameter.
// ok is false for types it does not know, which fall back to the default.
func FromContentType(ct string) (f Format, ok bool) {
	media, params, _ := strings.Cut(ct, ";")
	media = strings.ToLower(strings.TrimSpace(media))
	switch {
	case media == "application/json" || strings.HasSuffix(media, "+json"):
		return Format{Kind: KindJSON}, true
	case strings.HasPrefix(media, "text/"):
		return Format{Kind: KindText}, true
	case media == "application/cbor" || strings.HasSuffix(media, "+cbor"):
		return Format{Kind: KindCBOR}, true
	case media == "application/msgpack" || media == "application/x-msgpack" || media == "application/vnd.msgpack":
		return Format{Kind: KindMsgpack}, true
	case media == "application/x-protobuf" || media == "application/protobuf" ||
		media == "application/vnd.google.protobuf" || media == "application/x-google-protobuf":
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			k = strings.ToLower(strings.TrimSpace(k))
			if k == "messagetype" || k == "proto" {
				return Format{Kind: KindProtobuf, Message: strings.Trim(strings.TrimSpace(v), `"`)}, true
			}
		}
	}
	return Format{}, false
}
