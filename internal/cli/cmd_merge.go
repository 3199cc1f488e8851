package cli

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/mqtape/mqtape/importer"
	"github.com/mqtape/mqtape/storage"
)

const mergeUsage = `merge [flags] A B ... -o OUT

Merge captures into one session of OUT, in time order (ts_ns; ties keep the
inputs' order). Use it to join the captures of several recorders, e.g.
recorders that share the work of one subscription on a clustered broker:

  mqtape record --broker mqtt://node1 -t '$share/mqtape/#' -o rec1.db
  mqtape record --broker mqtt://node2 -t '$share/mqtape/#' -o rec2.db
  mqtape merge rec1.db rec2.db -o all.db

The broker hands each message of a shared subscription to one member of the
group, so every recorder stores a part and the merge is the whole. Times
come from each recorder's clock: keep the hosts in sync (NTP), or messages
from different recorders may be ordered by up to the clock difference.
Messages from the brokers' retained stores keep their flag (play restores
them first); the events of every input session are kept, in time order, and
each input session is named by a "merged" event. Offsets count from the
earliest input session's start. The inputs are only read, never changed.

Exit codes: 0 done, 1 error, 2 usage, 4 an input is not a readable capture
(or OUT exists and is not a capture).`

const mergeExamples = `  mqtape merge rec1.db rec2.db rec3.db -o all.db
  mqtape merge site-a.db site-b.db -o both.db && mqtape info both.db
`

type mergeOptions struct {
	inputs []string
	out    string
	quiet  bool
}

func parseMerge(args []string, cio *cliIO) (mergeOptions, error) {
	var o mergeOptions
	fs := newFlagSet("merge", mergeUsage, mergeExamples, cio)
	fs.StringVarP(&o.out, "output", "o", "", "the capture to write (created, or appended to)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line and no summary")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if o.out == "" {
		return o, usagef("missing -o OUT")
	}
	if fs.NArg() < 2 {
		return o, usagef("expected at least two captures to merge, got %d", fs.NArg())
	}
	o.inputs = fs.Args()
	return o, nil
}

func cmdMerge(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseMerge(args, cio)
	if err != nil {
		return err
	}
	var inputs []*storage.Capture
	defer func() {
		for _, c := range inputs {
			c.Close()
		}
	}()
	for _, path := range o.inputs {
		c, err := storage.Open(path)
		if err != nil {
			return err
		}
		inputs = append(inputs, c)
		if err := notSameFile(path, o.out); err != nil {
			return err
		}
	}
	created := !fileExists(o.out)
	out, err := storage.OpenWrite(o.out)
	if err != nil {
		return err
	}
	var written atomic.Int64
	stop := newStatusLine(cio, o.quiet).start(func() string {
		return fmt.Sprintf("merging: %s messages", groupDigits(written.Load()))
	})
	n, runErr := mergeCaptures(ctx, inputs, o.inputs, out, &written)
	stop()
	if err := out.Close(); runErr == nil {
		runErr = err
	}
	if (runErr != nil || n == 0) && created {
		removeCapture(o.out)
	}
	switch {
	case ctx.Err() != nil:
		return errInterrupted
	case runErr != nil:
		return runErr
	case n == 0:
		return fmt.Errorf("merge: the inputs have no messages (nothing written)")
	}
	if !o.quiet {
		fmt.Fprintf(cio.stderr, "merged %s messages from %d captures into %s\n", groupDigits(n), len(inputs), o.out)
	}
	return nil
}

// mergeHead is the next message of one input session.
type mergeHead struct {
	m     storage.Message
	order int // input session order, for ties
	next  func() (storage.Message, error, bool)
	stop  func()
}

type mergeHeap []*mergeHead

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	if h[i].m.TimeNS != h[j].m.TimeNS {
		return h[i].m.TimeNS < h[j].m.TimeNS
	}
	if h[i].order != h[j].order {
		return h[i].order < h[j].order
	}
	return h[i].m.Seq < h[j].m.Seq
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*mergeHead)) }
func (h *mergeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// mergeCaptures writes the messages of every session of every input into
// one new session of out, ordered by time. Each input session is read in
// seq order (its times never decrease), so a k-way merge needs one message
// per input session in memory.
func mergeCaptures(ctx context.Context, inputs []*storage.Capture, names []string, out *storage.Capture, written *atomic.Int64) (int64, error) {
	info := storage.SessionInfo{Source: "merge", Version: version, StartedNS: -1}
	info.Host, _ = os.Hostname()
	var (
		h       mergeHeap
		events  []storage.Event
		brokers []string
		clients []string
		dropped int64
	)
	defer func() {
		for _, x := range h {
			x.stop()
		}
	}()
	seen := map[string]bool{}
	addUnique := func(list *[]string, s string) {
		if s != "" && !slices.Contains(*list, s) {
			*list = append(*list, s)
		}
	}
	order := 0
	for i, c := range inputs {
		sessions, err := c.Sessions(ctx)
		if err != nil {
			return 0, err
		}
		for _, s := range sessions {
			next, stop := iter.Pull2(c.Messages(ctx, storage.Query{Session: s.ID}))
			m, err, ok := next()
			if err != nil {
				stop()
				return 0, err
			}
			if !ok {
				stop()
				continue // no messages
			}
			heap.Push(&h, &mergeHead{m: m, order: order, next: next, stop: stop})
			order++
			if info.StartedNS < 0 || s.StartedNS < info.StartedNS {
				info.StartedNS = s.StartedNS
			}
			info.Protocol = max(info.Protocol, s.Protocol)
			addUnique(&brokers, s.Broker)
			addUnique(&clients, s.ClientID)
			for _, f := range s.Filters {
				if !seen[f.Filter] {
					seen[f.Filter] = true
					info.Filters = append(info.Filters, f)
				}
			}
			dropped += s.Dropped
			evs, err := c.Events(ctx, s.ID)
			if err != nil {
				return 0, err
			}
			detail, _ := json.Marshal(map[string]any{"input": names[i], "session": s.ID, "source": s.Source,
				"broker": s.Broker, "client_id": s.ClientID})
			events = append(events, storage.Event{TimeNS: s.StartedNS, Kind: "merged", Detail: string(detail)})
			events = append(events, evs...)
		}
	}
	if len(h) == 0 {
		return 0, nil
	}
	info.Broker, info.ClientID = strings.Join(brokers, " "), strings.Join(clients, " ")
	w := importer.NewWriter(out, info)
	w.Dropped = dropped
	if err := w.StartSession(ctx, info.StartedNS, "merge", nil); err != nil {
		return 0, err
	}
	slices.SortStableFunc(events, func(a, b storage.Event) int {
		switch {
		case a.TimeNS < b.TimeNS:
			return -1
		case a.TimeNS > b.TimeNS:
			return 1
		}
		return 0
	})
	for _, e := range events {
		e.OffsetNS = max(e.TimeNS-info.StartedNS, 0)
		if err := w.Event(ctx, e); err != nil {
			return 0, err
		}
	}
	for len(h) > 0 {
		top := h[0]
		m := top.m
		m.OffsetNS = max(m.TimeNS-info.StartedNS, 0)
		if err := w.Add(ctx, m); err != nil {
			return 0, err
		}
		written.Add(1)
		nm, err, ok := top.next()
		if err != nil {
			return 0, err
		}
		if ok {
			top.m = nm
			heap.Fix(&h, 0)
		} else {
			top.stop()
			heap.Pop(&h)
		}
	}
	if err := w.EndSession(ctx, "merge"); err != nil {
		return 0, err
	}
	return w.Messages, nil
}
