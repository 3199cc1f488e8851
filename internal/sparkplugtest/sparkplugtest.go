// Package sparkplugtest encodes Sparkplug B payloads for tests, straight
// from the specification's field numbers with protowire, independently of
// the schema mqtape decodes with, and plays a small edge node.
package sparkplugtest

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Sparkplug datatypes used in tests.
const (
	Int32   = 3
	Int64   = 4
	Float   = 9
	Double  = 10
	Boolean = 11
	String  = 12
)

// Metric is one metric to encode; zero fields are left out (Alias 0 too:
// use HasAlias).
type Metric struct {
	Name     string
	Alias    uint64
	HasAlias bool
	Datatype uint32 // 0: left out (data messages usually omit it)
	Value    any    // int32, int64, float32, float64, bool, string, nil (is_null)
}

// Payload encodes a Sparkplug B payload: timestamp (1), metrics (2), seq (3).
func Payload(timestamp, seq uint64, metrics ...Metric) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, timestamp)
	for _, m := range metrics {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, metric(m))
	}
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	return protowire.AppendVarint(b, seq)
}

func metric(m Metric) []byte {
	var b []byte
	if m.Name != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, m.Name)
	}
	if m.HasAlias {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, m.Alias)
	}
	if m.Datatype != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(m.Datatype))
	}
	switch v := m.Value.(type) {
	case nil:
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	case int32:
		b = protowire.AppendTag(b, 10, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(uint32(v)))
	case int64:
		b = protowire.AppendTag(b, 11, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v))
	case float32:
		b = protowire.AppendTag(b, 12, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(v))
	case float64:
		b = protowire.AppendTag(b, 13, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v))
	case bool:
		b = protowire.AppendTag(b, 14, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v))
	case string:
		b = protowire.AppendTag(b, 15, protowire.BytesType)
		b = protowire.AppendString(b, v)
	default:
		panic("sparkplugtest: unsupported value type")
	}
	return b
}

// Message is one message an edge node sends.
type Message struct {
	Topic   string
	Payload []byte
}

// EdgeNode is the session every Sparkplug test uses: edge node "edge1"
// in group "plant" with device "pump1". It sends an NBIRTH with names and
// aliases, NDATA with aliases only, a DBIRTH, DDATA with aliases only, a
// DDEATH, then a rebirth (NBIRTH with new aliases) and NDATA after it,
// seq counting on through them as the specification says — except that
// the last DDATA before the death skips one seq (a lost message).
func EdgeNode() []Message {
	const node, dev = "spBv1.0/plant/%s/edge1", "spBv1.0/plant/%s/edge1/pump1"
	n := func(kind string) string { return fmt.Sprintf(node, kind) }
	d := func(kind string) string { return fmt.Sprintf(dev, kind) }
	return []Message{
		{n("NBIRTH"), Payload(1000, 0,
			Metric{Name: "bdSeq", Datatype: Int64, Value: int64(0)},
			Metric{Name: "Node Control/Rebirth", Alias: 1, HasAlias: true, Datatype: Boolean, Value: false},
			Metric{Name: "Temperature", Alias: 2, HasAlias: true, Datatype: Float, Value: float32(20.5)})},
		{n("NDATA"), Payload(1001, 1, Metric{Alias: 2, HasAlias: true, Value: float32(21.75)})},
		{d("DBIRTH"), Payload(1002, 2,
			Metric{Name: "Running", Alias: 10, HasAlias: true, Datatype: Boolean, Value: false},
			Metric{Name: "Count", Alias: 11, HasAlias: true, Datatype: Int32, Value: int32(0)})},
		{d("DDATA"), Payload(1003, 3, Metric{Alias: 10, HasAlias: true, Value: true},
			Metric{Alias: 11, HasAlias: true, Value: int32(3)})},
		{d("DDATA"), Payload(1004, 5, Metric{Alias: 11, HasAlias: true, Value: int32(-4)})},
		{d("DDEATH"), Payload(1005, 6)},
		{n("NBIRTH"), Payload(1006, 0,
			Metric{Name: "bdSeq", Datatype: Int64, Value: int64(1)},
			Metric{Name: "Pressure", Alias: 2, HasAlias: true, Datatype: Double, Value: 1.5})},
		{n("NDATA"), Payload(1007, 1, Metric{Alias: 2, HasAlias: true, Value: 2.25})},
	}
}
