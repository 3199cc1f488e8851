package storage

// The read methods of a split recording's parts read in place (partset.go):
// each public read method of Capture hands a set to these, which ask only
// the parts a seq range reaches and renumber what they return.

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"math"
	"slices"
	"sort"
	"sync"
)

// errNotForParts is returned by a read that parts read in place do not
// offer (OpenSet merges them for the verbs that need it).
func errNotForParts(what string) error {
	return fmt.Errorf("%s: not offered for the parts of a recording read in place (read them merged)", what)
}

func (s *partSet) messages(ctx context.Context, q Query) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		q, ok := s.query(q)
		if !ok {
			return
		}
		n := 0
		for _, p := range s.order(q.Desc) {
			pq, ok := s.partQuery(p, q)
			if !ok {
				continue
			}
			if q.Limit > 0 {
				pq.Limit = q.Limit - n
			}
			for m, err := range s.use(p).Messages(ctx, pq) {
				if err != nil {
					yield(Message{}, err)
					return
				}
				s.globalize(p, &m)
				if !yield(m, nil) {
					return
				}
				if n++; q.Limit > 0 && n == q.Limit {
					return
				}
			}
		}
	}
}

func (s *partSet) count(ctx context.Context, q Query) (int64, error) {
	q, ok := s.query(q)
	if !ok {
		return 0, nil
	}
	var n int64
	for _, p := range s.parts {
		pq, ok := s.partQuery(p, q)
		if !ok {
			continue
		}
		k, err := s.use(p).Count(ctx, pq)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

// part returns the part holding global seq, with seq made local.
func (s *partSet) part(seq int64, what string) (*setPart, int64, error) {
	p, local, ok := s.partOf(seq)
	if !ok {
		return nil, 0, fmt.Errorf("%s: message seq %d: %w", what, seq, sql.ErrNoRows)
	}
	return p, local, nil
}

func (s *partSet) get(ctx context.Context, seq int64) (Message, error) {
	p, local, err := s.part(seq, "read message")
	if err != nil {
		return Message{}, err
	}
	m, err := s.use(p).Get(ctx, local)
	if err == nil {
		s.globalize(p, &m)
	}
	return m, err
}

func (s *partSet) payload(ctx context.Context, seq int64, fn func(p []byte) error) error {
	p, local, err := s.part(seq, "read payload")
	if err != nil {
		return err
	}
	return s.use(p).Payload(ctx, local, fn)
}

func (s *partSet) topicList(ctx context.Context) ([]Topic, error) {
	if err := s.refreshTopics(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	out := slices.Clone(s.topics)
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// last returns the set's last message seq and its receive time (0, 0 when
// it has none).
func (s *partSet) last(ctx context.Context) (seq, ts int64, err error) {
	for i := len(s.parts) - 1; i >= 0; i-- {
		p := s.parts[i]
		first, last, err := s.bounds(ctx, p)
		if err != nil {
			return 0, 0, err
		}
		if first > last {
			continue
		}
		ts := p.lastTS
		if p.live {
			if ts, err = s.use(p).tsAt(ctx, last); err != nil {
				return 0, 0, err
			}
		}
		return last + p.off, ts, nil
	}
	return 0, 0, nil
}

func (s *partSet) seqBounds(ctx context.Context) (lo, hi int64, err error) {
	hi, _, err = s.last(ctx)
	if err != nil || hi == 0 {
		return 0, 0, err
	}
	for _, p := range s.parts {
		if lo, _ := p.span(); p.first <= p.last || p.live {
			return lo, hi, nil
		}
	}
	return 0, 0, nil
}

func (s *partSet) sessions(ctx context.Context) ([]SessionInfo, error) {
	_, ts, err := s.last(ctx)
	if err != nil {
		return nil, err
	}
	info := s.info
	info.Filters = slices.Clone(info.Filters)
	info.EndedNS, info.LastNS = ts, ts
	if p := s.parts[len(s.parts)-1]; p.open {
		// The recording was writing its last part: as for one file, the
		// session is open (last flush, no end) until that part's ends.
		ss, err := s.use(p).Sessions(ctx)
		if err != nil {
			return nil, err
		}
		if len(ss) == 1 && !ss[0].Closed() {
			info.EndedNS, info.LastNS, info.StopReason = 0, ss[0].LastNS, ""
		} else if len(ss) == 1 {
			info.StopReason = ss[0].StopReason
		}
	}
	return []SessionInfo{info}, nil
}

func (s *partSet) eventList(session int64) []Event {
	if session != 0 && session != 1 {
		return nil
	}
	return slices.Clone(s.events)
}

func (s *partSet) statsOf(ctx context.Context, q Query) (Totals, []TopicStats, error) {
	sessions, err := s.sessions(ctx)
	if err != nil {
		return Totals{}, nil, err
	}
	acc := newStatsAcc()
	acc.tot.Recorded = recordedOf(sessions, q)
	if q, ok := s.query(q); ok {
		for _, p := range s.parts {
			if pq, ok := s.partQuery(p, q); ok {
				if err := s.use(p).scanStats(ctx, pq, acc); err != nil {
					return Totals{}, nil, err
				}
			}
		}
	}
	tot, stats := acc.result()
	return tot, stats, nil
}

func (s *partSet) size(ctx context.Context) (int64, error) {
	var n int64
	for _, p := range s.parts {
		k, err := s.use(p).Size(ctx)
		if err != nil {
			return 0, err
		}
		n += k
	}
	return n, nil
}

func (s *partSet) hasTopicIndex(ctx context.Context) (bool, error) {
	for _, p := range s.parts {
		if ok, err := s.use(p).HasTopicIndex(ctx); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// topicCounts adds the per-topic counts of global seqs [from, through] to
// out (by the set's topic ids).
func (s *partSet) topicCounts(ctx context.Context, from, through int64, out map[int64]int64) error {
	for _, p := range s.parts {
		a, z, ok := p.local(from, through)
		if !ok {
			continue
		}
		counts, err := s.use(p).TopicCounts(ctx, a, z)
		if err != nil {
			return err
		}
		for id, n := range counts {
			g, err := s.globalTopic(ctx, p, id)
			if err != nil {
				return err
			}
			out[g] += n
		}
	}
	return nil
}

func (s *partSet) topicBuckets(ctx context.Context, from, through int64, shift uint) (map[int64][]int64, error) {
	out := make(map[int64][]int64)
	queries := map[*setPart]*string{}
	first, last := from>>shift, through>>shift
	for b := first; from <= through && b <= last; b++ {
		counts := make(map[int64]int64)
		for _, p := range s.parts {
			a, z, ok := p.local(max(from, b<<shift), min(through, (b+1)<<shift-1))
			if !ok {
				continue
			}
			c := s.use(p)
			if queries[p] == nil {
				q, err := c.bucketQuery(ctx)
				if err != nil {
					return nil, err
				}
				queries[p] = &q
			}
			local := make(map[int64]int64)
			if err := c.countRange(ctx, queries[p], a, z, local); err != nil {
				return nil, err
			}
			for id, n := range local {
				g, err := s.globalTopic(ctx, p, id)
				if err != nil {
					return nil, err
				}
				counts[g] += n
			}
		}
		addBucket(out, counts, b-first, last-first+1)
	}
	return out, nil
}

func (s *partSet) prevOnTopic(ctx context.Context, seq int64, topic string) (Message, bool, error) {
	for i := len(s.parts) - 1; i >= 0; i-- {
		p := s.parts[i]
		_, z, ok := p.local(math.MinInt64, seq-1)
		if !ok {
			continue
		}
		m, found, err := s.use(p).PrevOnTopic(ctx, z+1, topic)
		if err != nil {
			return Message{}, false, err
		}
		if found && m.Seq >= p.first {
			s.globalize(p, &m)
			return m, true, nil
		}
	}
	return Message{}, false, nil
}

func (s *partSet) seqAtTime(ctx context.Context, tsNS int64) (int64, error) {
	for _, p := range s.parts {
		first, last, err := s.bounds(ctx, p)
		if err != nil {
			return 0, err
		}
		if first > last || (!p.live && p.lastTS < tsNS) {
			continue
		}
		local, err := s.use(p).SeqAtTime(ctx, tsNS)
		if err != nil {
			return 0, err
		}
		if local != 0 && max(local, first) <= last {
			return max(local, first) + p.off, nil
		}
	}
	return 0, nil
}

func (s *partSet) seqAtOffset(ctx context.Context, session, offsetNS int64) (int64, error) {
	if session != 0 && session != 1 {
		return 0, nil
	}
	return s.seqAtTime(ctx, s.start+max(offsetNS, 0))
}

// bySeq groups global seqs by the part holding them (made local), in part
// order.
func (s *partSet) bySeq(seqs []int64) ([]*setPart, [][]int64) {
	per := map[*setPart][]int64{}
	for _, seq := range seqs {
		if p, local, ok := s.partOf(seq); ok {
			per[p] = append(per[p], local)
		}
	}
	var parts []*setPart
	var locals [][]int64
	for _, p := range s.parts {
		if l, ok := per[p]; ok {
			parts, locals = append(parts, p), append(locals, l)
		}
	}
	return parts, locals
}

func (s *partSet) rowsBySeq(ctx context.Context, seqs []int64, preview int) ([]Row, error) {
	parts, locals := s.bySeq(seqs)
	var out []Row
	for i, p := range parts {
		rows, err := s.use(p).RowsBySeq(ctx, locals[i], preview)
		if err != nil {
			return nil, err
		}
		for j := range rows {
			s.globalRow(p, &rows[j])
		}
		out = append(out, rows...)
	}
	return out, nil
}

func (s *partSet) messagesBySeq(ctx context.Context, seqs []int64) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		parts, locals := s.bySeq(seqs)
		for i, p := range parts {
			for m, err := range s.use(p).MessagesBySeq(ctx, locals[i]) {
				if err == nil {
					s.globalize(p, &m)
				}
				if !yield(m, err) || err != nil {
					return
				}
			}
		}
	}
}

// setPrepared is a Prepared of a set: the selection prepared on each part
// when first read.
type setPrepared struct {
	s    *partSet
	q    Query
	mu   sync.Mutex
	per  map[*setPart]*Prepared
	none bool
}

func (s *partSet) prepare(ctx context.Context, q Query) (*Prepared, error) {
	q, ok := s.query(q)
	q.AfterSeq, q.BeforeSeq = 0, 0
	sp := &setPrepared{s: s, q: q, per: map[*setPart]*Prepared{}, none: !ok}
	if ok && q.Match != nil {
		topics, err := s.topicList(ctx)
		if err != nil {
			return nil, err
		}
		sp.none = !slices.ContainsFunc(topics, func(t Topic) bool { return q.Match(t.Name) })
	}
	sp.none = sp.none || (q.TopicIDs != nil && len(q.TopicIDs) == 0) || (q.QoS != nil && len(q.QoS) == 0)
	return &Prepared{set: sp, none: sp.none}, nil
}

// part returns the selection prepared on p.
func (sp *setPrepared) part(ctx context.Context, p *setPart) (*Prepared, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if pp, ok := sp.per[p]; ok {
		return pp, nil
	}
	pq, ok := sp.s.partQuery(p, sp.q)
	pp := &Prepared{c: p.c, none: true}
	if ok {
		var err error
		if pp, err = sp.s.use(p).Prepare(ctx, pq); err != nil {
			return nil, err
		}
	}
	sp.per[p] = pp
	return pp, nil
}

// each calls fn with each part that [from, through] reaches, its local
// range and its prepared selection, in seq order (or reversed), until fn
// returns false.
func (sp *setPrepared) each(ctx context.Context, from, through int64, desc bool, fn func(p *setPart, pp *Prepared, a, z int64) (bool, error)) error {
	if sp.none || from > through {
		return nil
	}
	for _, p := range sp.s.order(desc) {
		a, z, ok := p.local(from, through)
		if !ok {
			continue
		}
		pp, err := sp.part(ctx, p)
		if err != nil {
			return err
		}
		sp.s.use(p)
		if more, err := fn(p, pp, a, z); err != nil || !more {
			return err
		}
	}
	return nil
}

func (sp *setPrepared) seqs(ctx context.Context, from, through int64) iter.Seq2[int64, error] {
	return func(yield func(int64, error) bool) {
		err := sp.each(ctx, from, through, false, func(p *setPart, pp *Prepared, a, z int64) (bool, error) {
			for seq, err := range pp.Seqs(ctx, a, z) {
				if err != nil {
					return false, err
				}
				if !yield(seq+p.off, nil) {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			yield(0, err)
		}
	}
}

func (sp *setPrepared) count(ctx context.Context, from, through int64) (int64, error) {
	var n int64
	err := sp.each(ctx, from, through, false, func(p *setPart, pp *Prepared, a, z int64) (bool, error) {
		k, err := pp.Count(ctx, a, z)
		n += k
		return true, err
	})
	return n, err
}

func (sp *setPrepared) rows(ctx context.Context, from, through int64, limit, preview int, desc bool) ([]Row, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []Row
	err := sp.each(ctx, from, through, desc, func(p *setPart, pp *Prepared, a, z int64) (bool, error) {
		rows, err := pp.rows(ctx, a, z, limit-len(out), preview, desc)
		for i := range rows {
			sp.s.globalRow(p, &rows[i])
		}
		out = append(out, rows...)
		return len(out) < limit, err
	})
	return out, err
}

func (sp *setPrepared) messages(ctx context.Context, after int64, desc bool) iter.Seq2[Message, error] {
	return func(yield func(Message, error) bool) {
		from, through := after+1, int64(math.MaxInt64)
		if desc {
			from, through = math.MinInt64, math.MaxInt64
			if after > 0 {
				through = after - 1
			}
		}
		err := sp.each(ctx, from, through, desc, func(p *setPart, pp *Prepared, a, z int64) (bool, error) {
			if pp.none {
				return true, nil
			}
			for m, err := range pp.full(ctx, a, z, desc) {
				if err != nil {
					return false, err
				}
				sp.s.globalize(p, &m)
				if !yield(m, nil) {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			yield(Message{}, err)
		}
	}
}
