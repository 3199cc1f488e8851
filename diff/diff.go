// Package diff compares two mqtape captures for regression checks: topics
// only on one side, per-topic count, rate and size changes beyond
// tolerances, message-by-message payload differences per topic (JSON-aware,
// field by field, with ignored fields) and differences in the retained state
// the captures leave behind.
//
// Capture A is the baseline ("expected"), B the one under test ("actual").
// Within each topic the live messages of A and B are aligned in order (a
// shortest edit script over their normalised payloads), so one lost message
// shows as one missing message rather than as every later message changed.
// A message that only moved within its topic (MQTT orders messages only per
// publisher and QoS, so two recordings of the same traffic may interleave
// differently) is paired with its counterpart as "moved", a difference only
// with Options.StrictOrder.
// Messages sent from the broker's retained store (from_store) are not live
// traffic: they are compared as retained state only. mqtape play publishes a
// capture's retained-store messages with retain=1 before its live traffic,
// so a recording of the replay sees them as its first live messages: on a
// topic where one side has a retained-store message and the other side
// none, the other side's first live message on the topic is taken as its
// retained state at the start (not as live traffic) when it has the same
// payload and that side has exactly one live message more on the topic.
// Packet ids, dup flags,
// session layout and absolute times are never compared: two recordings of
// the same deterministic traffic compare equal with the default Options.
// MQTT 5 properties (Message.Props) are not compared yet: a message's
// identity is its QoS, retain flag and normalised payload (see scan).
package diff

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"iter"
	"math"
	"runtime"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// Source is a capture to compare; *storage.Capture implements it.
// Compare reads payloads over bigPayload bytes through Payload only.
type Source interface {
	Messages(ctx context.Context, q storage.Query) iter.Seq2[storage.Message, error]
	Payload(ctx context.Context, seq int64, fn func(p []byte) error) error
}

// bigPayload is the size above which a payload is read on its own, one at
// a time across both captures, and kept only while it is hashed or
// previewed: the two sides are scanned at once, and each holding a huge
// payload (SQLite's copy and mqtape's) would take four times its size.
// Such payloads are compared byte by byte, not as JSON: a parsed document
// takes many times its size.
const bigPayload = 1 << 20

// Defaults for Options.
const (
	DefaultRateTolerance = 0.10
	DefaultSizeTolerance = 0.10
	DefaultMaxDetails    = 10
	// MinRateSpan is the shortest span of a topic (first to last message, on
	// both sides) over which its rate is compared: shorter bursts have no
	// meaningful rate.
	MinRateSpan = 1e9
)

// Options control a comparison. The zero Options are strict about counts and
// payloads, use the default tolerances for rates and sizes, and compare
// every topic.
type Options struct {
	// Query selects messages on both sides (topics, sessions, offsets);
	// the zero Query selects everything.
	Query storage.Query
	// RateTolerance is the relative per-topic rate change tolerated
	// (0.10 = 10 %); 0 means DefaultRateTolerance, negative means none.
	RateTolerance float64
	// SizeTolerance is the relative change of a topic's mean payload size
	// tolerated; 0 means DefaultSizeTolerance, negative means none.
	SizeTolerance float64
	// CountTolerance is how many messages per topic may be missing from B
	// or extra in B without the topic counting as different.
	CountTolerance int64
	// IgnoreTiming skips the rate comparison.
	IgnoreTiming bool
	// IgnoreFields are JSON fields left out of payload comparisons.
	IgnoreFields []Path
	// MaxDetails bounds the message differences listed per topic (0:
	// DefaultMaxDetails, negative: none); the counts are always complete.
	MaxDetails int
	// StrictOrder makes messages that moved within their topic a
	// difference; by default they are listed but tolerated.
	StrictOrder bool
}

func (o *Options) norm() {
	if o.RateTolerance == 0 {
		o.RateTolerance = DefaultRateTolerance
	}
	if o.SizeTolerance == 0 {
		o.SizeTolerance = DefaultSizeTolerance
	}
	if o.MaxDetails == 0 {
		o.MaxDetails = DefaultMaxDetails
	}
	if o.MaxDetails < 0 {
		o.MaxDetails = 0
	}
}

// Report is the result of a comparison. Equal is true when no difference is
// beyond the tolerances.
type Report struct {
	A       Side          `json:"a"`
	B       Side          `json:"b"`
	Equal   bool          `json:"equal"`
	OnlyInA []TopicCount  `json:"only_in_a"` // topics with live messages only in A
	OnlyInB []TopicCount  `json:"only_in_b"`
	Topics  []TopicDiff   `json:"topics"` // topics on both sides that differ (beyond tolerances or not)
	Retain  []RetainDiff  `json:"retained"`
	Options ReportOptions `json:"options"`
}

