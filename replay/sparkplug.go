package replay

import (
	"context"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mqtape/mqtape/storage"
)

// Sparkplug B (spBv1.0/GROUP/TYPE/EDGE[/DEVICE]) needs two things from a
// replay that starts inside a recording: the births in force at the start
// (a Sparkplug host that sees data from a node it has no birth of asks it
// to rebirth), and, on request, seq numbers that follow on from them.

// sparkplugTopic parses a Sparkplug B topic: its message type and its
// edge node (GROUP/EDGE) and unit (the node, or GROUP/EDGE/DEVICE).
func sparkplugTopic(name string) (kind, node, unit string, ok bool) {
	rest, found := strings.CutPrefix(name, "spBv1.0/")
	if !found {
		return "", "", "", false
	}
	l := strings.Split(rest, "/")
	if len(l) < 3 || len(l) > 4 {
		return "", "", "", false
	}
	kind, node = l[1], l[0]+"/"+l[2]
	unit = node
	if len(l) == 4 {
		unit += "/" + l[3]
	}
	switch kind {
	case "NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA":
		return kind, node, unit, true
	}
	return "", "", "", false
}

// birthsInForce collects, in seq order, the births in force after the
// messages given to add: each node's latest NBIRTH (unless an NDEATH came
// after it) and the DBIRTHs of its devices that came after that NBIRTH
// (unless a DDEATH came after them).
type birthsInForce struct {
	node   map[string]*storage.Message // by edge node: its NBIRTH, nil after NDEATH
	device map[string]*storage.Message // by unit: its DBIRTH, nil after DDEATH
}

func (b *birthsInForce) add(m storage.Message) {
	kind, node, unit, ok := sparkplugTopic(m.Topic)
	if !ok {
		return
	}
	switch kind {
	case "NBIRTH":
		b.node[node] = &m
		for u := range b.device {
			if strings.HasPrefix(u, node+"/") {
				delete(b.device, u) // a rebirth: its devices are born again
			}
		}
	case "NDEATH":
		b.node[node] = nil
	case "DBIRTH":
		b.device[unit] = &m
	case "DDEATH":
		b.device[unit] = nil
	}
}

// list is the births in force, in their seq order; a device's birth only
// while its node's is.
func (b *birthsInForce) list() []storage.Message {
	var out []storage.Message
	for node, m := range b.node {
		if m == nil {
			continue
		}
		out = append(out, *m)
		for u, d := range b.device {
			if d != nil && strings.HasPrefix(u, node+"/") {
				out = append(out, *d)
			}
		}
	}
	for i := 1; i < len(out); i++ { // few messages: insertion sort by seq
		for j := i; j > 0 && out[j].Seq < out[j-1].Seq; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// produceBirths emits, when the selection starts inside the session (a
// --from), the Sparkplug B births in force at its start, to be published
// at once, before anything timed.
func (p *Player) produceBirths(ctx context.Context, session int64, pass int, emit func(item) bool, flush func(error) bool) bool {
	q := p.cfg.Query
	if q.FromOffset == nil && q.FromTime == nil {
		return true
	}
	bq := storage.Query{Session: session, ToOffset: q.FromOffset, ToTime: q.FromTime, Match: func(name string) bool {
		kind, _, _, ok := sparkplugTopic(name)
		return ok && (strings.HasSuffix(kind, "BIRTH") || strings.HasSuffix(kind, "DEATH"))
	}}
	b := birthsInForce{node: map[string]*storage.Message{}, device: map[string]*storage.Message{}}
	for m, err := range p.src.Messages(ctx, bq) {
		if err != nil {
			flush(err)
			return false
		}
		b.add(m)
	}
	for _, m := range b.list() {
		if !emit(item{kind: itemBirth, pass: pass, m: m}) {
			return false
		}
	}
	return true
}

// seqRenumber rewrites the seq of Sparkplug B payloads so that each edge
// node's messages count on from its NBIRTH (seq 0) as published, whatever
// the replay left out (--from, -t, --max-gap do not change it, but a
// selection does).
type seqRenumber struct {
	next map[string]uint64 // by edge node: the seq of its next message
}

// payload returns m's payload with its seq renumbered; other messages,
// NDEATH (which has no seq) and payloads that do not parse as protobuf
// stay as they are.
func (r *seqRenumber) payload(m *storage.Message) []byte {
	kind, node, _, ok := sparkplugTopic(m.Topic)
	if !ok || kind == "NDEATH" {
		return m.Payload
	}
	seq, seen := r.next[node]
	if kind == "NBIRTH" || !seen {
		seq = 0
	}
	if kind != "NBIRTH" && !seen {
		// No birth published yet: keep the recorded seq and follow on from it.
		if s, ok := payloadSeq(m.Payload); ok {
			seq = s
		}
	}
	out, ok := withSeq(m.Payload, seq)
	if !ok {
		return m.Payload
	}
	r.next[node] = (seq + 1) % 256
	return out
}

// payloadSeq reads field 3 (seq) of a Sparkplug B payload.
func payloadSeq(b []byte) (uint64, bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
		if num == 3 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			return v, n >= 0
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return 0, false
		}
		b = b[n:]
	}
	return 0, false
}

// withSeq returns a copy of a Sparkplug B payload with seq (field 3) set,
// every other field kept as it was; ok is false when it does not parse.
func withSeq(b []byte, seq uint64) ([]byte, bool) {
	out := make([]byte, 0, len(b)+3)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, false
		}
		if num != 3 {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	out = protowire.AppendTag(out, 3, protowire.VarintType)
	return protowire.AppendVarint(out, seq), true
}
