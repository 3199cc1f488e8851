package replay

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/mqtape/mqtape/storage"
)

type itemKind uint8

const (
	itemSegment itemKind = iota // a session of a pass starts
	itemRestore                 // publish now with retain=1
	itemBirth                   // a Sparkplug B birth in force at the start: publish now, as recorded
	itemTimed                   // publish on schedule
)

type item struct {
	kind itemKind
	pass int
	m    storage.Message
}

type batch struct {
	items []item
	err   error
}

// Batches bound the read-ahead: at most cap(out)+1 batches of batchLen
// messages or batchBytes payload bytes.
const (
	batchLen   = 256
	batchBytes = 1 << 20
)

// produce reads the selection, pass after pass, session after session, and
// sends it to out in batches. It closes out when done or when ctx ends; a
// read error travels in the last batch.
func (p *Player) produce(ctx context.Context, passes int, out chan<- batch) {
	defer close(out)
	b := make([]item, 0, batchLen)
	size := 0
	flush := func(err error) bool {
		if len(b) == 0 && err == nil {
			return true
		}
		select {
		case out <- batch{items: b, err: err}:
		case <-ctx.Done():
			return false
		}
		b, size = make([]item, 0, batchLen), 0
		return err == nil
	}
	emit := func(it item) bool {
		b = append(b, it)
		size += len(it.m.Payload)
		if len(b) >= batchLen || size >= batchBytes {
			return flush(nil)
		}
		return true
	}
	sessions, err := p.src.Sessions(ctx)
	if err != nil {
		flush(err)
		return
	}
	for pass := 0; passes == Forever || pass < passes; pass++ {
		any := false
		for _, s := range sessions {
			if p.cfg.Query.Session != 0 && s.ID != p.cfg.Query.Session {
				continue
			}
			q := p.cfg.Query
			q.Session = s.ID
			first := true
			for m, err := range p.src.Messages(ctx, q) {
				if err != nil {
					flush(err)
					return
				}
				if first {
					first, any = false, true
					if !emit(item{kind: itemSegment, pass: pass}) || !p.produceRestores(ctx, s.ID, pass, emit, flush) ||
						!p.produceBirths(ctx, s.ID, pass, emit, flush) {
						return
					}
				}
				if m.FromStore && p.cfg.Retained != RetainedLive {
					continue // restored above (keep) or left out (skip)
				}
				if !emit(item{kind: itemTimed, pass: pass, m: m}) {
					return
				}
			}
		}
		if !any {
			break // nothing selected: do not loop forever over nothing
		}
	}
	flush(nil)
}

// produceRestores emits a session's retained-store messages (RetainedKeep).
func (p *Player) produceRestores(ctx context.Context, session int64, pass int, emit func(item) bool, flush func(error) bool) bool {
	if p.cfg.Retained != RetainedKeep {
		return true
	}
	// The selection's retained-store messages of the session, whatever the
	// time range (they are the state at its start); none when the
	// selection asks for live messages only.
	rq := p.cfg.Query
	if rq.FromStore != nil && !*rq.FromStore {
		return true
	}
	rq.FromOffset, rq.ToOffset, rq.FromTime, rq.ToTime = nil, nil, nil, nil
	rq.AfterSeq, rq.BeforeSeq, rq.Desc, rq.Limit = 0, 0, false, 0
	rq.Session, rq.FromStore = session, new(true)
	for m, err := range p.src.Messages(ctx, rq) {
		if err != nil {
			flush(err)
			return false
		}
		if !emit(item{kind: itemRestore, pass: pass, m: m}) {
			return false
		}
	}
	return true
}

// Plan is what one pass of a replay would publish.
type Plan struct {
	Sessions []int64 // sessions with selected messages, in play order
	Messages int64   // messages per pass, retained restores included
	Restored int64   // retained restores per pass
	Bytes    int64   // payload bytes per pass
	// WithProps counts the messages per pass that carry MQTT 5 properties
	// (subscription identifiers aside): an MQTT 3.1.1 replay drops them.
	WithProps int64
	// Duration is one pass in capture time (after MaxGap); divide by the
	// speed for wall time.
	Duration time.Duration
	Passes   int // Config.Loop, or Forever
	Topics   []PlannedTopic
	First    PlannedMessage // zero when Messages is 0
	Last     PlannedMessage
}