// Side summarises one capture.
type Side struct {
	Name     string `json:"name"`
	Messages int64  `json:"messages"` // live messages selected
	Topics   int    `json:"topics"`
	Retained int    `json:"retained"` // topics with a retained message at the end
}

// ReportOptions echo the options in effect.
type ReportOptions struct {
	RateTolerance  float64  `json:"rate_tolerance"`
	SizeTolerance  float64  `json:"size_tolerance"`
	CountTolerance int64    `json:"count_tolerance"`
	IgnoreTiming   bool     `json:"ignore_timing"`
	IgnoreFields   []string `json:"ignore_fields"`
	StrictOrder    bool     `json:"strict_order"`
}

// TopicCount is a topic and its number of live messages.
type TopicCount struct {
	Topic string `json:"topic"`
	Count int64  `json:"count"`
}

// TopicDiff describes a topic present on both sides whose messages differ.
type TopicDiff struct {
	Topic string `json:"topic"`
	// Significant: the differences go beyond the tolerances.
	Significant bool  `json:"significant"`
	CountA      int64 `json:"count_a"`
	CountB      int64 `json:"count_b"`
	// CountChanged: |CountA-CountB| > CountTolerance.
	CountChanged bool `json:"count_changed"`
	// RateA and RateB are messages per second over the topic's span (0 when
	// not comparable: fewer than 2 messages or a span under MinRateSpan).
	RateA       float64 `json:"rate_a"`
	RateB       float64 `json:"rate_b"`
	RateChanged bool    `json:"rate_changed"`
	// SizeA and SizeB are mean payload sizes in bytes.
	SizeA       float64 `json:"size_a"`
	SizeB       float64 `json:"size_b"`
	SizeChanged bool    `json:"size_changed"`
	// Changed counts aligned message pairs whose payload (or QoS or retain
	// flag) differs; Missing messages of A with no counterpart in B; Extra
	// messages of B with no counterpart in A; Moved identical messages at
	// another place in the topic's order (significant only with
	// Options.StrictOrder).
	Changed  int64         `json:"changed"`
	Missing  int64         `json:"missing"`
	Extra    int64         `json:"extra"`
	Moved    int64         `json:"moved"`
	Messages []MessageDiff `json:"messages,omitempty"` // the first Options.MaxDetails
}

// MessageDiff is one message-level difference within a topic.
type MessageDiff struct {
	Kind string `json:"kind"` // "changed", "missing" (only in A), "extra" (only in B) or "moved"
	// IndexA/IndexB are 1-based positions among the topic's live messages
	// (0: none); SeqA/SeqB the capture sequence numbers.
	IndexA int   `json:"index_a,omitempty"`
	IndexB int   `json:"index_b,omitempty"`
	SeqA   int64 `json:"seq_a,omitempty"`
	SeqB   int64 `json:"seq_b,omitempty"`
	// Fields are the JSON-level differences when both payloads are JSON
	// documents (QoS and retain differences appear as "(qos)" and "(retain)").
	Fields     []FieldDiff `json:"fields,omitempty"`
	MoreFields bool        `json:"more_fields,omitempty"`
	// PayloadA/PayloadB preview the payloads when they are not both JSON
	// (or for missing/extra messages).
	PayloadA string `json:"payload_a,omitempty"`
	PayloadB string `json:"payload_b,omitempty"`
}

// RetainDiff is a topic whose retained message at the end of the captures
// differs: Kind "only_in_a", "only_in_b" or "changed".
type RetainDiff struct {
	Topic      string      `json:"topic"`
	Kind       string      `json:"kind"`
	Fields     []FieldDiff `json:"fields,omitempty"`
	MoreFields bool        `json:"more_fields,omitempty"`
	PayloadA   string      `json:"payload_a,omitempty"`
	PayloadB   string      `json:"payload_b,omitempty"`
}

// topicAcc accumulates one topic of one side.
type topicAcc struct {
	hashes        []uint64 // per live message: QoS, retain and normalised payload
	seqs          []int64
	bytes         int64
	first, last   int64
	retained      bool // has a retained message at the end
	retainSeq     int64
	retainPayload uint64
	// The retained-store message (the latest one), and the first live
	// message's payload hash and size: see restoredState.
	storeSeq     int64
	storePayload uint64
	firstPayload uint64
	firstBytes   int64
	secondTime   int64 // time of the second live message
}

