package storage

// The parts of one split recording read in place (OpenSet with
// MergeOptions.InPlace): a *Capture whose parts field holds the part files,
// each opened on its own, and whose public read methods translate between
// the set's numbering and each part's. What the set shows is what Merge
// writes for the same files — one session, seqs counted on across the
// parts, one topic id per name — without copying a message.
//
// Numbering. Part i's messages after its carried retained rows (which
// repeat what the part before it holds) get the global seqs local + off_i,
// counted on from the previous part's last; topic ids are numbered in order
// of first appearance over the parts; the one session has id 1, starts
// when the first part with messages starts, and a message's offset is its
// receive time minus that start.

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"sync"
)

// partSet is a split recording's parts read in place.
type partSet struct {
	parts  []*setPart
	start  int64       // the session's start (offsets count from it)
	info   SessionInfo // the one session, as Merge and describeSet write it
	events []Event
	dec    Decoders
	ver    int

	lruMu sync.Mutex
	lru   []*setPart // the parts read last, the latest first (use)

	mu     sync.Mutex // guards the topic numbering (the last part may add topics)
	topics []Topic    // by global id - 1
	ids    map[string]int64
}

// setPart is one part of a partSet.
type setPart struct {
	c *Capture
	// first is the first local seq read (after the carried rows); last the
	// last at open (the last part may grow: see bounds). off turns a local
	// seq into the set's: global = local + off.
	first, last, off int64
	lastTS           int64 // receive time of the last message at open
	live             bool  // the last part: its end is read again each time
	open             bool  // the last part, its session not ended when opened (a recording writes it)
	toGlobal         map[int64]int64
	toLocal          map[int64]int64
	topicMax         int64 // topics up to this id are numbered (addTopics numbers those after)
}

// openPartsMax is how many parts keep an idle SQLite connection (and its
// page cache) between reads: the ones read last. A set of hundreds of
// parts must not hold a connection per part it once read; a part read
// again after that opens one (a fraction of a millisecond).
const openPartsMax = 8

// use returns p's capture for a read, keeping an idle connection for the
// openPartsMax parts read last and none for the others.
func (s *partSet) use(p *setPart) *Capture {
	s.lruMu.Lock()
	defer s.lruMu.Unlock()
	if i := slices.Index(s.lru, p); i >= 0 {
		copy(s.lru[1:i+1], s.lru[:i])
		s.lru[0] = p
		return p.c
	}
	p.c.r.SetMaxIdleConns(1)
	s.lru = slices.Insert(s.lru, 0, p)
	if len(s.lru) > openPartsMax {
		s.lru[openPartsMax].c.r.SetMaxIdleConns(0) // closes its idle connection
		s.lru = s.lru[:openPartsMax]
	}
	return p.c
}