// PlannedTopic counts the messages of one recorded topic.
type PlannedTopic struct {
	Topic    string // published name (after Remap and TopicPrefix)
	Original string // recorded name
	Count    int64
}

// PlannedMessage describes one message of a Plan.
type PlannedMessage struct {
	Seq, Session int64
	At           time.Duration // position in the pass (capture time after MaxGap)
	Topic        string        // published name
	Original     string        // recorded name
	QoS          byte          // published QoS
	Retain       bool          // published retain flag
	Bytes        int
	Restore      bool // a retained-state restore
	Birth        bool // a Sparkplug B birth in force at the start (--from), published first
}

// Plan reads the selection once, without publishing, and says what one
// pass would send. It reads every selected message (constant memory).
func (p *Player) Plan(ctx context.Context) (Plan, error) { return p.PlanEach(ctx, nil) }

// PlanEach is Plan that also hands each message one pass would send to
// each (when not nil), in the order it would be sent, with the payload as
// it would be sent (--sparkplug-seq renumber applied). An error from each
// stops the plan.
func (p *Player) PlanEach(ctx context.Context, each func(PlannedMessage, *storage.Message) error) (Plan, error) {
	rw, _ := newRewriter(p.cfg.TopicPrefix, p.cfg.Remap) // validated by New
	pl := Plan{Passes: p.cfg.Loop}
	var renumber *seqRenumber
	if p.cfg.SparkplugRenumber && each != nil {
		renumber = &seqRenumber{next: map[string]uint64{}}
	}
	counts := map[string]int64{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items := make(chan batch, 4)
	go p.produce(ctx, 1, items)
	defer func() {
		for range items {
		}
	}()
	var (
		v       time.Duration
		prevOff int64
		started bool
	)
	for b := range items {
		for i := range b.items {
			it := &b.items[i]
			if it.kind == itemSegment {
				pl.Duration += v
				v, started = 0, false
				pl.Sessions = append(pl.Sessions, -1) // filled by the next message
				continue
			}
			m := &it.m
			if pl.Sessions[len(pl.Sessions)-1] == -1 {
				pl.Sessions[len(pl.Sessions)-1] = m.Session
			}
			name, err := rw.topic(m.Topic)
			if err != nil {
				return pl, err
			}
			pm := PlannedMessage{Seq: m.Seq, Session: m.Session, Topic: name, Original: m.Topic, QoS: m.QoS,
				Retain: m.Retain, Bytes: len(m.Payload), Restore: it.kind == itemRestore, Birth: it.kind == itemBirth}
			if p.cfg.OverrideQoS {
				pm.QoS = p.cfg.QoS
			}
			switch it.kind {
			case itemRestore:
				pm.Retain = true
				pl.Restored++
			case itemBirth: // published at the start, as recorded
			default:
				if m.FromStore && p.cfg.Retained == RetainedLive {
					pm.Retain = false
				}
				if started {
					v += p.gap(prevOff, m.OffsetNS)
				}
				started, prevOff = true, m.OffsetNS
			}
			pm.At = pl.Duration + v
			if pl.Messages == 0 {
				pl.First = pm
			}
			pl.Last = pm
			pl.Messages++
			pl.Bytes += int64(len(m.Payload))
			if m.Props.OfMessage() != nil {
				pl.WithProps++
			}
			counts[m.Topic]++
			if each != nil {
				sent := *m
				if renumber != nil {
					sent.Payload = renumber.payload(m)
				}
				if err := each(pm, &sent); err != nil {
					return pl, err
				}
			}
		}
		if b.err != nil {
			return pl, b.err
		}
	}
	if err := ctx.Err(); err != nil {
		return pl, err
	}
	pl.Duration += v
	for t, n := range counts {
		name, _ := rw.topic(t)
		pl.Topics = append(pl.Topics, PlannedTopic{Topic: name, Original: t, Count: n})
	}
	slices.SortFunc(pl.Topics, func(a, b PlannedTopic) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Original, b.Original))
	})
	return pl, nil
}