type side struct {
	name   string
	src    Source
	topics map[string]*topicAcc
	live   int64
}

// comparer holds one comparison's state.
type comparer struct {
	opts   Options
	seed   maphash.Seed
	a, b   *side
	report Report
	big    sync.Mutex // held while a payload over bigPayload is read
}

// Compare compares capture a (the baseline) with capture b. nameA and nameB
// label them in the report.
func Compare(ctx context.Context, a Source, nameA string, b Source, nameB string, opts Options) (*Report, error) {
	opts.norm()
	c := &comparer{opts: opts, seed: maphash.MakeSeed()}
	c.a = &side{name: nameA, src: a, topics: map[string]*topicAcc{}}
	c.b = &side{name: nameB, src: b, topics: map[string]*topicAcc{}}
	// The two sides are read at the same time (parsing JSON is most of the
	// work).
	var errA error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		errA = c.scan(ctx, c.a)
	}()
	errB := c.scan(ctx, c.b)
	wg.Wait()
	if err := cmp.Or(errA, errB); err != nil {
		return nil, err
	}
	r := &c.report
	r.Options = ReportOptions{RateTolerance: opts.RateTolerance, SizeTolerance: opts.SizeTolerance,
		CountTolerance: opts.CountTolerance, IgnoreTiming: opts.IgnoreTiming, IgnoreFields: []string{},
		StrictOrder: opts.StrictOrder}
	for _, p := range opts.IgnoreFields {
		r.Options.IgnoreFields = append(r.Options.IgnoreFields, p.String())
	}
	for name, ta := range c.a.topics {
		if tb := c.b.topics[name]; tb != nil {
			restoredState(c.a, ta, tb)
			restoredState(c.b, tb, ta)
		}
	}
	r.A, r.B = c.summary(c.a), c.summary(c.b)
	r.OnlyInA, r.OnlyInB, r.Topics, r.Retain = []TopicCount{}, []TopicCount{}, []TopicDiff{}, []RetainDiff{}
	for _, name := range unionKeys(c.a.topics, c.b.topics) {
		ta, tb := c.a.topics[name], c.b.topics[name]
		na, nb := liveCount(ta), liveCount(tb)
		switch {
		case na > 0 && nb == 0:
			r.OnlyInA = append(r.OnlyInA, TopicCount{name, na})
		case nb > 0 && na == 0:
			r.OnlyInB = append(r.OnlyInB, TopicCount{name, nb})
		case na > 0 && nb > 0:
			td, err := c.compareTopic(ctx, name, ta, tb)
			if err != nil {
				return nil, err
			}
			if td != nil {
				r.Topics = append(r.Topics, *td)
			}
		}
		if err := c.compareRetained(ctx, name, ta, tb); err != nil {
			return nil, err
		}
	}
	r.Equal = len(r.OnlyInA) == 0 && len(r.OnlyInB) == 0 && len(r.Retain) == 0
	for _, t := range r.Topics {
		r.Equal = r.Equal && !t.Significant
	}
	return r, nil
}

// restoredState recognises the retained state mqtape play restored (see the
// package comment): when other has a retained-store message on the topic
// and t's first live message has the same payload while t has exactly one
// live message more, that message is t's retained state at the start, not
// live traffic. When t has a retained-store message of its own with that
// payload (a replay into a broker that already held the state, e.g. from an
// earlier replay), the restore is a repeat of it and is dropped. The hashes
// compare payloads only: the retain flag of a live message depends on the
// recording's protocol version.
func restoredState(s *side, t, other *topicAcc) {
	if other.storeSeq == 0 || len(t.hashes) != len(other.hashes)+1 || t.firstPayload != other.storePayload ||
		(t.storeSeq != 0 && t.storePayload != other.storePayload) {
		return
	}
	if seq := t.seqs[0]; t.storeSeq == 0 {
		t.storeSeq, t.storePayload = seq, t.firstPayload
		if t.retainSeq < seq { // no later retained message replaced it
			t.retained, t.retainSeq, t.retainPayload = t.firstBytes > 0, seq, t.firstPayload
		}
	}
	t.hashes, t.seqs = t.hashes[1:], t.seqs[1:]
	t.bytes -= t.firstBytes
	t.first = t.secondTime
	s.live--
}

func liveCount(t *topicAcc) int64 {
	if t == nil {
		return 0
	}
	return int64(len(t.hashes))
}