// openParts opens files as the parts of one split recording read in
// place. It returns nil (and no error) when they are not that: several
// sessions in a file, parts of different recordings, out of part order or
// with one missing between two (the later part's carried retained rows,
// which the merge keeps only where they differ from what came before),
// time ranges that overlap in part order, or no message at all; OpenSet
// merges those. Each part is read once (readPart: its description, topics,
// first and last messages), a few parts at a time, each on one connection
// closed when it is read: opening hundreds of parts holds no connection
// each.
func openParts(ctx context.Context, files []string, opts MergeOptions) (*Capture, error) {
	s := &partSet{ids: map[string]int64{}, parts: make([]*setPart, len(files))}
	metas := make([]partMeta, len(files))
	errs := make([]error, len(files))
	sem := make(chan struct{}, openWorkers)
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := Open(f)
			if err == nil {
				s.parts[i] = &setPart{c: c, live: i == len(files)-1, toGlobal: map[int64]int64{}, toLocal: map[int64]int64{}}
				metas[i], err = readPart(ctx, c, i > 0)
				c.r.SetMaxIdleConns(0) // until read (use)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	s.parts = slices.DeleteFunc(s.parts, func(p *setPart) bool { return p == nil })
	for _, err := range errs {
		if err != nil {
			s.close()
			return nil, err
		}
	}
	if !s.number(metas, opts) {
		s.close()
		return nil, nil
	}
	label := setLabel(files)
	return &Capture{path: label, label: label, files: slices.Clone(files), version: s.ver, parts: s}, nil
}

// openWorkers is how many parts openParts reads at once.
const openWorkers = 4

// maxPartSeq is the highest seq a part read in place may have: far more
// than any recording writes (2^53: centuries at a million messages a
// second), far enough from 2^63 that no seq range read in place overflows.
const maxPartSeq = 1 << 53

// partMeta is what openParts reads of a part.
type partMeta struct {
	sess        SessionInfo
	events      []Event
	link        PartLink
	isPart, any bool  // a part (one session a "split" event starts); with messages
	first, last int64 // local seqs of its first message read (after carried rows) and last
	firstTS     int64 // receive time of the first read, when first <= last
	lastTS      int64
	topics      []Topic // of its messages (topicsFrom)
	topicMax    int64   // the highest topic id when read
	dec         Decoders
}

// readPart reads what openParts needs of part c (follows: a part before
// it is read too, so its carried retained rows are left out).
func readPart(ctx context.Context, c *Capture, follows bool) (m partMeta, err error) {
	ss, err := c.Sessions(ctx)
	if err != nil || len(ss) != 1 {
		return m, err
	}
	m.sess = ss[0]
	if m.events, err = c.Events(ctx, 0); err != nil {
		return m, err
	}
	start, isPart := partStartsOf(m.events)[m.sess.ID]
	m.link, m.isPart = start.PartLink, isPart
	sound := false
	if m.first, m.last, m.lastTS, m.any, sound, err = c.partRange(ctx, m.sess.ID); err != nil {
		return m, err
	}
	if m.last > maxPartSeq {
		m.isPart = false // no recording numbers that far (an edited file): merged, numbered from 1
		return m, nil
	}
	if !sound {
		return m, fmt.Errorf("read part %q: %w: its session's first_seq/last_seq are not the seqs of its messages (%d–%d); check tells more",
			c.path, ErrCorrupt, m.first, m.last)
	}
	if m.any {
		if follows {
			through, err := c.carriedThrough(ctx, m.sess.ID, m.first, m.link)
			if err != nil || through != m.first+int64(m.link.Carried)-1 {
				m.isPart = false // the carried rows are not what the link says: merged
				return m, err
			}
			m.first = through + 1
			if more, err := c.carriedAt(ctx, m.first, start.at); err != nil || more {
				// More carried rows than the link counts: the
				// merge's rule keeps them once.
				m.isPart = false
				return m, err
			}
		}
	}
	if m.first <= m.last {
		if m.firstTS, err = c.tsAt(ctx, m.first); err != nil {
			return m, err
		}
	}
	// The highest topic id first: a topic a recording adds meanwhile is
	// numbered by the next addTopics.
	if m.topicMax, err = c.maxTopicID(ctx); err != nil {
		return m, err
	}
	if m.topics, err = c.topicsFrom(ctx, m.first); err != nil {
		return m, err
	}
	m.dec, err = c.Decoders(ctx)
	return m, err
}

// number checks that the parts follow each other as one recording and
// numbers their seqs, topics and session (false: they do not).
func (s *partSet) number(metas []partMeta, opts MergeOptions) bool {
	plan := newMergePlan(opts)
	var sessions []SessionInfo
	var decoders []Decoders
	var prevLast int64
	prevTS := int64(math.MinInt64)
	for i, m := range metas {
		p := s.parts[i]
		if !m.isPart || (i > 0 && (m.link.Recording != metas[i-1].link.Recording || m.link.Part <= metas[i-1].link.Part ||
			m.link.Previous != filepath.Base(s.parts[i-1].c.path))) {
			return false
		}
		if i == 0 && slices.ContainsFunc(s.parts, func(p *setPart) bool { return filepath.Base(p.c.path) == m.link.Previous }) {
			return false // the first names another as its previous (the merge skips its carried rows)
		}
		p.first, p.last, p.lastTS = m.first, m.last, m.lastTS
		p.open = p.live && !m.sess.Closed()
		p.off = prevLast + 1 - p.first
		if p.first <= p.last {
			if m.firstTS < prevTS {
				return false // overlapping time: merged instead
			}
			prevLast, prevTS = p.last+p.off, m.lastTS
		}
		s.numberTopics(p, m.topics)
		p.topicMax = m.topicMax
		sessions, decoders = append(sessions, m.sess), append(decoders, m.dec)
		if m.any { // Merge leaves out a session without messages
			plan.addInfo(m.sess)
			plan.events = append(plan.events, mergedEvent(p.c, m.sess))
			plan.events = append(plan.events, m.events...)
			s.ver = max(s.ver, p.c.Version())
		}
	}
	if prevLast == 0 {
		return false // no message: the merge is as cheap
	}
	s.describe(plan, sessions, decoders)
	return true
}

// partRange reads, in one snapshot, part c's seq range [first, last]
// (first 1, last 0 and any false when it has no message) and the receive
// time of its last message; sound is false unless its one session's
// first_seq and last_seq are that range.
func (c *Capture) partRange(ctx context.Context, session int64) (first, last, lastTS int64, any, sound bool, err error) {
	var lo, hi, f, l, ts sql.NullInt64
	err = c.r.QueryRowContext(ctx, `SELECT (SELECT min(seq) FROM messages), (SELECT max(seq) FROM messages),
		first_seq, last_seq, (SELECT ts_ns FROM messages WHERE seq = s.last_seq) FROM sessions s WHERE id = ?`,
		session).Scan(&lo, &hi, &f, &l, &ts)
	if err != nil {
		return 0, 0, 0, false, false, c.wrap("read sessions", err)
	}
	if !lo.Valid {
		return 1, 0, 0, false, !f.Valid, nil
	}
	return lo.Int64, hi.Int64, ts.Int64, true, f == lo && l == hi && ts.Valid, nil
}

// carriedAt reports whether message seq (if any) looks carried: from
// the broker's retained store, stamped at the seam.
func (c *Capture) carriedAt(ctx context.Context, seq, seam int64) (bool, error) {
	var n int
	err := c.r.QueryRowContext(ctx, "SELECT count(*) FROM messages WHERE seq = ? AND from_store = 1 AND ts_ns = ?",
		seq, seam).Scan(&n)
	return n > 0, c.wrap("read messages", err)
}

// tsAt is the receive time of message seq.
func (c *Capture) tsAt(ctx context.Context, seq int64) (int64, error) {
	var ts int64
	err := c.r.QueryRowContext(ctx, "SELECT ts_ns FROM messages WHERE seq = ?", seq).Scan(&ts)
	return ts, c.wrap("read messages", err)
}

// addTopics numbers the topics p added since it was read (in p's id
// order: the order they first appear in it).
func (s *partSet) addTopics(ctx context.Context, p *setPart) error {
	topics, err := p.c.topicsByID(ctx, p.topicMax)
	if err == nil {
		s.numberTopics(p, topics)
		if len(topics) > 0 {
			p.topicMax = topics[len(topics)-1].ID
		}
	}
	return err
}

// maxTopicID is the highest topic id of c (0 without topics).
func (c *Capture) maxTopicID(ctx context.Context) (int64, error) {
	var n int64
	err := c.r.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM topics").Scan(&n)
	return n, c.wrap("read topics", err)
}

// numberTopics numbers the topics of p (by id) not numbered yet.
func (s *partSet) numberTopics(p *setPart, topics []Topic) {
	for _, t := range topics {
		if _, ok := p.toGlobal[t.ID]; ok {
			continue
		}
		id, ok := s.ids[t.Name]
		if !ok {
			id = int64(len(s.topics) + 1)
			s.ids[t.Name] = id
			s.topics = append(s.topics, Topic{ID: id, Name: t.Name})
		}
		p.toGlobal[t.ID], p.toLocal[id] = id, t.ID
	}
}

// topicsByID returns c's topics after id after in id order (the order
// they first appear).
func (c *Capture) topicsByID(ctx context.Context, after int64) ([]Topic, error) {
	return c.topicRows(ctx, "SELECT id, name FROM topics WHERE id > ? ORDER BY id", after)
}

// topicsFrom returns the topics of c's messages from seq first on, in the
// order they first appear there (as Merge numbers them): a topic only a
// part's carried rows use, or none of its messages (an edited file), is
// not numbered by it. One seek of the topic index per topic.
func (c *Capture) topicsFrom(ctx context.Context, first int64) ([]Topic, error) {
	return c.topicRows(ctx, `SELECT id, name FROM (SELECT id, name,
		(SELECT min(seq) FROM messages WHERE topic_id = t.id AND seq >= ?) AS at FROM topics t)
		WHERE at IS NOT NULL ORDER BY at`, first)
}

// describe makes the set's one session and its events as Merge and
// describeSet write them, and its decoders as carryDecoders joins them.
func (s *partSet) describe(plan *mergePlan, sessions []SessionInfo, decoders []Decoders) {
	s.info, s.start = plan.info, plan.info.StartedNS
	s.info.ID, s.info.Dropped = 1, plan.dropped
	source, stop, clean := setDescription(sessions)
	if source != "" {
		s.info.Source = source
	}
	s.info.StopReason, s.info.CleanSession = cmp.Or(stop, "merge"), clean
	slices.SortStableFunc(plan.events, func(a, b Event) int { return cmp.Compare(a.TimeNS, b.TimeNS) })
	for i, e := range plan.events {
		e.ID, e.Session, e.OffsetNS = int64(i+1), 1, max(e.TimeNS-s.start, 0)
		s.events = append(s.events, e)
	}
	s.dec = joinDecoders(decoders)
}

// close closes the parts.
func (s *partSet) close() error {
	var errs []error
	for _, p := range s.parts {
		errs = append(errs, p.c.Close())
	}
	return errors.Join(errs...)
}

// bounds returns p's local seq range [first, last]: the last part's end is
// read again (a recording may still be writing it).
func (s *partSet) bounds(ctx context.Context, p *setPart) (first, last int64, err error) {
	if !p.live {
		return p.first, p.last, nil
	}
	last, err = s.use(p).MaxSeq(ctx)
	return p.first, last, err
}

// span returns p's global seq range for choosing parts: the last part's
// end is open.
func (p *setPart) span() (lo, hi int64) {
	if p.live {
		return p.first + p.off, math.MaxInt64
	}
	return p.first + p.off, p.last + p.off
}

// local turns the global range [from, through] into p's local one; ok is
// false when p has none of it.
func (p *setPart) local(from, through int64) (a, z int64, ok bool) {
	lo, hi := p.span()
	from, through = max(from, lo), min(through, hi)
	if from > through {
		return 0, 0, false
	}
	a, z = from-p.off, through
	if z != math.MaxInt64 {
		z -= p.off
	}
	return a, z, true
}

// globalize renumbers a message of p into the set's numbering.
func (s *partSet) globalize(p *setPart, m *Message) {
	m.Seq += p.off
	m.Session = 1
	m.OffsetNS = max(m.TimeNS-s.start, 0)
}

// globalRow is globalize for a Row.
func (s *partSet) globalRow(p *setPart, r *Row) {
	r.Seq += p.off
	r.Session = 1
	r.OffsetNS = max(r.TimeNS-s.start, 0)
}

// order returns the parts in seq order, or reversed.
func (s *partSet) order(desc bool) []*setPart {
	if !desc {
		return s.parts
	}
	out := slices.Clone(s.parts)
	slices.Reverse(out)
	return out
}

// partOf returns the part holding global seq and its local seq; ok is
// false when no part does (a carried row, a seq beyond the end).
func (s *partSet) partOf(seq int64) (p *setPart, local int64, ok bool) {
	// The last part starting at or before seq: the parts' ranges follow
	// each other (one without messages of its own starts where the next
	// does).
	i := sort.Search(len(s.parts), func(i int) bool {
		lo, _ := s.parts[i].span()
		return lo > seq
	}) - 1
	if i < 0 {
		return nil, 0, false
	}
	p = s.parts[i]
	local, _, ok = p.local(seq, seq)
	return p, local, ok
}

// query turns a query on the set into one on the parts' common terms: the
// session (only 1) dropped, offsets (from the set's start) made times. ok
// is false when it selects nothing.
func (s *partSet) query(q Query) (Query, bool) {
	if q.Session != 0 && q.Session != 1 {
		return q, false
	}
	q.Session = 0
	bound := func(t **int64, off *int64, lower bool) bool {
		if off == nil {
			return true
		}
		if *off <= 0 {
			return lower // every offset is >= 0
		}
		v := s.start + *off
		if *t == nil || (lower && v > **t) || (!lower && v < **t) {
			*t = &v
		}
		return true
	}
	if !bound(&q.FromTime, q.FromOffset, true) || !bound(&q.ToTime, q.ToOffset, false) {
		return q, false
	}
	q.FromOffset, q.ToOffset = nil, nil
	return q, true
}

// partQuery is q (made by query) for part p: its topic ids and seq bounds
// made p's, its MessageMatch shown the set's numbering; ok is false when p
// has nothing of it.
func (s *partSet) partQuery(p *setPart, q Query) (Query, bool) {
	if q.TopicIDs != nil {
		ids := make([]int64, 0, len(q.TopicIDs))
		s.mu.Lock()
		for _, id := range q.TopicIDs {
			if l, ok := p.toLocal[id]; ok {
				ids = append(ids, l)
			}
		}
		s.mu.Unlock()
		if len(ids) == 0 {
			return q, false
		}
		q.TopicIDs = ids
	}
	through := int64(math.MaxInt64)
	if q.BeforeSeq > 0 {
		through = q.BeforeSeq - 1
	}
	a, z, ok := p.local(q.AfterSeq+1, through)
	if !ok {
		return q, false
	}
	q.AfterSeq, q.BeforeSeq = a-1, 0
	if z != math.MaxInt64 {
		q.BeforeSeq = z + 1
	}
	if match := q.MessageMatch; match != nil {
		q.MessageMatch = func(m *Message) bool {
			g := *m
			s.globalize(p, &g)
			return match(&g)
		}
	}
	return q, true
}

// refreshTopics numbers the topics the last part added since it was read.
func (s *partSet) refreshTopics(ctx context.Context) error {
	p := s.parts[len(s.parts)-1]
	if !p.live {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addTopics(ctx, p)
}

// globalTopic returns the set's id of p's topic id (numbering topics the
// last part added since).
func (s *partSet) globalTopic(ctx context.Context, p *setPart, id int64) (int64, error) {
	s.mu.Lock()
	g, ok := p.toGlobal[id]
	s.mu.Unlock()
	if ok {
		return g, nil
	}
	if err := s.refreshTopics(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok = p.toGlobal[id]; !ok {
		return 0, fmt.Errorf("count topics in %q: %w: a message refers to topic id %d that does not exist", p.c.path, ErrCorrupt, id)
	}
	return g, nil
}

// mergedEvent is the "merged" event Merge writes for an input session.
func mergedEvent(c *Capture, s SessionInfo) Event {
	detail, _ := json.Marshal(map[string]any{"input": c.Path(), "session": s.ID, "source": s.Source,
		"broker": s.Broker, "client_id": s.ClientID})
	return Event{TimeNS: s.StartedNS, Kind: "merged", Detail: string(detail)}
}

// setDescription is what describeSet gives the session of a set: the
// inputs' source when they share one, the stop reason of the session that
// ended last, and whether every session was clean.
func setDescription(sessions []SessionInfo) (source, stop string, clean bool) {
	clean = true
	var lastEnd int64 = -1
	for j, s := range sessions {
		if j == 0 {
			source = s.Source
		} else if s.Source != source {
			source = ""
		}
		clean = clean && s.CleanSession
		if s.Closed() && s.EndNS() >= lastEnd {
			lastEnd, stop = s.EndNS(), s.StopReason
		}
	}
	return source, stop, clean
}
