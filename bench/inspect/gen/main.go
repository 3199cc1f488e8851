// Command gen writes a synthetic capture for measuring mqtape inspect:
// telemetry JSON on a few hundred topics, status text, binary blobs, a few
// large payloads, two sessions with retained-store messages at their start.
// Output is deterministic for a given -n and -seed.
//
//	go run ./bench/inspect/gen -n 1000000 -o /tmp/1m.db
//	go run ./bench/inspect/gen -n 10000 -live 200 -o /tmp/live.db   # keeps appending 200 msg/s until Ctrl-C
//	go run ./bench/inspect/gen -n 1000000 -parts 20 -o /tmp/1m-parts  # one recording split into 20 parts in that directory
//
// With -parts K the same message stream is one recording (one session)
// split into K parts of n/K messages, written as record --split-* writes
// them (storage.CreatePart, EndPart): each part starts with the retained
// state carried forward and names its neighbours.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/mqtape/mqtape/storage"
)

func main() {
	n := flag.Int("n", 1_000_000, "messages to write")
	out := flag.String("o", "capture.db", "capture file to create (must not exist)")
	seed := flag.Uint64("seed", 1, "random seed")
	rate := flag.Float64("rate", 1000, "average messages per second of capture time")
	live := flag.Float64("live", 0, "after the bulk, keep appending this many messages per second (real time) until interrupted, leaving the session open")
	parts := flag.Int("parts", 0, "write one recording split into this many parts, in the directory -o (created; must not exist)")
	flag.Parse()
	if _, err := os.Stat(*out); err == nil {
		fmt.Fprintf(os.Stderr, "gen: %s exists\n", *out)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if *parts > 0 {
		err = runParts(ctx, *out, *n, *parts, *seed, *rate)
	} else {
		err = run(ctx, *out, *n, *seed, *rate, *live)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

// Generator produces the synthetic message stream.
type Generator struct {
	rnd    *rand.Rand
	topics []string
	i      int
	ts     int64
	off    int64
}

// start of the synthetic capture: 2026-11-26T09:00:00Z (with -live: so that
// the bulk ends when the live part begins).
const start = int64(1795683600) * 1e9

func newGenerator(seed uint64) *Generator {
	g := &Generator{rnd: rand.New(rand.NewPCG(seed, 42)), ts: start}
	for p := 1; p <= 10; p++ {
		for l := 1; l <= 5; l++ {
			for _, k := range []string{"temp", "pressure", "status", "vibration"} {
				g.topics = append(g.topics, fmt.Sprintf("plant/%d/line/%d/%s", p, l, k))
			}
		}
	}
	g.topics = append(g.topics, "status/heartbeat", "$SYS/broker/uptime", "wohnzimmer/temperatür/🌡", "odd topic/with space", "firmware/blob")
	return g
}

// next makes the next message, on topic t or (when t is "") a random one.
func (g *Generator) next(gapNS int64, t string) storage.Message {
	g.i++
	step := int64(g.rnd.ExpFloat64()*float64(gapNS)) + 1
	g.ts += step
	g.off += step
	if t == "" {
		t = g.topics[g.rnd.IntN(len(g.topics)-1)] // firmware/blob only below
	}
	m := storage.Message{TimeNS: g.ts, OffsetNS: g.off, Topic: t, QoS: byte(g.rnd.IntN(3))}
	if m.QoS > 0 {
		m.PacketID = uint16(g.i%65535 + 1)
	}
	switch last := t[len(t)-4:]; {
	case last == "temp", last == "/🌡":
		v := 20 + 5*math.Sin(float64(g.i)/5000) + g.rnd.NormFloat64()*0.3
		m.Payload = fmt.Appendf(nil, `{"temp":%.2f,"unit":"C","n":%d,"ok":%v,"sensor":{"id":"s-%d","battery":%d}}`,
			v, g.i, g.rnd.IntN(50) != 0, g.i%7, 100-g.i%100)
	case last == "sure":
		m.Payload = fmt.Appendf(nil, `{"bar":%.3f,"n":%d}`, 1+g.rnd.Float64()*0.2, g.i)
	case last == "atus", last == "beat":
		m.Payload = []byte([]string{"online", "online", "online", "degraded", "offline"}[g.rnd.IntN(5)])
	case last == "tion":
		m.Payload = make([]byte, 48)
		for j := range m.Payload {
			m.Payload[j] = byte(g.rnd.UintN(256))
		}
	default:
		m.Payload = fmt.Appendf(nil, "%d", g.i)
	}
	if g.i%9973 == 0 {
		m.Payload = append(m.Payload, " ALARM overheat"...)
	}
	if g.i%100_000 == 0 {
		m.Topic = "firmware/blob"
		m.Payload = make([]byte, 1<<20)
		for j := range m.Payload {
			m.Payload[j] = byte(j * 7)
		}
	}
	return m
}

func run(ctx context.Context, path string, n int, seed uint64, rate, live float64) error {
	c, err := storage.OpenWrite(path)
	if err != nil {
		return err
	}
	defer c.Close()
	g := newGenerator(seed)
	gap := int64(1e9 / rate)
	if live > 0 { // the bulk ends now, so live messages follow on
		g.ts = time.Now().UnixNano() - int64(n)*gap - 60e9
	}
	begun := time.Now()
	sessions := []int{n * 2 / 5, n - n*2/5}
	for si, count := range sessions {
		s, err := c.BeginSession(ctx, storage.SessionInfo{Source: "subscriber", Broker: "mqtt://plant.example:1883",
			ClientID: fmt.Sprintf("gen-%d", si+1), Protocol: 4, CleanSession: true, StartedNS: g.ts,
			Filters: []storage.Filter{{Filter: "#", QoS: 2, Granted: 2}}, Version: "gen", Host: "bench"})
		if err != nil {
			return err
		}
		g.off = 0
		batch := make([]storage.Message, 0, 5000)
		for k := range count {
			var m storage.Message
			if k < 20 { // the broker's retained store, right after subscribing
				m = g.next(gap, g.topics[k*7%(len(g.topics)-1)])
				m.Retain, m.FromStore = true, true
			} else {
				m = g.next(gap, "")
			}
			batch = append(batch, m)
			if len(batch) == cap(batch) || k == count-1 {
				if err := s.Write(ctx, batch, nil, g.ts); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if si == len(sessions)-1 && live > 0 {
			fmt.Fprintf(os.Stderr, "gen: %d messages in %s; appending %.0f msg/s live, Ctrl-C to stop\n", n, time.Since(begun).Round(time.Millisecond), live)
			return appendLive(ctx, s, g, live)
		}
		if err := s.End(ctx, g.ts+1e9, "generated", 0); err != nil {
			return err
		}
		g.ts += 60e9 // a minute between sessions
	}
	fmt.Fprintf(os.Stderr, "gen: %d messages in %s\n", n, time.Since(begun).Round(time.Millisecond))
	return nil
}

// appendLive writes in real time, 10 batches a second, as a recorder does.
func appendLive(ctx context.Context, s *storage.Session, g *Generator, rate float64) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	per := max(1, int(rate/10))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now().UnixNano()
		batch := make([]storage.Message, per)
		for i := range batch {
			batch[i] = g.next(1, "")
			batch[i].OffsetNS += now - g.ts
			batch[i].TimeNS = now
		}
		g.off += now - g.ts
		g.ts = now
		if err := s.Write(ctx, batch, nil, now); err != nil {
			return err
		}
	}
}

// runParts writes n messages as one recording split into k parts in dir.
func runParts(ctx context.Context, dir string, n, k int, seed uint64, rate float64) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	g := newGenerator(seed)
	gap := int64(1e9 / rate)
	begun := time.Now()
	info := storage.SessionInfo{Source: "subscriber", Broker: "mqtt://plant.example:1883", ClientID: "gen-1", Protocol: 4,
		CleanSession: true, Filters: []storage.Filter{{Filter: "#", QoS: 2, Granted: 2}}, StartedNS: g.ts, Version: "gen", Host: "bench"}
	var state storage.RetainedState
	prev, written := "", 0
	for part := 1; part <= k; part++ {
		path := filepath.Join(dir, storage.PartName("run.db", part, time.Time{}))
		c, s, err := storage.CreatePart(ctx, path, info, storage.PartStart{Recording: "gen", Number: part, Previous: prev, Retained: state.Messages()})
		if err != nil {
			return err
		}
		count := n*part/k - written
		batch := make([]storage.Message, 0, 5000)
		for j := range count {
			var m storage.Message
			if written+j < 20 { // the broker's retained store, right after subscribing
				m = g.next(gap, g.topics[(written+j)*7%(len(g.topics)-1)])
				m.Retain, m.FromStore = true, true
			} else {
				m = g.next(gap, "")
			}
			m.OffsetNS = m.TimeNS - info.StartedNS
			state.Observe(&m)
			batch = append(batch, m)
			if len(batch) == cap(batch) || j == count-1 {
				if err := s.Write(ctx, batch, nil, g.ts); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		written += count
		if part < k {
			next := filepath.Join(dir, storage.PartName("run.db", part+1, time.Time{}))
			err = storage.EndPart(ctx, c, s, storage.PartLink{Recording: "gen", Part: part, Next: next}, g.ts+1, 0)
		} else if err = s.End(ctx, g.ts+1e9, "generated", 0); err == nil {
			err = c.Close()
		}
		if err != nil {
			return err
		}
		info.StartedNS, prev = g.ts+1, path
	}
	fmt.Fprintf(os.Stderr, "gen: %d messages in %d parts in %s\n", n, k, time.Since(begun).Round(time.Millisecond))
	return nil
}
