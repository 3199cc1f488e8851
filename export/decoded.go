package export

import (
	"context"
	"iter"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/storage"
)

// Decoded is a message and what decoding it gave.
type Decoded struct {
	storage.Message
	Result decode.Result
}

// Value is the message's value as JSON text: the decoded value, else the
// payload (which a query reads only when it is JSON).
func (d *Decoded) Value() []byte {
	if d.Result.Value != nil {
		return d.Result.Value
	}
	return d.Payload
}

// Decode yields the messages q selects, in seq order, each with what reg
// decoded from it (a zero Result when reg is nil). Sparkplug B messages
// the selection leaves out (births before --from, topics -t does not
// name) still pass through the decoder, in their place in seq order, so
// metric aliases resolve from the latest birth and seq gaps are real
// gaps. Memory stays constant: the left-out messages come from a second
// query read alongside.
func Decode(ctx context.Context, c *storage.Capture, q storage.Query, reg *decode.Registry) iter.Seq2[Decoded, error] {
	return func(yield func(Decoded, error) bool) {
		if reg == nil {
			for m, err := range c.Messages(ctx, q) {
				if !yield(Decoded{Message: m}, err) || err != nil {
					return
				}
			}
			return
		}
		dec := reg.NewDecoder()
		feed, stop, err := sparkplugFeed(ctx, c, q, reg)
		if err != nil {
			yield(Decoded{}, err)
			return
		}
		defer stop()
		for m, err := range c.Messages(ctx, q) {
			if err == nil {
				err = feed.before(m.Seq, dec)
			}
			if err != nil {
				yield(Decoded{}, err)
				return
			}
			if !yield(Decoded{Message: m, Result: dec.Decode(m.Topic, m.Props, m.Payload)}, nil) {
				return
			}
		}
	}
}

// feed is the second query: the Sparkplug messages in seq order.
type feed struct {
	next    func() (storage.Message, error, bool)
	pending *storage.Message
}

// before passes the feed's messages older than seq through the decoder
// and drops the one that is seq itself (the main query decodes it).
func (f *feed) before(seq int64, dec *decode.Decoder) error {
	if f.next == nil {
		return nil
	}
	for {
		if f.pending == nil {
			m, err, ok := f.next()
			if err != nil {
				return err
			}
			if !ok {
				f.next = nil
				return nil
			}
			f.pending = &m
		}
		if f.pending.Seq > seq {
			return nil
		}
		if f.pending.Seq < seq {
			dec.Decode(f.pending.Topic, f.pending.Props, f.pending.Payload)
		}
		f.pending = nil
	}
}

// sparkplugFeed opens the feed when q leaves out some message that reg
// decodes as Sparkplug; else the feed is empty.
func sparkplugFeed(ctx context.Context, c *storage.Capture, q storage.Query, reg *decode.Registry) (*feed, func(), error) {
	restricted := q.Session != 0 || q.Match != nil || q.TopicIDs != nil || q.FromOffset != nil || q.FromTime != nil ||
		q.QoS != nil || q.FromStore != nil || q.PayloadContains != nil || q.PayloadMatch != nil || q.MessageMatch != nil ||
		q.AfterSeq > 0
	isSparkplug := func(name string) bool {
		f, ok := reg.Select(name, nil)
		return ok && f.Kind == decode.KindSparkplug
	}
	f := &feed{}
	if !restricted {
		return f, func() {}, nil
	}
	topics, err := c.Topics(ctx)
	if err != nil {
		return nil, nil, err
	}
	any := false
	for _, t := range topics {
		any = any || isSparkplug(t.Name)
	}
	if !any {
		return f, func() {}, nil
	}
	next, stop := iter.Pull2(c.Messages(ctx, storage.Query{Match: isSparkplug}))
	f.next = func() (storage.Message, error, bool) {
		m, err, ok := next()
		return m, err, ok
	}
	return f, stop, nil
}

