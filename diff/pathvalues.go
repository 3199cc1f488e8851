package diff

// Any reports whether fn holds for any value in v (a document as
// encoding/json decodes it) at a location the path matches: the query
// language's .PATH OP VALUE terms select values as --ignore-field selects
// fields.
func (p Path) Any(v any, fn func(any) bool) bool {
	return p.any(v, nil, fn)
}

func (p Path) any(v any, loc []step, fn func(any) bool) bool {
	if p.match(loc) && fn(v) {
		return true
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if p.any(e, append(loc, step{key: k, index: -1}), fn) {
				return true
			}
		}
	case []any:
		for i, e := range x {
			if p.any(e, append(loc, step{index: i}), fn) {
				return true
			}
		}
	}
	return false
}