func unionKeys(a, b map[string]*topicAcc) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (c *comparer) summary(s *side) Side {
	out := Side{Name: s.name, Messages: s.live}
	for _, t := range s.topics {
		if len(t.hashes) > 0 {
			out.Topics++
		}
		if t.retained {
			out.Retained++
		}
	}
	return out
}

// scan reads one side once, in seq order, keeping per message only its hash
// and seq (payloads are fetched again for the differences reported).
func (c *comparer) scan(ctx context.Context, s *side) error {
	q := c.opts.Query
	q.MaxPayload = bigPayload
	for m, err := range s.src.Messages(ctx, q) {
		if err != nil {
			return err
		}
		t := s.topics[m.Topic]
		if t == nil {
			t = &topicAcc{first: m.TimeNS}
			s.topics[m.Topic] = t
		}
		var ph uint64
		size := len(m.Payload)
		if m.PayloadOmitted {
			err = c.readBig(ctx, s, m.Seq, func(p []byte) { ph, size = c.payloadHash(p), len(p) })
		} else {
			ph = c.payloadHash(m.Payload)
		}
		if err != nil {
			return err
		}
		if m.Retain || m.FromStore {
			// The retained state: the latest retained message; an empty
			// retained payload clears it.
			t.retained, t.retainSeq, t.retainPayload = size > 0, m.Seq, ph
		}
		if m.FromStore {
			t.storeSeq, t.storePayload = m.Seq, ph
			continue // state at subscribe time, not live traffic
		}
		var h maphash.Hash
		h.SetSeed(c.seed)
		h.WriteByte(m.QoS)
		h.WriteByte(b2i(m.Retain))
		writeUint64(&h, ph)
		h.Write(propsKey(m.Props))
		switch len(t.hashes) {
		case 0:
			t.first, t.firstPayload, t.firstBytes = m.TimeNS, ph, int64(size)
		case 1:
			t.secondTime = m.TimeNS
		}
		t.hashes = append(t.hashes, h.Sum64())
		t.seqs = append(t.seqs, m.Seq)
		t.bytes += int64(size)
		t.last = m.TimeNS
		s.live++
	}
	return ctx.Err()
}

func b2i(b bool) byte {
	if b {
		return 1
	}
	return 0
}

func writeUint64(h *maphash.Hash, v uint64) {
	var b [8]byte
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	h.Write(b[:])
}

// collectAfter is the payload size after whose read readBig runs the
// garbage collector (a collection costs far less than reading it).
const collectAfter = 16 << 20

// readBig calls fn with a payload over bigPayload, holding c.big: at most
// one such payload is in memory at a time.
func (c *comparer) readBig(ctx context.Context, s *side, seq int64, fn func(p []byte)) error {
	c.big.Lock()
	defer c.big.Unlock()
	n := 0
	err := s.src.Payload(ctx, seq, func(p []byte) error {
		fn(p)
		n = len(p)
		return nil
	})
	if n >= collectAfter {
		// The driver's copy of the payload is garbage now. Collected at the
		// next read, it would still be in the heap beside that read's
		// copy: a diff with a huge payload in each capture peaked at 4× its
		// size (436 MB for 100 MiB) instead of 3×.
		runtime.GC()
	}
	return err
}

// payloadHash hashes a payload's normalised form: for JSON documents the
// canonical JSON without the ignored fields, otherwise the bytes.
func (c *comparer) payloadHash(p []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	if v, ok := parseJSON(p); ok {
		var b bytes.Buffer
		canonical(&b, prune(v, c.opts.IgnoreFields, nil))
		h.WriteByte('j')
		h.Write(b.Bytes())
	} else {
		h.WriteByte('b')
		h.Write(p)
	}
	return h.Sum64()
}

func rate(t *topicAcc) float64 {
	span := t.last - t.first
	if len(t.hashes) < 2 || span < MinRateSpan {
		return 0
	}
	return float64(len(t.hashes)-1) / (float64(span) / 1e9)
}

// relChange is |b-a| relative to a (the baseline); 1 when a is 0 and b not.
func relChange(a, b float64) float64 {
	switch {
	case a == b:
		return 0
	case a == 0:
		return 1
	}
	return math.Abs(b-a) / math.Abs(a)
}

