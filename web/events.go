package web

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// keepAlive is how often an idle event stream sends a comment, so proxies
// and browsers keep it open.
const keepAlive = 15 * time.Second

// events streams the messages that arrive after after= (default: the last
// one now) and match q, as server-sent events: one "data:" line per
// message, the record as export writes it. It looks for new messages
// every Options.Poll, so a capture being recorded shows them within
// about that time.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q, err := s.selection(r)
	if err != nil {
		requestError(w, err)
		return
	}
	last := q.AfterSeq
	if !r.URL.Query().Has("after") {
		if _, last, err = s.o.Source.SeqBounds(ctx); err != nil {
			requestError(w, err)
			return
		}
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 1000\n\n")
	rc.Flush()
	text := r.URL.Query().Get("q")
	tick := time.NewTicker(s.o.Poll)
	defer tick.Stop()
	idle := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_, hi, err := s.o.Source.SeqBounds(ctx)
		if err != nil {
			fmt.Fprintf(w, "event: failure\ndata: %s\n\n", strconv.Quote(err.Error()))
			rc.Flush()
			return
		}
		if hi <= last {
			if time.Since(idle) > keepAlive {
				io.WriteString(w, ": idle\n\n")
				rc.Flush()
				idle = time.Now()
			}
			continue
		}
		// New topics may have arrived: read the filter again.
		sel, err := s.filterQuery(ctx, text)
		if err != nil {
			return
		}
		sel.AfterSeq, sel.BeforeSeq, sel.Limit = last, hi+1, q.Limit
		for {
			_, next, err := s.writeMessages(ctx, &framer{w: w, open: "data: ", close: "\n\n"}, sel, 0)
			if err != nil {
				return
			}
			if next == 0 {
				break
			}
			sel.AfterSeq = next
		}
		last = hi
		fmt.Fprintf(w, "event: seq\ndata: %d\n\n", hi)
		if rc.Flush() != nil {
			return
		}
		idle = time.Now()
	}
}
