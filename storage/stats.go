package storage

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"
)

// TopicStats summarises one topic.
type TopicStats struct {
	Topic     string
	Count     int64
	Bytes     int64
	FirstNS   int64
	LastNS    int64
	PeakRate  int64 // most messages in one wall-clock second
	FromStore int64 // messages sent from the broker's retained store
	// Retained counts messages with the retain flag: those from the
	// retained store, and those published retained where the capture
	// sees the publisher's flag (serve, MQTT 5 with retain-as-published).
	Retained int64
	QoS      [3]int64 // messages per QoS level
}

// Totals summarises a capture.
type Totals struct {
	Messages int64
	Bytes    int64 // payload bytes as published
	// Stored is how many bytes the payloads take in the file: less than
	// Bytes when they are stored compressed (record --compress).
	Stored   int64
	Topics   int
	FirstNS  int64
	LastNS   int64
	PeakRate int64 // most messages in one wall-clock second, all topics
	// Recorded is how long the recording sessions the selection covers ran:
	// each session from its start to its end, clipped to the selection's
	// session and time range. It is the time base of AvgRate.
	Recorded time.Duration
}

// AvgRate is the average rate of n of the selection's messages: messages per
// second of recording (Recorded). It is mqtape's one definition of an average
// rate (info's and the inspector's AVG/s): every topic is measured over the
// same time, so rates compare, and a topic with one message in a 20 s
// recording has 0.05/s, not 1/s.
func (t Totals) AvgRate(n int64) float64 {
	if t.Recorded <= 0 {
		return 0
	}
	return float64(n) / t.Recorded.Seconds()
}

// Stats computes per-topic statistics of the whole capture: StatsOf with
// the zero Query.
func (c *Capture) Stats(ctx context.Context) (Totals, []TopicStats, error) {
	return c.StatsOf(ctx, Query{})
}

// StatsOf computes per-topic statistics of the messages q selects (Limit and
// Desc are ignored) in one sequential pass over the messages table; payloads
// are not read, only their lengths, unless q has a PayloadMatch or a
// MessageMatch. Rates use
// 1 s windows aligned to wall-clock seconds. Topics without a selected
// message are left out.
func (c *Capture) StatsOf(ctx context.Context, q Query) (Totals, []TopicStats, error) {
	if c.parts != nil {
		return c.parts.statsOf(ctx, q)
	}
	sessions, err := c.Sessions(ctx)
	if err != nil {
		return Totals{}, nil, err
	}
	acc := newStatsAcc()
	acc.tot.Recorded = recordedOf(sessions, q)
	if err := c.scanStats(ctx, q, acc); err != nil {
		return Totals{}, nil, err
	}
	tot, stats := acc.result()
	return tot, stats, nil
}

// statsAcc adds up StatsOf's figures over messages in seq order (of one
// capture, or of the parts of a recording one after another).
type statsAcc struct {
	per           map[string]*topicAcc
	tot           Totals
	win, winCount int64
}

type topicAcc struct {
	TopicStats
	win, winCount int64
}

func newStatsAcc() *statsAcc { return &statsAcc{per: map[string]*topicAcc{}, win: -1} }

