package replay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/mqtape/mqtape/topic"
)

// ErrBadRewrite is wrapped by errors about --remap and --topic-prefix.
var ErrBadRewrite = errors.New("invalid topic rewrite")

// Remap rewrites topics that start with Old to start with New instead.
type Remap struct {
	Old, New string
}

// ParseRemap reads "OLD=NEW" (e.g. "plant/1/=sandbox/plant/1/").
func ParseRemap(s string) (Remap, error) {
	old, repl, ok := strings.Cut(s, "=")
	if !ok || old == "" {
		return Remap{}, fmt.Errorf("%w %q: use OLD=NEW, e.g. plant/1/=sandbox/plant/1/", ErrBadRewrite, s)
	}
	r := Remap{Old: old, New: repl}
	return r, r.validate()
}

func (r Remap) validate() error {
	for _, s := range []string{r.Old, r.New} {
		if strings.ContainsAny(s, "+#\x00") {
			return fmt.Errorf("%w %q=%q: topic names cannot contain '+', '#' or NUL", ErrBadRewrite, r.Old, r.New)
		}
	}
	return nil
}

// rewriter applies the remaps (the first whose Old is a prefix wins), then
// the topic prefix, and caches the result per topic.
type rewriter struct {
	prefix string
	remaps []Remap
	cache  map[string]string
}

func newRewriter(prefix string, remaps []Remap) (*rewriter, error) {
	if strings.ContainsAny(prefix, "+#\x00") {
		return nil, fmt.Errorf("%w: topic prefix %q cannot contain '+', '#' or NUL", ErrBadRewrite, prefix)
	}
	for _, r := range remaps {
		if r.Old == "" {
			return nil, fmt.Errorf("%w: remap with an empty OLD prefix", ErrBadRewrite)
		}
		if err := r.validate(); err != nil {
			return nil, err
		}
	}
	if prefix == "" && len(remaps) == 0 {
		return nil, nil
	}
	return &rewriter{prefix: prefix, remaps: remaps, cache: make(map[string]string)}, nil
}

// topic returns the rewritten name of t. A nil rewriter returns t.
func (rw *rewriter) topic(t string) (string, error) {
	if rw == nil {
		return t, nil
	}
	if out, ok := rw.cache[t]; ok {
		return out, nil
	}
	out := t
	for _, r := range rw.remaps {
		if rest, ok := strings.CutPrefix(t, r.Old); ok {
			out = r.New + rest
			break
		}
	}
	out = rw.prefix + out
	if err := topic.ValidateName(out); err != nil {
		return "", fmt.Errorf("%w: %q becomes %q: %v", ErrBadRewrite, t, out, err)
	}
	rw.cache[t] = out
	return out, nil
}