func (c *comparer) compareTopic(ctx context.Context, name string, ta, tb *topicAcc) (*TopicDiff, error) {
	o := c.opts
	td := &TopicDiff{Topic: name, CountA: liveCount(ta), CountB: liveCount(tb)}
	td.CountChanged = absInt(td.CountA-td.CountB) > o.CountTolerance
	td.SizeA, td.SizeB = float64(ta.bytes)/float64(td.CountA), float64(tb.bytes)/float64(td.CountB)
	td.SizeChanged = o.SizeTolerance >= 0 && relChange(td.SizeA, td.SizeB) > o.SizeTolerance
	if !o.IgnoreTiming {
		td.RateA, td.RateB = rate(ta), rate(tb)
		// When the counts differ within the tolerance, the rate compares the
		// spans, so that the tolerated messages do not count twice.
		ra, rb := td.RateA, td.RateB
		if !td.CountChanged && rb > 0 {
			rb = rb * float64(td.CountA-1) / float64(td.CountB-1)
		}
		td.RateChanged = o.RateTolerance >= 0 && ra > 0 && rb > 0 && relChange(ra, rb) > o.RateTolerance
	}
	ops := align(ta.hashes, tb.hashes)
	for _, op := range ops {
		var md MessageDiff
		switch op.kind {
		case opEqual:
			continue
		case opChange:
			td.Changed++
			md = MessageDiff{Kind: "changed", IndexA: op.i + 1, IndexB: op.j + 1, SeqA: ta.seqs[op.i], SeqB: tb.seqs[op.j]}
		case opDelete:
			td.Missing++
			md = MessageDiff{Kind: "missing", IndexA: op.i + 1, SeqA: ta.seqs[op.i]}
		case opInsert:
			td.Extra++
			md = MessageDiff{Kind: "extra", IndexB: op.j + 1, SeqB: tb.seqs[op.j]}
		case opMove:
			td.Moved++
			md = MessageDiff{Kind: "moved", IndexA: op.i + 1, IndexB: op.j + 1, SeqA: ta.seqs[op.i], SeqB: tb.seqs[op.j]}
		}
		if len(td.Messages) < o.MaxDetails {
			if err := c.detail(ctx, &md); err != nil {
				return nil, err
			}
			td.Messages = append(td.Messages, md)
		}
	}
	td.Significant = td.CountChanged || td.RateChanged || td.SizeChanged || td.Changed > 0 ||
		td.Missing > o.CountTolerance || td.Extra > o.CountTolerance || (o.StrictOrder && td.Moved > 0)
	if !td.Significant && td.Missing == 0 && td.Extra == 0 && td.Moved == 0 && td.CountA == td.CountB {
		return nil, nil // identical (rate and size within tolerance are not news)
	}
	return td, nil
}

