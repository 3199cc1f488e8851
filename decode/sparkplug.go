package decode

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// sparkplugProto is mqtape's own copy of the Sparkplug B payload schema
// (see the file's header for where it comes from).
//
//go:embed sparkplug_b.proto
var sparkplugProto string

// SparkplugPayloadName is the full name of the Sparkplug B payload message
// in mqtape's built-in schema.
const SparkplugPayloadName = "mqtape.sparkplug.b.Payload"

// SparkplugSchema is the built-in Sparkplug B schema, compiled once.
var SparkplugSchema = sync.OnceValue(func() *Schema {
	c := protocompile.Compiler{Resolver: &protocompile.SourceResolver{
		Accessor: protocompile.SourceAccessorFromMap(map[string]string{"mqtape/sparkplug_b.proto": sparkplugProto}),
	}}
	files, err := c.Compile(context.Background(), "mqtape/sparkplug_b.proto")
	if err != nil {
		panic("decode: built-in sparkplug_b.proto: " + err.Error()) // a fixed file: a test catches this
	}
	s := EmptySchema()
	if err := registerAll(s.files, files); err != nil {
		panic("decode: built-in sparkplug_b.proto: " + err.Error())
	}
	return newSchema(s.files)
})

// SparkplugDatatypes are the Sparkplug 3.0 datatype names by number.
var SparkplugDatatypes = []string{"Unknown", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
	"UInt64", "Float", "Double", "Boolean", "String", "DateTime", "Text", "UUID", "DataSet", "Bytes", "File",
	"Template", "PropertySet", "PropertySetList", "Int8Array", "Int16Array", "Int32Array", "Int64Array",
	"UInt8Array", "UInt16Array", "UInt32Array", "UInt64Array", "FloatArray", "DoubleArray", "BooleanArray",
	"StringArray", "DateTimeArray"}

func datatypeName(t uint32) string {
	if int(t) < len(SparkplugDatatypes) {
		return SparkplugDatatypes[t]
	}
	return fmt.Sprintf("Unknown(%d)", t)
}

// SparkplugPayload is a decoded Sparkplug B payload as export writes it.
type SparkplugPayload struct {
	Timestamp *uint64           `json:"timestamp,omitempty"`
	Seq       *uint64           `json:"seq,omitempty"`
	UUID      string            `json:"uuid,omitempty"`
	Body      []byte            `json:"body,omitempty"`
	Metrics   []SparkplugMetric `json:"metrics"`
	// SeqGap: seq does not follow the previous message of this edge node.
	SeqGap bool `json:"seq_gap,omitempty"`
	// UnresolvedAlias: a metric carries only an alias that no birth in
	// the capture (so far) named.
	UnresolvedAlias bool `json:"unresolved_alias,omitempty"`
}

// SparkplugMetric is one metric, its name and datatype resolved from the
// latest birth when the message carries only an alias.
type SparkplugMetric struct {
	Name         string         `json:"name,omitempty"`
	Alias        *uint64        `json:"alias,omitempty"`
	Datatype     string         `json:"datatype,omitempty"`
	Value        any            `json:"value"`
	Timestamp    *uint64        `json:"timestamp,omitempty"`
	IsHistorical bool           `json:"is_historical,omitempty"`
	IsTransient  bool           `json:"is_transient,omitempty"`
	IsNull       bool           `json:"is_null,omitempty"`
	Properties   map[string]any `json:"properties,omitempty"`
	Metadata     any            `json:"metadata,omitempty"`
}

// sparkplugTopic is a parsed spBv1.0/GROUP/TYPE/EDGE[/DEVICE].
type sparkplugTopic struct {
	kind       string // NBIRTH, NDATA, …
	node, unit string // group/edge; group/edge/device (or the node for node messages)
}

func parseSparkplugTopic(name string) (sparkplugTopic, bool) {
	levels := strings.Split(name, "/")
	if len(levels) < 4 || len(levels) > 5 {
		return sparkplugTopic{}, false
	}
	t := sparkplugTopic{kind: levels[2], node: levels[1] + "/" + levels[3]}
	t.unit = t.node
	if len(levels) == 5 {
		t.unit += "/" + levels[4]
	}
	return t, true
}

type birthMetric struct {
	name     string
	datatype uint32
}

// sparkplugState is what decoding needs from earlier messages.
type sparkplugState struct {
	aliases map[string]map[uint64]birthMetric // by unit: the latest birth's aliases
	seq     map[string]uint64                 // by edge node: the last seq
	// ignoreSeq: no seq_gap judgements (the decoder does not see every message).
	ignoreSeq bool
}

func newSparkplugState() sparkplugState {
	return sparkplugState{aliases: map[string]map[uint64]birthMetric{}, seq: map[string]uint64{}}
}

