package storage

import (
	"context"
	"sort"
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
	Bytes    int64
	Topics   int
	FirstNS  int64
	LastNS   int64
	PeakRate int64 // most messages in one wall-clock second, all topics
}

// Stats computes per-topic statistics in one sequential pass over the
// messages table (payloads are not read, only their lengths).
// Rates use 1 s windows aligned to wall-clock seconds.
func (c *Capture) Stats(ctx context.Context) (Totals, []TopicStats, error) {
	topics, err := c.Topics(ctx)
	if err != nil {
		return Totals{}, nil, err
	}
	names := make(map[int64]string, len(topics))
	for _, t := range topics {
		names[t.ID] = t.Name
	}
	type acc struct {
		TopicStats
		win, winCount int64
	}
	per := make(map[int64]*acc, len(topics))
	var tot Totals
	var win, winCount int64 = -1, 0
	rows, err := c.r.QueryContext(ctx,
		"SELECT topic_id, ts_ns, length(payload), qos, retain, from_store FROM messages ORDER BY seq")
	if err != nil {
		return Totals{}, nil, c.wrap("read messages", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tid, ts, size, qos int64
		var retain, fromStore bool
		if err := rows.Scan(&tid, &ts, &size, &qos, &retain, &fromStore); err != nil {
			return Totals{}, nil, c.wrap("read messages", err)
		}
		a := per[tid]
		if a == nil {
			a = &acc{TopicStats: TopicStats{Topic: names[tid], FirstNS: ts, LastNS: ts}, win: -1}
			per[tid] = a
		}
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
		if qos >= 0 && qos <= 2 {
			a.QoS[qos]++
		}
		sec := ts / 1e9
		if sec != a.win {
			a.win, a.winCount = sec, 0
		}
		a.winCount++
		a.PeakRate = max(a.PeakRate, a.winCount)
		if sec != win {
			win, winCount = sec, 0
		}
		winCount++
		tot.PeakRate = max(tot.PeakRate, winCount)
		if tot.Messages == 0 {
			tot.FirstNS, tot.LastNS = ts, ts
		}
		tot.Messages++
		tot.Bytes += size
		tot.FirstNS = min(tot.FirstNS, ts)
		tot.LastNS = max(tot.LastNS, ts)
	}
	if err := rows.Err(); err != nil {
		return Totals{}, nil, c.wrap("read messages", err)
	}
	out := make([]TopicStats, 0, len(per))
	for _, a := range per {
		out = append(out, a.TopicStats)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	tot.Topics = len(out)
	return tot, out, nil
}
