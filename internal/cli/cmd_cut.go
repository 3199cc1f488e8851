package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync/atomic"

	"github.com/mqtape/mqtape/importer"
	"github.com/mqtape/mqtape/storage"
)

const cutUsage = `cut [flags] IN -o OUT

Copy a time and topic slice of a capture into OUT (a new capture, or one more
session of an existing one). Each session of IN with messages in the slice
becomes a session of OUT that starts at the slice's start: offsets count from
--from, absolute times stay as recorded.

The slice keeps the retained state valid at its start: for every selected
topic, the last retained message before --from (one the broker sent from its
retained store, or a live message recorded with retain=1; an empty one
clears the topic) is carried to the start of the slice as a message from
the retained store, so 'mqtape play OUT' restores the broker's retained
state as it was at that moment. Events inside the slice are copied too.

--from/--to take an offset into each session (90s, 1m30s) or an RFC 3339
time; the slice is [from, to). IN is only read, never changed.

Exit codes: 0 done, 1 error, 2 usage, 4 IN is not a readable capture (or
OUT exists and is not a capture).`

const cutExamples = `  mqtape cut big.db --from 10m --to 12m -o incident.db
  mqtape cut big.db -t 'plant/line1/#' -o line1.db
  mqtape cut big.db --from 2026-11-26T10:00:00Z --to 2026-11-26T10:05:00Z -x '$SYS/#' -o five-minutes.db
  mqtape cut big.db --session 2 --from 30s -o s2.db
`

type cutOptions struct {
	sel     selectFlags
	in, out string
	quiet   bool
	query   storage.Query
}

func parseCut(args []string, cio *cliIO) (cutOptions, error) {
	var o cutOptions
	fs := newFlagSet("cut", cutUsage, cutExamples, cio)
	fs.StringVarP(&o.out, "output", "o", "", "the capture to write (created, or appended to)")
	o.sel.register(fs, true)
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line and no summary")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if o.out == "" {
		return o, usagef("missing -o OUT")
	}
	var err error
	if o.in, err = oneFile(fs); err != nil {
		return o, err
	}
	o.query, err = o.sel.query()
	return o, err
}

func cmdCut(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseCut(args, cio)
	if err != nil {
		return err
	}
	in, err := storage.Open(o.in)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := notSameFile(o.in, o.out); err != nil {
		return err
	}
	created := !fileExists(o.out)
	out, err := storage.OpenWrite(o.out)
	if err != nil {
		return err
	}
	var written atomic.Int64
	stop := newStatusLine(cio, o.quiet).start(func() string {
		return fmt.Sprintf("cutting %s: %s messages", o.in, groupDigits(written.Load()))
	})
	res, runErr := cutCapture(ctx, in, o.in, out, o.query, &written)
	stop()
	if err := out.Close(); runErr == nil {
		runErr = err
	}
	if runErr != nil && res.messages == 0 && created {
		removeCapture(o.out)
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	if runErr != nil {
		return runErr
	}
	if res.messages == 0 {
		if created {
			removeCapture(o.out)
		}
		return fmt.Errorf("cut %s: no message in the slice (nothing written)", o.in)
	}
	if !o.quiet {
		fmt.Fprintf(cio.stderr, "cut %s messages (%s carried retained) from %s into %s, %d sessions\n",
			groupDigits(res.messages), groupDigits(res.carried), o.in, o.out, res.sessions)
	}
	return nil
}

type cutResult struct {
	messages, carried int64
	sessions          int
}

// cutCapture copies q's slice of every session of in into new sessions of
// out, carrying the retained state at the slice's start.
func cutCapture(ctx context.Context, in *storage.Capture, name string, out *storage.Capture, q storage.Query, written *atomic.Int64) (cutResult, error) {
	var res cutResult
	sessions, err := in.Sessions(ctx)
	if err != nil {
		return res, err
	}
	w := importer.NewWriter(out, storage.SessionInfo{})
	for _, s := range sessions {
		if q.Session != 0 && s.ID != q.Session {
			continue
		}
		// The slice's start in this session's offsets.
		var from int64
		switch {
		case q.FromOffset != nil:
			from = *q.FromOffset
		case q.FromTime != nil:
			from = max(*q.FromTime-s.StartedNS, 0)
		}
		sel := q
		sel.Session, sel.FromOffset, sel.FromTime = s.ID, &from, nil
		n, err := in.Count(ctx, sel)
		if err != nil {
			return res, err
		}
		if n == 0 {
			continue
		}
		var carried []storage.Message
		if from > 0 {
			if carried, err = retainedAt(ctx, in, s.ID, q.Match, from); err != nil {
				return res, err
			}
		}
		info := s
		info.Source, info.Version, info.EndedNS, info.LastNS, info.StopReason = "cut", version, 0, 0, ""
		info.Host, _ = os.Hostname()
		w.Dropped = 0
		if from == 0 {
			w.Dropped = s.Dropped
		}
		start := s.StartedNS + from
		if err := w.StartSession(ctx, start, "cut", &info); err != nil {
			return res, err
		}
		detail, _ := json.Marshal(map[string]any{"input": name, "session": s.ID, "from_offset_ns": from, "carried_retained": len(carried)})
		if err := w.Event(ctx, storage.Event{TimeNS: start, Kind: "cut", Detail: string(detail)}); err != nil {
			return res, err
		}
		for _, m := range carried {
			m.TimeNS, m.OffsetNS, m.Retain, m.FromStore, m.Dup, m.PacketID = start, 0, true, true, false, 0
			if err := w.Add(ctx, m); err != nil {
				return res, err
			}
		}
		res.carried += int64(len(carried))
		for m, err := range in.Messages(ctx, sel) {
			if err != nil {
				return res, err
			}
			m.OffsetNS -= from
			m.TimeNS = max(m.TimeNS, start)
			if err := w.Add(ctx, m); err != nil {
				return res, err
			}
			written.Add(1)
		}
		if err := copyEvents(ctx, in, w, s.ID, from, sel.ToOffset, sel.ToTime); err != nil {
			return res, err
		}
		res.sessions++
	}
	err = w.EndSession(ctx, "cut")
	res.messages = w.Messages
	return res, err
}

// retainedAt returns the retained state of a session's selected topics just
// before offset from: per topic the last message sent from the retained
// store or recorded with retain=1, unless an empty one cleared it.
func retainedAt(ctx context.Context, c *storage.Capture, session int64, match func(string) bool, from int64) ([]storage.Message, error) {
	state := map[string]storage.Message{}
	for m, err := range c.Messages(ctx, storage.Query{Session: session, Match: match, ToOffset: &from}) {
		if err != nil {
			return nil, err
		}
		if !m.Retain && !m.FromStore {
			continue
		}
		if len(m.Payload) == 0 {
			delete(state, m.Topic)
		} else {
			state[m.Topic] = m
		}
	}
	out := make([]storage.Message, 0, len(state))
	for _, m := range state {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b storage.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// copyEvents copies a session's events in [from, to) (offsets, or absolute
// toTime) into w's open session, their offsets rebased on from.
func copyEvents(ctx context.Context, in *storage.Capture, w *importer.Writer, session, from int64, to, toTime *int64) error {
	events, err := in.Events(ctx, session)
	if err != nil {
		return err
	}
	for _, e := range events {
		if e.OffsetNS < from || (to != nil && e.OffsetNS >= *to) || (toTime != nil && e.TimeNS >= *toTime) {
			continue
		}
		e.OffsetNS -= from
		if err := w.Event(ctx, e); err != nil {
			return err
		}
	}
	return nil
}
