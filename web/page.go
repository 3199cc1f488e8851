package web

import (
	"net/http"
	"sync"
	"unicode"

	"github.com/mqtape/mqtape/filter"
	"github.com/mqtape/mqtape/internal/termsafe"
)

// narrow answers {"q": Q} with the topic terms of q replaced by topic
// ("" for none), its other terms kept: what a click in the topic tree
// filters to, by the one definition of the language.
func (s *Server) narrow(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	names := map[string]bool{}
	topics, err := s.o.Source.Topics(r.Context())
	if err != nil {
		requestError(w, err)
		return
	}
	for _, t := range topics {
		names[t.Name] = true
	}
	env := filter.Env{IsTopic: func(n string) bool { return names[n] }, Loc: s.o.Location}
	writeJSON(w, http.StatusOK, map[string]string{"q": filter.ReplaceTopicTerms(v.Get("q"), v.Get("topic"), env)})
}

// unsafeRanges are the code point ranges termsafe.Unsafe holds, [lo, hi]
// inclusive: the page shows these characters visibly as \xNN or
// ⟨U+XXXX⟩, as mqtape does on a terminal.
var unsafeRanges = sync.OnceValue(func() [][2]rune {
	var out [][2]rune
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !termsafe.Unsafe(r) {
			continue
		}
		if n := len(out); n > 0 && out[n-1][1] == r-1 {
			out[n-1][1] = r
		} else {
			out = append(out, [2]rune{r, r})
		}
	}
	return out
})

func (s *Server) unsafe(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ranges": unsafeRanges()})
}
