package web

import (
	"net/http"
)

// topicCount is one topic of /api/topics.
type topicCount struct {
	Topic string `json:"topic"`
	Count int64  `json:"count"`
}

// topics answers {"file": NAME, "topics": [{"topic", "count"}, ...] (by
// name), "messages": N, "max_seq": SEQ}: the page builds its topic tree
// and its header from it (not from /api/info, which reads the whole
// capture).
func (s *Server) topics(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	lo, hi, err := s.o.Source.SeqBounds(ctx)
	if err != nil {
		requestError(w, err)
		return
	}
	topics, err := s.o.Source.Topics(ctx)
	if err != nil {
		requestError(w, err)
		return
	}
	counts, err := s.o.Source.TopicCounts(ctx, lo, hi)
	if err != nil {
		requestError(w, err)
		return
	}
	out := struct {
		File     string       `json:"file"`
		Topics   []topicCount `json:"topics"`
		Messages int64        `json:"messages"`
		MaxSeq   int64        `json:"max_seq"`
	}{Topics: []topicCount{}, MaxSeq: hi, File: s.o.Name}
	for _, t := range topics {
		if n := counts[t.ID]; n > 0 {
			out.Topics = append(out.Topics, topicCount{t.Name, n})
			out.Messages += n
		}
	}
	writeJSON(w, http.StatusOK, out)
}
