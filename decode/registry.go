package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/topic"
)

// SparkplugNamespace is the topic prefix of Sparkplug B (spBv1.0/GROUP/TYPE/EDGE[/DEVICE]).
const SparkplugNamespace = "spBv1.0/"

// Registry chooses a decoder for each message, in this order: the first
// user rule whose filter matches the topic; Sparkplug B for topics in the
// spBv1.0/ namespace (but not spBv1.0/STATE/, whose payload is JSON); the
// MQTT 5 content type; else none, and callers keep their default (JSON if
// it parses, text if UTF-8, hex).
type Registry struct {
	rules  []Rule
	schema *Schema
}

// NewRegistry checks that every protobuf rule names a message type the
// schema defines (nil: no schema).
func NewRegistry(rules []Rule, schema *Schema) (*Registry, error) {
	if schema == nil {
		schema = EmptySchema()
	}
	for _, r := range rules {
		if r.Format.Kind == KindProtobuf {
			if _, err := schema.Message(r.Format.Message); err != nil {
				return nil, &kindError{ErrBadFormat, fmt.Sprintf("%s: %v", r, err)}
			}
		}
	}
	return &Registry{rules: rules, schema: schema}, nil
}

// Rules are the user's rules in order.
func (r *Registry) Rules() []Rule { return r.rules }

// Schema is the protobuf schema the registry decodes with.
func (r *Registry) Schema() *Schema { return r.schema }

// Select tells which format decodes a message; ok is false when none is
// selected and the caller's default applies.
func (r *Registry) Select(name string, props *mqtt.Properties) (f Format, ok bool) {
	for _, rule := range r.rules {
		if topic.Match(rule.Filter, name) {
			return rule.Format, true
		}
	}
	if strings.HasPrefix(name, SparkplugNamespace) && !strings.HasPrefix(name, SparkplugNamespace+"STATE/") {
		return Format{Kind: KindSparkplug}, true
	}
	if props != nil && props.ContentType != "" {
		return FromContentType(props.ContentType)
	}
	return Format{}, false
}

// Result is what decoding one message gave.
type Result struct {
	Format   Format
	Selected bool            // a decoder was selected (else the caller's default applies)
	Value    json.RawMessage // the decoded value as compact JSON; nil when Err is set or nothing was selected
	Err      error           // the selected decoder failed on this payload
	// Raw is the payload with its content encoding undone (the protobuf
	// bytes of a gzip+protobuf message): what the decoder read. Set, as
	// Value, only when decoding succeeded; it may share the payload's bytes.
	Raw []byte
	// Schema is the protobuf schema the message was decoded with (protobuf
	// only, when decoding succeeded): Schema.DescriptorSet(Format.Message)
	// describes Raw.
	Schema *Schema
}

// Decoder decodes the messages of one capture in seq order. It remembers
// what later messages need: the metric names and datatypes of each
// Sparkplug edge node's and device's latest birth, and each edge node's
// last seq. Not safe for concurrent use.
type Decoder struct {
	reg *Registry
	sp  sparkplugState
}

// NewDecoder starts a decoder on a stream of messages.
func (r *Registry) NewDecoder() *Decoder {
	return &Decoder{reg: r, sp: newSparkplugState()}
}

// IgnoreSeq stops the decoder judging Sparkplug seq gaps: for a caller that
// feeds it only some of the messages before the one it decodes.
func (d *Decoder) IgnoreSeq() { d.sp.ignoreSeq = true }

// Decode decodes one message. A failing decoder gives Result.Err; it never
// panics on any payload.
func (d *Decoder) Decode(name string, props *mqtt.Properties, payload []byte) Result {
	f, ok := d.reg.Select(name, props)
	if !ok {
		return Result{}
	}
	res := Result{Format: f, Selected: true}
	b, err := decompress(f.Encoding, payload)
	var v json.RawMessage
	if err == nil {
		v, err = d.decode(f, name, b)
	}
	if err != nil {
		res.Err = fmt.Errorf("%s: %w", f, err)
		return res
	}
	res.Value, res.Raw = v, b
	if f.Kind == KindProtobuf {
		res.Schema = d.reg.schema
	}
	return res
}

// decode reads b, the payload with its content encoding undone.
func (d *Decoder) decode(f Format, name string, b []byte) (json.RawMessage, error) {
	switch f.Kind {
	case KindJSON:
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return nil, fmt.Errorf("not JSON: %w", err)
		}
		return buf.Bytes(), nil
	case KindText:
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("not UTF-8 text")
		}
		return marshal(string(b))
	case KindCBOR:
		return marshalOrErr(decodeCBOR(b))
	case KindMsgpack:
		return marshalOrErr(decodeMsgpack(b))
	case KindSparkplug:
		return marshalOrErr(d.sp.decode(name, b))
	case KindProtobuf:
		return d.reg.schema.decodeProto(f.Message, b)
	}
	return nil, fmt.Errorf("unknown format %q", f)
}

func marshalOrErr(v any, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, err
	}
	return marshal(v)
}

func marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// decodeProto decodes a protobuf message of the named type and writes it
// as protojson does, with the .proto's own field names and every field,
// defaults included.
func (s *Schema) decodeProto(name string, b []byte) (json.RawMessage, error) {
	md, err := s.Message(name)
	if err != nil {
		return nil, err
	}
	m, err := s.unmarshal(md, b)
	if err != nil {
		return nil, err
	}
	out, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Resolver: s.types}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *Schema) unmarshal(md protoreflect.MessageDescriptor, b []byte) (*dynamicpb.Message, error) {
	m := dynamicpb.NewMessage(md)
	if err := (proto.UnmarshalOptions{Resolver: s.types, AllowPartial: true}).Unmarshal(b, m); err != nil {
		return nil, err
	}
	return m, nil
}

// WithStored returns a registry that decodes with r's rules first (the
// command line wins) and then a capture's stored rules (each FILTER=FORMAT),
// with r's schema plus the stored FileDescriptorSet (set may be nil). What
// the capture carries that cannot be used — a rule that does not parse or
// names a message type no schema defines, descriptors that do not load or
// clash with --proto — is left out, each with a note saying why.
func (r *Registry) WithStored(rules []string, set []byte) (*Registry, []string) {
	var notes []string
	schema := r.schema
	if len(set) > 0 {
		stored, err := UnmarshalSchema(set)
		if err == nil {
			merged := newSchema(new(protoregistry.Files))
			if err = merged.Merge(r.schema); err == nil {
				err = merged.Merge(stored)
			}
			if err == nil {
				schema = merged
			}
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("the capture's protobuf descriptors are not used: %v", err))
		}
	}
	out := &Registry{rules: slices.Clone(r.rules), schema: schema}
	for _, s := range rules {
		rule, err := ParseRule(s)
		if err == nil && rule.Format.Kind == KindProtobuf {
			_, err = schema.Message(rule.Format.Message)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("the capture's decoder %s is not used: %v", s, err))
			continue
		}
		out.rules = append(out.rules, rule)
	}
	return out, notes
}
