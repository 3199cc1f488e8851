package inspector

import (
	"context"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// poll checks the capture for new messages (a recording in progress) every
// interval and grows the view, the tree counts and the header.
func (u *UI) poll(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u.pollOnce(ctx)
	}
}

// pollOnce does one live-tail check. Errors are transient here (the
// recorder holds a lock for a moment) and are retried on the next tick.
func (u *UI) pollOnce(ctx context.Context) {
	snap := u.snapshot()
	lo, hi, err := u.c.SeqBounds(ctx)
	if err != nil {
		return
	}
	sessions, err := u.c.Sessions(ctx)
	if err != nil {
		return
	}
	if hi <= snap.horizon {
		u.busy.Add(1)
		defer u.busy.Add(-1)
		u.post(func() {
			if sessionsChanged(u.sessions, sessions) {
				u.sessions = sessions
			}
		})
		return
	}
	topics, err := u.c.Topics(ctx)
	if err != nil {
		return
	}
	p, err := u.c.Prepare(ctx, snap.filter.Query(topics))
	if err != nil {
		return
	}
	q := query{p: p} // no complement: new topics would have to join it
	from := snap.horizon + 1
	if snap.horizon == 0 {
		from = lo
	}
	g, err := measureGrowth(ctx, snap.mode, q, from, hi)
	if err != nil {
		return
	}
	first, errF := u.c.Get(ctx, lo)
	last, errL := u.c.Get(ctx, hi)
	if errF != nil || errL != nil {
		return
	}
	var counts map[int64]int64
	if snap.trieReady {
		if counts, err = u.c.TopicCounts(ctx, snap.trieHorizon+1, hi); err != nil {
			return
		}
	}
	u.busy.Add(1)
	defer u.busy.Add(-1)
	u.post(func() {
		u.sessions = sessions
		u.applyTopics(topics)
		if u.lo == 0 {
			u.lo = lo
		}
		u.hi, u.firstNS, u.lastNS = hi, first.TimeNS, last.TimeNS
		u.updateMultiDay()
		if counts != nil && u.trieReady && u.trieHorizon == snap.trieHorizon {
			trie := u.tree.trie
			for id, n := range counts {
				u.topicCounts[id] += n
			}
			for _, t := range topics {
				if n := counts[t.ID]; n > 0 {
					trie.add(t.Name, n)
				} else if !trie.has(t.Name) {
					trie.add(t.Name, 0)
				}
			}
			u.tree.rebuild(trie, true)
			u.trieHorizon = hi
		}
		if u.gen == snap.gen && u.m.horizon == snap.horizon {
			u.m.grow(g)
			if u.follow {
				u.end()
				u.follow = true
			}
			u.showDetailIfEmpty()
		}
		u.publishSnap()
	})
}

func sessionsChanged(a, b []storage.SessionInfo) bool {
	if len(a) != len(b) {
		return true
	}
	for i := range a {
		if a[i].EndedNS != b[i].EndedNS || a[i].LastNS != b[i].LastNS {
			return true
		}
	}
	return false
}

// applyTopics replaces the topic list (UI goroutine).
func (u *UI) applyTopics(topics []storage.Topic) {
	if len(topics) == len(u.topics) {
		return
	}
	u.topics = topics
	u.topicNames = make(map[string]bool, len(topics))
	for _, t := range topics {
		u.topicNames[t.Name] = true
	}
}

// showDetailIfEmpty fills the detail pane when the first message arrives.
func (u *UI) showDetailIfEmpty() {
	if u.detailSeq == 0 && u.m.total > 0 {
		if u.selectedRow() < 0 {
			u.selectRow(0, false)
		} else {
			u.showDetail()
		}
	}
}
