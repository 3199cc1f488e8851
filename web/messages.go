package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/filter"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/storage"
)

// badRequest is an error in a request's parameters (400).
type badRequest struct{ error }

func badRequestf(format string, a ...any) error { return badRequest{fmt.Errorf(format, a...)} }

// selection reads a request's q (the filter language), after, before and
// limit into a query.
func (s *Server) selection(r *http.Request) (storage.Query, error) {
	v := r.URL.Query()
	q, err := s.filterQuery(r.Context(), v.Get("q"))
	if err != nil {
		return q, err
	}
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"after", &q.AfterSeq}, {"before", &q.BeforeSeq}} {
		if t := v.Get(p.name); t != "" {
			n, err := strconv.ParseInt(t, 10, 64)
			if err != nil || n < 0 {
				return q, badRequestf("%s=%q: not a seq (a whole number, 0 or more)", p.name, t)
			}
			*p.dst = n
		}
	}
	q.Desc = q.BeforeSeq > 0 && !v.Has("after")
	q.Limit = DefaultLimit
	if t := v.Get("limit"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > MaxLimit {
			return q, badRequestf("limit=%q: use 1 to %d", t, MaxLimit)
		}
		q.Limit = n
	}
	return q, nil
}

// filterQuery parses text in the filter language (inspect's / line).
func (s *Server) filterQuery(ctx context.Context, text string) (storage.Query, error) {
	topics, err := s.o.Source.Topics(ctx)
	if err != nil {
		return storage.Query{}, err
	}
	names := make(map[string]bool, len(topics))
	for _, t := range topics {
		names[t.Name] = true
	}
	env := filter.Env{IsTopic: func(n string) bool { return names[n] }, Loc: s.o.Location}
	for m, err := range s.o.Source.Messages(ctx, storage.Query{Limit: 1}) {
		if err != nil {
			return storage.Query{}, err
		}
		env.Start = time.Unix(0, m.TimeNS)
	}
	if dec := s.o.Decode; dec != nil {
		env.Values = func(m *storage.Message) []byte {
			if res, err := dec(ctx, m); err == nil && res.Value != nil {
				return res.Value
			}
			return m.Payload
		}
	}
	f, err := filter.Parse(text, env)
	if err != nil {
		return storage.Query{}, badRequestf("q: %w", err)
	}
	return f.Query(topics), nil
}

// messages answers
//
//	{"messages": [RECORD, ...], "next": SEQ or null, "partial": true}
//
// with the records streamed as export writes them. next is the after= of
// the next page (the before= of the previous one with before=), null when
// this page holds the last match; partial (only when true) says the
// search stopped at its time budget before the page was full: ask again
// from next.
func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	q, err := s.selection(r)
	if err != nil {
		requestError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.WriteString(w, `{"messages":[`)
	n, next, err := s.writeMessages(r.Context(), &framer{w: w, sep: ","}, q, s.o.ScanBudget)
	if err != nil {
		// The status is sent: end the JSON with the error, so the page
		// and scripts see it.
		fmt.Fprintf(w, `],"error":%q}`+"\n", err.Error())
		return
	}
	tail := `],"next":null}`
	if next > 0 {
		tail = `],"next":` + strconv.FormatInt(next, 10)
		if n < q.Limit {
			tail += `,"partial":true`
		}
		tail += "}"
	}
	io.WriteString(w, tail+"\n")
}

// scanWindow is how many seqs one read covers when a payload text term
// is tested inside SQLite: that test reads every payload in seq order,
// and the budget is checked between windows (about 20 ms of payloads each
// on bench/inspect/gen's capture). A variable so tests reach both ways.
var scanWindow int64 = 1 << 15

// writeMessages writes up to q.Limit of the messages q selects as export
// does (decoded values too) to w, a framer. next is the seq to go on from
// (0: no more): the last one written when the page is full, or the last
// one looked at when budget (> 0) ran out first.
func (s *Server) writeMessages(ctx context.Context, w io.Writer, q storage.Query, budget time.Duration) (n int, next int64, err error) {
	jw := termsafe.NewJSONWriter(w)
	sc := &scan{s: s, xw: export.NewJSONWriter(jw), limit: q.Limit, budget: budget > 0, deadline: time.Now().Add(budget)}
	if len(q.PayloadContains) > 0 && sc.budget {
		next, err = sc.windows(ctx, q)
	} else {
		next, err = sc.run(ctx, q)
	}
	if err != nil {
		return sc.n, 0, err
	}
	if err := sc.xw.Flush(); err != nil {
		return sc.n, 0, err
	}
	return sc.n, next, jw.Flush()
}

