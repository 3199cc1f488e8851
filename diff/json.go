package diff

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// A Path selects JSON fields to ignore, written like the paths in a report:
// dot-separated object keys with optional array indexes, e.g. "ts",
// "meta.seq", "readings[0].t". A "*" segment (or "[*]") matches any one key
// or index and "**" any number of levels, so "**.ts" ignores every "ts"
// field at any depth and "readings[*].t" the "t" of every reading. A
// leading "$." or "." is allowed. Keys that contain '.', '[' or ']' cannot be
// named.
type Path struct {
	text string
	segs []pathSeg
}

type pathSeg struct {
	key   string // object key, or "*" / "**"
	index int    // array index when isIndex; -1 for [*]
	isIdx bool
}

// String returns the path as written.
func (p Path) String() string { return p.text }

// ErrBadPath is wrapped by ParsePath's errors.
var ErrBadPath = errors.New("bad field path")

// ParsePath reads an --ignore-field path.
func ParsePath(s string) (Path, error) {
	p := Path{text: s}
	t := strings.TrimPrefix(strings.TrimPrefix(s, "$"), ".")
	if t == "" {
		return p, fmt.Errorf("%w %q: empty", ErrBadPath, s)
	}
	for _, part := range strings.Split(t, ".") {
		key, rest, _ := strings.Cut(part, "[")
		if rest != "" || strings.HasSuffix(part, "[") {
			rest = "[" + rest
		}
		if key == "" && rest == "" {
			return p, fmt.Errorf("%w %q: empty segment", ErrBadPath, s)
		}
		if strings.Contains(key, "]") {
			return p, fmt.Errorf("%w %q: unexpected ]", ErrBadPath, s)
		}
		if key != "" {
			p.segs = append(p.segs, pathSeg{key: key})
		}
		for rest != "" {
			end := strings.IndexByte(rest, ']')
			if rest[0] != '[' || end < 0 {
				return p, fmt.Errorf("%w %q: unbalanced [ ]", ErrBadPath, s)
			}
			idx := rest[1:end]
			switch n, err := strconv.Atoi(idx); {
			case idx == "*":
				p.segs = append(p.segs, pathSeg{index: -1, isIdx: true})
			case err == nil && n >= 0:
				p.segs = append(p.segs, pathSeg{index: n, isIdx: true})
			default:
				return p, fmt.Errorf("%w %q: index %q is not a number or *", ErrBadPath, s, idx)
			}
			rest = rest[end+1:]
		}
	}
	return p, nil
}

// step is one level of a location in a JSON document.
type step struct {
	key   string
	index int // -1 for object keys
}

// match reports whether the path matches the location exactly.
func (p Path) match(loc []step) bool { return matchSegs(p.segs, loc) }

func matchSegs(segs []pathSeg, loc []step) bool {
	for len(segs) > 0 {
		s := segs[0]
		if s.key == "**" {
			for i := 0; i <= len(loc); i++ {
				if matchSegs(segs[1:], loc[i:]) {
					return true
				}
			}
			return false
		}
		if len(loc) == 0 {
			return false
		}
		l := loc[0]
		switch {
		case s.isIdx:
			if l.index < 0 || (s.index >= 0 && s.index != l.index) {
				return false
			}
		case s.key == "*":
		default:
			if l.index >= 0 || l.key != s.key {
				return false
			}
		}
		segs, loc = segs[1:], loc[1:]
	}
	return len(loc) == 0
}

// formatLoc renders a location like "a.b[2].c" ("(root)" for the document).
func formatLoc(loc []step) string {
	if len(loc) == 0 {
		return "(root)"
	}
	var b strings.Builder
	for i, s := range loc {
		switch {
		case s.index >= 0:
			fmt.Fprintf(&b, "[%d]", s.index)
		case strings.ContainsAny(s.key, ".[]\" ") || s.key == "":
			b.WriteString("[")
			b.WriteString(strconv.Quote(s.key))
			b.WriteString("]")
		default:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		}
	}
	return b.String()
}

// isJSONDoc reports whether a payload looks like a JSON object or array
// (only those are compared field by field; scalars, and payloads over
// bigPayload, compare as bytes).
func isJSONDoc(p []byte) bool {
	if len(p) > bigPayload {
		return false
	}
	t := bytes.TrimLeft(p, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// parseJSON decodes a JSON object or array exactly (numbers kept as
// json.Number). ok is false when p is not one complete JSON document.
func parseJSON(p []byte) (v any, ok bool) {
	if !isJSONDoc(p) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false // trailing data
	}
	return v, true
}

// prune removes the ignored fields from v (in place) and returns v.
func prune(v any, ignore []Path, loc []step) any {
	if len(ignore) == 0 {
		return v
	}
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			l := append(loc, step{key: k, index: -1})
			if ignored(ignore, l) {
				delete(x, k)
				continue
			}
			x[k] = prune(c, ignore, l)
		}
	case []any:
		// Ignored array elements are replaced by null so later indexes keep
		// their meaning.
		for i, c := range x {
			l := append(loc, step{index: i})
			if ignored(ignore, l) {
				x[i] = ignoredMark{}
				continue
			}
			x[i] = prune(c, ignore, l)
		}
	}
	return v
}

