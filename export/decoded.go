package export

import (
	"context"
	"iter"
	"strings"

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
		q.QoS != nil || q.FromStore != nil || q.PayloadContains != nil || q.PayloadMatch != nil || q.AfterSeq > 0
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

// DecodeOne decodes one message on its own (the inspector's detail pane):
// a Sparkplug B message's aliases resolve from the births and deaths of
// its edge node before it, read for the call; seq gaps are not judged.
func DecodeOne(ctx context.Context, c *storage.Capture, m *storage.Message, reg *decode.Registry) (decode.Result, error) {
	dec := reg.NewDecoder()
	dec.IgnoreSeq() // it sees the births only
	if f, ok := reg.Select(m.Topic, m.Props); ok && f.Kind == decode.KindSparkplug {
		node, ok := sparkplugNode(m.Topic)
		q := storage.Query{BeforeSeq: m.Seq, Match: func(name string) bool {
			n, isNode := sparkplugNode(name)
			return isNode && n == node && lifecycle(name)
		}}
		if ok {
			for b, err := range c.Messages(ctx, q) {
				if err != nil {
					return decode.Result{}, err
				}
				dec.Decode(b.Topic, b.Props, b.Payload)
			}
		}
	}
	return dec.Decode(m.Topic, m.Props, m.Payload), nil
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