// scan is one /api/messages answer being written.
type scan struct {
	s        *Server
	xw       *export.Writer
	n, limit int
	looked   int // messages a Go-side filter turned down
	budget   bool
	deadline time.Time
}

// run writes what q selects until the page is full (next: the last seq
// written), the budget runs out in a Go-side filter (next: the last seq
// looked at) or q has no more (next 0).
func (sc *scan) run(ctx context.Context, q storage.Query) (next int64, err error) {
	// What is checked in Go is checked here, so that a search through
	// many messages that do not match can stop at its budget.
	payloadMatch, messageMatch := q.PayloadMatch, q.MessageMatch
	inGo := payloadMatch != nil || messageMatch != nil
	q.PayloadMatch, q.MessageMatch = nil, nil
	q.Limit = sc.limit - sc.n
	if inGo {
		q.Limit = 0
	}
	for m, err := range sc.s.o.Source.Messages(ctx, q) {
		if err != nil {
			return 0, err
		}
		if inGo && (payloadMatch != nil && !payloadMatch(m.Payload) || messageMatch != nil && !messageMatch(&m)) {
			if sc.looked++; sc.budget && sc.looked%256 == 0 && time.Now().After(sc.deadline) {
				return m.Seq, nil
			}
			continue
		}
		var res decode.Result
		if sc.s.o.Decode != nil {
			if res, err = sc.s.o.Decode(ctx, &m); err != nil {
				return 0, err
			}
		}
		if err := sc.xw.Write(&m, res); err != nil {
			return 0, err
		}
		if sc.n++; sc.n == sc.limit {
			return m.Seq, nil
		}
	}
	return 0, nil
}

// windows runs q over windows of scanWindow seqs in its order, checking
// the budget between them; when it runs out, next is the edge of the
// last window read (the after=, or with Desc the before=, to go on from).
func (sc *scan) windows(ctx context.Context, q storage.Query) (next int64, err error) {
	lo, hi, err := sc.s.o.Source.SeqBounds(ctx)
	if err != nil || hi == 0 {
		return 0, err
	}
	// The seqs to read are those in (floor, ceil).
	floor, ceil := max(q.AfterSeq, lo-1), hi+1
	if q.BeforeSeq > 0 {
		ceil = min(ceil, q.BeforeSeq)
	}
	for floor+1 < ceil {
		sub := q
		if q.Desc {
			sub.AfterSeq, sub.BeforeSeq = max(floor, ceil-scanWindow-1), ceil
			ceil = sub.AfterSeq + 1
		} else {
			sub.AfterSeq, sub.BeforeSeq = floor, min(ceil, floor+scanWindow+1)
			floor = sub.BeforeSeq - 1
		}
		if next, err := sc.run(ctx, sub); err != nil || next > 0 {
			return next, err
		}
		if floor+1 < ceil && time.Now().After(sc.deadline) {
			if q.Desc {
				return ceil, nil
			}
			return floor, nil
		}
	}
	return 0, nil
}

// requestError answers 400 for a bad parameter, 500 otherwise.
func requestError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	if errors.As(err, new(badRequest)) {
		code = http.StatusBadRequest
	}
	writeError(w, code, err)
}

// framer turns JSON lines (export's records, one per line: JSON text
// holds no raw newline) into another framing: each record between open
// and close, sep between records.
type framer struct {
	w                io.Writer
	open, close, sep string
	started, inRec   bool
	err              error
}

func (f *framer) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && f.err == nil {
		if !f.inRec {
			if f.started {
				f.write([]byte(f.sep))
			}
			f.write([]byte(f.open))
			f.started, f.inRec = true, true
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.write(p)
			break
		}
		f.write(p[:i])
		f.write([]byte(f.close))
		f.inRec = false
		p = p[i+1:]
	}
	return n, f.err
}

func (f *framer) write(p []byte) {
	if f.err == nil && len(p) > 0 {
		_, f.err = f.w.Write(p)
	}
}
