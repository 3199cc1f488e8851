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

// writeMessages writes up to q.Limit of the messages q selects as export
// does (decoded values too) to w, a framer. next is the seq to go on from
// (0: no more): the last one written when the page is full, or the last
// one looked at when budget (> 0) ran out first.
func (s *Server) writeMessages(ctx context.Context, w io.Writer, q storage.Query, budget time.Duration) (n int, next int64, err error) {
	jw := termsafe.NewJSONWriter(w)
	xw := export.NewJSONWriter(jw)
	// What is checked in Go is checked here, so that a search through
	// many messages that do not match can stop at its budget.
	payloadMatch, messageMatch, limit := q.PayloadMatch, q.MessageMatch, q.Limit
	inGo := payloadMatch != nil || messageMatch != nil
	q.PayloadMatch, q.MessageMatch = nil, nil
	if inGo {
		q.Limit = 0
	}
	deadline := time.Now().Add(budget)
	looked := 0
	for m, err := range s.o.Source.Messages(ctx, q) {
		if err != nil {
			return n, 0, err
		}
		if inGo && (payloadMatch != nil && !payloadMatch(m.Payload) || messageMatch != nil && !messageMatch(&m)) {
			if looked++; budget > 0 && looked%256 == 0 && time.Now().After(deadline) {
				next = m.Seq
				break
			}
			continue
		}
		var res decode.Result
		if s.o.Decode != nil {
			if res, err = s.o.Decode(ctx, &m); err != nil {
				return n, 0, err
			}
		}
		if err := xw.Write(&m, res); err != nil {
			return n, 0, err
		}
		if n++; n == limit {
			next = m.Seq
			break
		}
	}
	if err := xw.Flush(); err != nil {
		return n, 0, err
	}
	return n, next, jw.Flush()
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