// Resolver decodes single messages in any order (the inspector's detail
// pane, table, filter and plots): a Sparkplug B message's aliases resolve
// from the births of its edge node before it, as when the capture is read
// in order; seq gaps are not judged. It reads the capture's Sparkplug
// births and deaths once, as far as the messages asked about need, and
// keeps them. Safe for concurrent use.
type Resolver struct {
	c   *storage.Capture
	reg *decode.Registry

	mqtt5 func() bool // some session was recorded over MQTT 5 (content types)

	mu      sync.Mutex
	through int64                        // lifecycle messages with seq < through are read
	life    map[string][]storage.Message // by edge node, in seq order
	decs    map[lifeKey]*decode.Decoder  // fed an edge node's first n lifecycle messages
}

type lifeKey struct {
	node string
	n    int
}

// NewResolver decodes with reg the messages of c.
func NewResolver(c *storage.Capture, reg *decode.Registry) *Resolver {
	r := &Resolver{c: c, reg: reg, life: map[string][]storage.Message{}, decs: map[lifeKey]*decode.Decoder{}}
	r.mqtt5 = sync.OnceValue(func() bool {
		sessions, err := c.Sessions(context.Background())
		return err != nil || slices.ContainsFunc(sessions, func(s storage.SessionInfo) bool { return s.Protocol == 5 })
	})
	return r
}

// MayDecode reports whether a decoder may be selected for a message on
// this topic: a --decode rule or the Sparkplug namespace selects one, or
// the capture has MQTT 5 sessions, whose content types may. False means
// the payload is shown as recorded, unread.
func (r *Resolver) MayDecode(topic string) bool {
	_, ok := r.reg.Select(topic, nil)
	return ok || r.mqtt5()
}

// Decode decodes m as reading the capture in order up to it would.
func (r *Resolver) Decode(ctx context.Context, m *storage.Message) (decode.Result, error) {
	f, ok := r.reg.Select(m.Topic, m.Props)
	node, isNode := sparkplugNode(m.Topic)
	if !ok || f.Kind != decode.KindSparkplug || !isNode || lifecycle(m.Topic) {
		// A birth names its own metrics: it needs no earlier message.
		dec := r.reg.NewDecoder()
		dec.IgnoreSeq()
		return dec.Decode(m.Topic, m.Props, m.Payload), nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.readLifecycle(ctx, m.Seq); err != nil {
		return decode.Result{}, err
	}
	life := r.life[node]
	n := sort.Search(len(life), func(i int) bool { return life[i].Seq >= m.Seq })
	key := lifeKey{node, n}
	dec := r.decs[key]
	if dec == nil {
		dec = r.reg.NewDecoder()
		dec.IgnoreSeq()
		for _, b := range life[:n] {
			dec.Decode(b.Topic, b.Props, b.Payload)
		}
		r.decs[key] = dec
	}
	// Data messages leave the decoder's births as they are.
	return dec.Decode(m.Topic, m.Props, m.Payload), nil
}

// readLifecycle reads the Sparkplug births and deaths before seq that are
// not read yet.
func (r *Resolver) readLifecycle(ctx context.Context, seq int64) error {
	if seq <= r.through {
		return nil
	}
	q := storage.Query{AfterSeq: r.through - 1, BeforeSeq: seq, Match: func(name string) bool {
		f, ok := r.reg.Select(name, nil)
		_, isNode := sparkplugNode(name)
		return ok && f.Kind == decode.KindSparkplug && isNode && lifecycle(name)
	}}
	for b, err := range r.c.Messages(ctx, q) {
		if err != nil {
			return err
		}
		node, _ := sparkplugNode(b.Topic)
		r.life[node] = append(r.life[node], b)
	}
	r.through = seq
	return nil
}

// sparkplugNode is GROUP/EDGE of a topic spBv1.0/GROUP/TYPE/EDGE[/DEVICE].
func sparkplugNode(name string) (string, bool) {
	l := strings.Split(name, "/")
	if len(l) < 4 || len(l) > 5 || l[0]+"/" != decode.SparkplugNamespace {
		return "", false
	}
	return l[1] + "/" + l[3], true
}

func lifecycle(name string) bool {
	l := strings.Split(name, "/")
	return strings.HasSuffix(l[2], "BIRTH") || strings.HasSuffix(l[2], "DEATH")
}