// ignoredMark stands for an ignored array element: equal to anything.
type ignoredMark struct{}

func ignored(ignore []Path, loc []step) bool {
	for _, p := range ignore {
		if p.match(loc) {
			return true
		}
	}
	return false
}

// canonical writes v in a canonical form: object keys sorted, numbers
// normalised (1, 1.0 and 1e0 are the same number).
func canonical(b *bytes.Buffer, v any) { writeJSON(b, v, true) }

// writeJSON writes v with sorted keys; numbers normalised when norm is set,
// else as they were written (for reports).
func writeJSON(b *bytes.Buffer, v any, norm bool) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeJSON(b, x[k], norm)
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, c := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, c, norm)
		}
		b.WriteByte(']')
	case json.Number:
		if norm {
			b.WriteString(normNumber(x))
		} else {
			b.WriteString(string(x))
		}
	case string:
		writeString(b, x)
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case nil:
		b.WriteString("null")
	case ignoredMark:
		if norm {
			b.WriteString("~")
		} else {
			b.WriteString(`"(ignored)"`)
		}
	}
}

func writeString(b *bytes.Buffer, s string) {
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\'
	}
	if plain {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	var q bytes.Buffer
	enc := json.NewEncoder(&q)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b.Write(bytes.TrimSuffix(q.Bytes(), []byte("\n")))
}

// normNumber gives equal numbers one spelling. Integers keep their digits
// (no float rounding for large ids); other numbers go through float64.
func normNumber(n json.Number) string {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return s
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// FieldDiff is one JSON field that differs between two messages. A and B are
// the field's JSON values; nil means the field is absent on that side.
type FieldDiff struct {
	Path string          `json:"path"`
	A    json.RawMessage `json:"a,omitempty"`
	B    json.RawMessage `json:"b,omitempty"`
}

// maxFieldDiffs bounds the field differences listed per message.
const maxFieldDiffs = 20

// fieldDiffs lists where two pruned JSON values differ (at most
// maxFieldDiffs) and whether the list was cut.
func fieldDiffs(a, b any) (out []FieldDiff, more bool) {
	var walk func(a, b any, loc []step)
	add := func(loc []step, a, b any, hasA, hasB bool) {
		if len(out) >= maxFieldDiffs {
			more = true
			return
		}
		d := FieldDiff{Path: formatLoc(loc)}
		if hasA {
			d.A = rawJSON(a)
		}
		if hasB {
			d.B = rawJSON(b)
		}
		out = append(out, d)
	}
	walk = func(a, b any, loc []step) {
		if _, ok := a.(ignoredMark); ok {
			return
		}
		if _, ok := b.(ignoredMark); ok {
			return
		}
		switch x := a.(type) {
		case map[string]any:
			y, ok := b.(map[string]any)
			if !ok {
				break
			}
			keys := make([]string, 0, len(x)+len(y))
			for k := range x {
				keys = append(keys, k)
			}
			for k := range y {
				if _, ok := x[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				va, inA := x[k]
				vb, inB := y[k]
				l := append(slices.Clip(loc), step{key: k, index: -1})
				if inA && inB {
					walk(va, vb, l)
				} else {
					add(l, va, vb, inA, inB)
				}
			}
			return
		case []any:
			y, ok := b.([]any)
			if !ok {
				break
			}
			for i := range max(len(x), len(y)) {
				l := append(slices.Clip(loc), step{index: i})
				switch {
				case i < len(x) && i < len(y):
					walk(x[i], y[i], l)
				case i < len(x):
					add(l, x[i], nil, true, false)
				default:
					add(l, nil, y[i], false, true)
				}
			}
			return
		}
		if !sameValue(a, b) {
			add(loc, a, b, true, true)
		}
	}
	walk(a, b, nil)
	return out, more
}

func sameValue(a, b any) bool {
	var x, y bytes.Buffer
	canonical(&x, a)
	canonical(&y, b)
	return bytes.Equal(x.Bytes(), y.Bytes())
}

func rawJSON(v any) json.RawMessage {
	var b bytes.Buffer
	writeJSON(&b, v, false)
	return json.RawMessage(b.Bytes())
}