func absInt(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// shown is a message as a report needs it: its payload, or for a payload
// over bigPayload only its preview, length and hash.
type shown struct {
	storage.Message
	preview string
	size    int
	sum     uint64 // hash of the bytes of a payload over bigPayload
}

func (v *shown) previewText() string {
	if v.PayloadOmitted {
		return v.preview
	}
	return Preview(v.Payload)
}

// fetch reads message seq of one side for a report.
func (c *comparer) fetch(ctx context.Context, s *side, seq int64) (*shown, error) {
	var v *shown
	q := storage.Query{AfterSeq: seq - 1, BeforeSeq: seq + 1, MaxPayload: bigPayload}
	for m, err := range s.src.Messages(ctx, q) {
		if err != nil {
			return nil, err
		}
		v = &shown{Message: m, size: len(m.Payload)}
	}
	if v == nil {
		return nil, fmt.Errorf("read message seq %d of %q: %w", seq, s.name, storage.ErrCorrupt)
	}
	if v.PayloadOmitted {
		err := c.readBig(ctx, s, seq, func(p []byte) {
			v.preview, v.size, v.sum = Preview(p), len(p), maphash.Bytes(c.seed, p)
		})
		if err != nil {
			return nil, err
		}
	}
	return v, nil
}

// detail fetches the payloads of a message difference and describes it.
func (c *comparer) detail(ctx context.Context, md *MessageDiff) error {
	var ma, mb *shown
	var err error
	if md.SeqA != 0 {
		if ma, err = c.fetch(ctx, c.a, md.SeqA); err != nil {
			return err
		}
	}
	if md.SeqB != 0 {
		if mb, err = c.fetch(ctx, c.b, md.SeqB); err != nil {
			return err
		}
	}
	if ma != nil && mb != nil {
		md.Fields, md.MoreFields, md.PayloadA, md.PayloadB = c.payloadDiff(ma, mb)
		if ma.QoS != mb.QoS {
			md.Fields = append([]FieldDiff{{Path: "(qos)", A: num(ma.QoS), B: num(mb.QoS)}}, md.Fields...)
		}
		if ma.Retain != mb.Retain {
			md.Fields = append([]FieldDiff{{Path: "(retain)", A: boolJSON(ma.Retain), B: boolJSON(mb.Retain)}}, md.Fields...)
		}
		if pa, pb := propsKey(ma.Props), propsKey(mb.Props); string(pa) != string(pb) {
			md.Fields = append([]FieldDiff{{Path: "(properties)", A: orNull(pa), B: orNull(pb)}}, md.Fields...)
		}
		return nil
	}
	if ma != nil {
		md.PayloadA = ma.previewText()
	}
	if mb != nil {
		md.PayloadB = mb.previewText()
	}
	return nil
}

func num(b byte) []byte { return []byte(fmt.Sprint(b)) }

// propsKey is the comparable form of MQTT 5 properties: their JSON without
// subscription identifiers (those belong to the recorder's subscription,
// not to the message). Empty for none.
func propsKey(p *mqtt.Properties) []byte {
	q := p.OfMessage()
	if q == nil {
		return nil
	}
	b, _ := json.Marshal(q)
	return b
}

func orNull(b []byte) []byte {
	if b == nil {
		return []byte("null")
	}
	return b
}

func boolJSON(b bool) []byte { return []byte(fmt.Sprint(b)) }

// payloadDiff describes how two payloads differ: field by field when both
// are JSON documents, else as previews.
func (c *comparer) payloadDiff(x, y *shown) (fields []FieldDiff, more bool, pa, pb string) {
	if x.PayloadOmitted || y.PayloadOmitted {
		if x.PayloadOmitted && y.PayloadOmitted && x.size == y.size && x.sum == y.sum {
			return nil, false, "", ""
		}
		return nil, false, x.previewText(), y.previewText()
	}
	a, b := x.Payload, y.Payload
	va, okA := parseJSON(a)
	vb, okB := parseJSON(b)
	if okA && okB {
		fields, more = fieldDiffs(prune(va, c.opts.IgnoreFields, nil), prune(vb, c.opts.IgnoreFields, nil))
		if len(fields) > 0 {
			return fields, more, "", ""
		}
	}
	if bytes.Equal(a, b) || (okA && okB) {
		return nil, false, "", ""
	}
	return nil, false, Preview(a), Preview(b)
}

func (c *comparer) compareRetained(ctx context.Context, name string, ta, tb *topicAcc) error {
	ra, rb := ta != nil && ta.retained, tb != nil && tb.retained
	switch {
	case !ra && !rb:
		return nil
	case ra && !rb:
		m, err := c.fetch(ctx, c.a, ta.retainSeq)
		if err != nil {
			return err
		}
		c.report.Retain = append(c.report.Retain, RetainDiff{Topic: name, Kind: "only_in_a", PayloadA: m.previewText()})
	case rb && !ra:
		m, err := c.fetch(ctx, c.b, tb.retainSeq)
		if err != nil {
			return err
		}
		c.report.Retain = append(c.report.Retain, RetainDiff{Topic: name, Kind: "only_in_b", PayloadB: m.previewText()})
	case ta.retainPayload != tb.retainPayload:
		ma, err := c.fetch(ctx, c.a, ta.retainSeq)
		if err != nil {
			return err
		}
		mb, err := c.fetch(ctx, c.b, tb.retainSeq)
		if err != nil {
			return err
		}
		d := RetainDiff{Topic: name, Kind: "changed"}
		d.Fields, d.MoreFields, d.PayloadA, d.PayloadB = c.payloadDiff(ma, mb)
		c.report.Retain = append(c.report.Retain, d)
	}
	return nil
}

// previewLen bounds payload previews in reports.
const previewLen = 120

// Preview renders a payload for a report: text as is (cut at previewLen
// bytes), binary as hex.
func Preview(p []byte) string {
	if isText(p) {
		if len(p) > previewLen {
			return string(p[:previewLen]) + "…"
		}
		return string(p)
	}
	const n = previewLen / 2
	s := fmt.Sprintf("0x%x", p[:min(len(p), n)])
	if len(p) > n {
		s += fmt.Sprintf("… (%d bytes)", len(p))
	}
	return s
}

func isText(p []byte) bool {
	if !utf8.Valid(p) {
		return false
	}
	for _, c := range p {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
			return false
		}
	}
	return true
}