// scanStats adds the messages of c that q selects to acc.
func (c *Capture) scanStats(ctx context.Context, q Query, acc *statsAcc) error {
	topics, err := c.Topics(ctx)
	if err != nil {
		return err
	}
	names := make(map[int64]string, len(topics))
	for _, t := range topics {
		names[t.ID] = t.Name
	}
	where, args, ok, err := c.where(ctx, q)
	if err != nil || !ok {
		return err
	}
	match := q.inGo()
	rows, err := c.r.QueryContext(ctx, c.statsQuery(q, where), args...)
	if err != nil {
		return c.wrap("read messages", err)
	}
	defer rows.Close()
	byID := make(map[int64]*topicAcc, len(topics))
	var tid, ts, size, stored, qos, flags, seq int64
	var body []byte
	var mprops sql.NullString
	dest := []any{&tid, &ts, &size, &stored, &qos, &flags, &seq}
	if match != nil {
		dest = append(dest, &body, &mprops)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return c.wrap("read messages", err)
		}
		retain, fromStore := flags&1 != 0, flags&2 != 0
		if match != nil {
			m := Message{Seq: seq, TimeNS: ts, Topic: names[tid], QoS: byte(qos), Retain: retain, FromStore: fromStore, Payload: body}
			if m.Props, err = parseProps(seq, mprops); err != nil {
				return c.wrap("read messages", err)
			}
			if !match(&m) {
				continue
			}
		}
		a := byID[tid]
		if a == nil {
			name, ok := names[tid]
			if !ok {
				// As Messages says: the statistics of a topic without a name
				// would hide the damage (info printed a nameless topic).
				return c.wrap("read messages", fmt.Errorf("%w: message seq %d refers to topic id that does not exist", ErrCorrupt, seq))
			}
			if a = acc.per[name]; a == nil {
				a = &topicAcc{TopicStats: TopicStats{Topic: name, FirstNS: ts, LastNS: ts}, win: -1}
				acc.per[name] = a
			}
			byID[tid] = a
		}
		if err := checkQoS(seq, qos); err != nil {
			return c.wrap("read messages", err)
		}
		acc.add(a, ts, size, stored, qos, retain, fromStore)
	}
	return c.wrap("read messages", rows.Err())
}

// add counts one message of topic a.
func (acc *statsAcc) add(a *topicAcc, ts, size, stored, qos int64, retain, fromStore bool) {
	a.Count++
	a.Bytes += size
	a.FirstNS = min(a.FirstNS, ts)
	a.LastNS = max(a.LastNS, ts)
	if fromStore {
		a.FromStore++
	}
	if retain || fromStore {
		a.Retained++
	}
	a.QoS[qos]++
	sec := ts / 1e9
	if sec != a.win {
		a.win, a.winCount = sec, 0
	}
	a.winCount++
	a.PeakRate = max(a.PeakRate, a.winCount)
	if sec != acc.win {
		acc.win, acc.winCount = sec, 0
	}
	acc.winCount++
	tot := &acc.tot
	tot.PeakRate = max(tot.PeakRate, acc.winCount)
	if tot.Messages == 0 {
		tot.FirstNS, tot.LastNS = ts, ts
	}
	tot.Messages++
	tot.Bytes += size
	tot.Stored += stored
	tot.FirstNS = min(tot.FirstNS, ts)
	tot.LastNS = max(tot.LastNS, ts)
}

// result returns the totals and the per-topic statistics by topic name.
func (acc *statsAcc) result() (Totals, []TopicStats) {
	out := make([]TopicStats, 0, len(acc.per))
	for _, a := range acc.per {
		out = append(out, a.TopicStats)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	tot := acc.tot
	tot.Topics = len(out)
	return tot, out
}

// statsQuery reads what StatsOf counts of each message, as few columns as
// possible (each column read costs about as much as the row): the retain
// and from_store flags in one, the payload and properties only when checks
// in Go need them.
func (c *Capture) statsQuery(q Query, where string) string {
	cols := "m.topic_id, m.ts_ns, " + c.sizeSQL("m.") + ", length(m.payload), m.qos, " +
		"(m.retain != 0) + 2 * (m.from_store != 0), m.seq"
	if q.inGo() != nil {
		props := "NULL"
		if q.MessageMatch != nil && c.version >= 3 {
			props = "m.props"
		}
		cols += ", " + c.payloadSQL("m.") + ", " + props
	}
	return "SELECT " + cols + " FROM messages m" + where + " ORDER BY m.seq"
}

// recordedOf is how long the sessions q selects ran, each clipped to q's
// time range (Totals.Recorded).
func recordedOf(sessions []SessionInfo, q Query) time.Duration {
	var sum int64
	for _, s := range sessions {
		if q.Session != 0 && s.ID != q.Session {
			continue
		}
		a, b := s.StartedNS, s.EndNS()
		if q.FromTime != nil {
			a = max(a, *q.FromTime)
		}
		if q.ToTime != nil {
			b = min(b, *q.ToTime)
		}
		if q.FromOffset != nil {
			a = max(a, s.StartedNS+*q.FromOffset)
		}
		if q.ToOffset != nil {
			b = min(b, s.StartedNS+*q.ToOffset)
		}
		sum += max(b-a, 0)
	}
	return time.Duration(sum)
}