func (st *sparkplugState) decode(name string, b []byte) (any, error) {
	s := SparkplugSchema()
	md, _ := s.Message(SparkplugPayloadName)
	m, err := s.unmarshal(md, b)
	if err != nil {
		return nil, err
	}
	t, known := parseSparkplugTopic(name)
	p := SparkplugPayload{Metrics: []SparkplugMetric{}}
	f := md.Fields()
	if m.Has(f.ByName("timestamp")) {
		v := m.Get(f.ByName("timestamp")).Uint()
		p.Timestamp = &v
	}
	if m.Has(f.ByName("seq")) {
		v := m.Get(f.ByName("seq")).Uint()
		p.Seq = &v
	}
	p.UUID = m.Get(f.ByName("uuid")).String()
	p.Body = m.Get(f.ByName("body")).Bytes()
	if known && !st.ignoreSeq {
		p.SeqGap = st.sequence(t, p.Seq)
	}
	birth := known && (t.kind == "NBIRTH" || t.kind == "DBIRTH")
	if birth {
		if t.kind == "NBIRTH" {
			for unit := range st.aliases {
				if unit == t.node || strings.HasPrefix(unit, t.node+"/") {
					delete(st.aliases, unit)
				}
			}
		}
		st.aliases[t.unit] = map[uint64]birthMetric{}
	}
	list := m.Get(f.ByName("metrics")).List()
	for i := range list.Len() {
		sm := sparkplugMetric(list.Get(i).Message())
		switch {
		case birth && sm.alias != nil && sm.Name != "":
			st.aliases[t.unit][*sm.alias] = birthMetric{name: sm.Name, datatype: sm.datatype}
		case sm.Name == "" && sm.alias != nil:
			b, ok := st.lookup(t, known, *sm.alias)
			if ok {
				sm.Name = b.name
				if !sm.hasType {
					sm.datatype, sm.hasType = b.datatype, true
				}
			} else {
				p.UnresolvedAlias = true
			}
		}
		p.Metrics = append(p.Metrics, sm.finish())
	}
	return p, nil
}

// sequence records an edge node's seq and tells whether it skipped: every
// message of an edge node but its NDEATH carries the next seq (mod 256),
// and an NBIRTH starts afresh.
func (st *sparkplugState) sequence(t sparkplugTopic, seq *uint64) bool {
	switch t.kind {
	case "NDEATH":
		delete(st.seq, t.node)
		return false
	case "NBIRTH", "NDATA", "DBIRTH", "DDATA", "DDEATH":
	default:
		return false
	}
	if seq == nil {
		return false
	}
	prev, seen := st.seq[t.node]
	st.seq[t.node] = *seq
	return t.kind != "NBIRTH" && seen && *seq != (prev+1)%256
}

// lookup finds an alias in the unit's latest birth, then (aliases are
// unique across an edge node) in its node's.
func (st *sparkplugState) lookup(t sparkplugTopic, known bool, alias uint64) (birthMetric, bool) {
	if !known {
		return birthMetric{}, false
	}
	if b, ok := st.aliases[t.unit][alias]; ok {
		return b, true
	}
	b, ok := st.aliases[t.node][alias]
	return b, ok
}

// metricDraft is a metric before its datatype is final.
type metricDraft struct {
	SparkplugMetric
	alias    *uint64
	datatype uint32
	hasType  bool
	m        protoreflect.Message
}

func sparkplugMetric(m protoreflect.Message) metricDraft {
	f := m.Descriptor().Fields()
	d := metricDraft{m: m}
	d.Name = m.Get(f.ByName("name")).String()
	if m.Has(f.ByName("alias")) {
		v := m.Get(f.ByName("alias")).Uint()
		d.alias = &v
	}
	if m.Has(f.ByName("timestamp")) {
		v := m.Get(f.ByName("timestamp")).Uint()
		d.Timestamp = &v
	}
	if m.Has(f.ByName("datatype")) {
		d.datatype, d.hasType = uint32(m.Get(f.ByName("datatype")).Uint()), true
	}
	d.IsHistorical = m.Get(f.ByName("is_historical")).Bool()
	d.IsTransient = m.Get(f.ByName("is_transient")).Bool()
	d.IsNull = m.Get(f.ByName("is_null")).Bool()
	if m.Has(f.ByName("properties")) {
		d.Properties = propertySet(m.Get(f.ByName("properties")).Message())
	}
	if m.Has(f.ByName("metadata")) {
		d.Metadata = protoObject(m.Get(f.ByName("metadata")).Message())
	}
	return d
}

func (d metricDraft) finish() SparkplugMetric {
	out := d.SparkplugMetric
	out.Alias = d.alias
	if d.hasType {
		out.Datatype = datatypeName(d.datatype)
	}
	if !d.IsNull {
		out.Value = sparkplugValue(d.m, d.datatype)
	}
	return out
}

// sparkplugValue reads the metric's value as its datatype says: narrow
// signed integers are stored two's complement in the unsigned fields,
// arrays little-endian in bytes_value.
func sparkplugValue(m protoreflect.Message, datatype uint32) any {
	oneof := m.WhichOneof(m.Descriptor().Oneofs().ByName("value"))
	if oneof == nil {
		return nil
	}
	v := m.Get(oneof)
	switch oneof.Name() {
	case "int_value":
		u := uint32(v.Uint())
		switch datatype {
		case 1:
			return int8(u)
		case 2:
			return int16(u)
		case 3:
			return int32(u)
		}
		return u
	case "long_value":
		if datatype == 4 || datatype == 1 || datatype == 2 || datatype == 3 {
			return int64(v.Uint())
		}
		return v.Uint()
	case "float_value", "double_value":
		return floatSafe(v.Float())
	case "boolean_value":
		return v.Bool()
	case "string_value":
		return v.String()
	case "bytes_value":
		if arr, ok := sparkplugArray(datatype, v.Bytes()); ok {
			return arr
		}
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case "dataset_value", "template_value":
		return protoObject(v.Message())
	}
	return nil
}

// sparkplugArray decodes the Sparkplug 3.0 array datatypes (22–34).
func sparkplugArray(datatype uint32, b []byte) ([]any, bool) {
	le := binary.LittleEndian
	width := map[uint32]int{22: 1, 23: 2, 24: 4, 25: 8, 26: 1, 27: 2, 28: 4, 29: 8, 30: 4, 31: 8, 34: 8}[datatype]
	switch {
	case width > 0:
		if len(b)%width != 0 {
			return nil, false
		}
		out := make([]any, 0, len(b)/width)
		for i := 0; i < len(b); i += width {
			c := b[i : i+width]
			var x any
			switch datatype {
			case 22:
				x = int8(c[0])
			case 23:
				x = int16(le.Uint16(c))
			case 24:
				x = int32(le.Uint32(c))
			case 25, 34:
				x = int64(le.Uint64(c))
			case 26:
				x = c[0]
			case 27:
				x = le.Uint16(c)
			case 28:
				x = le.Uint32(c)
			case 29:
				x = le.Uint64(c)
			case 30:
				x = floatSafe(float64(math.Float32frombits(le.Uint32(c))))
			case 31:
				x = floatSafe(math.Float64frombits(le.Uint64(c)))
			}
			out = append(out, x)
		}
		return out, true
	case datatype == 32: // a uint32 count, then the bits, most significant first
		if len(b) < 4 {
			return nil, false
		}
		n := int(le.Uint32(b))
		if n > (len(b)-4)*8 {
			return nil, false
		}
		out := make([]any, n)
		for i := range n {
			out[i] = b[4+i/8]&(0x80>>(i%8)) != 0
		}
		return out, true
	case datatype == 33: // NUL-terminated strings
		out := []any{}
		for _, s := range strings.SplitAfter(string(b), "\x00") {
			if s != "" {
				out = append(out, strings.TrimSuffix(s, "\x00"))
			}
		}
		return out, true
	}
	return nil, false
}

// propertySet turns a PropertySet into an object of its keys.
func propertySet(m protoreflect.Message) map[string]any {
	f := m.Descriptor().Fields()
	keys, values := m.Get(f.ByName("keys")).List(), m.Get(f.ByName("values")).List()
	out := make(map[string]any, keys.Len())
	for i := range keys.Len() {
		if i >= values.Len() {
			out[keys.Get(i).String()] = nil
			continue
		}
		pv := values.Get(i).Message()
		pf := pv.Descriptor().Fields()
		if pv.Get(pf.ByName("is_null")).Bool() {
			out[keys.Get(i).String()] = nil
			continue
		}
		oneof := pv.WhichOneof(pv.Descriptor().Oneofs().ByName("value"))
		switch {
		case oneof == nil:
			out[keys.Get(i).String()] = nil
		case oneof.Name() == "propertyset_value":
			out[keys.Get(i).String()] = propertySet(pv.Get(oneof).Message())
		case oneof.Name() == "propertysets_value":
			out[keys.Get(i).String()] = protoObject(pv.Get(oneof).Message())
		default:
			out[keys.Get(i).String()] = sparkplugValue(pv, uint32(pv.Get(pf.ByName("type")).Uint()))
		}
	}
	return out
}

// protoObject writes a nested message (a DataSet, a Template, metadata)
// as protojson does, with the schema's field names.
func protoObject(m protoreflect.Message) any {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m.Interface())
	if err != nil {
		return nil
	}
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return nil
	}
	return json.RawMessage(buf.Bytes())
}
