// Package where is the query language on payload values that export
// --where and the inspector's / line use:
//
//	.PATH OP VALUE          a field of the decoded value (else the JSON payload)
//	metric:NAME OP VALUE    a Sparkplug B metric (true when any metric of that name matches)
//
// PATH is written as diff's --ignore-field paths (a.b[2], readings[*].t,
// **.ts); NAME is quoted when it has spaces or slashes
// (metric:"Node Control/Rebirth"=true). OP is one of = != < <= > >= ~ (a
// regular expression, Go syntax); VALUE is a number, true, false, null, a
// "quoted string" or a bare word (a string). Terms separated by spaces are
// ANDed.
package where

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mqtape/mqtape/diff"
)

// ErrQuery wraps every error in a query.
var ErrQuery = errors.New("bad query")

// Help documents the language in one block for --help and the inspector.
const Help = `  .PATH OP VALUE        a field of the decoded payload (else the JSON payload): .celsius>25
                        .status="ERR"  .readings[*].t>=20  .**.error~timeout  (PATH as in diff --ignore-field)
  metric:NAME OP VALUE  a Sparkplug B metric: metric:Temperature>30  metric:"Node Control/Rebirth"=true
  OP: = != < <= > >= ~ (a regular expression); VALUE: a number, true, false, null, "text" or a bare word`

// Query is a parsed query: every term must hold.
type Query struct {
	Text  string
	terms []term
}

type term struct {
	path   *diff.Path // .PATH
	metric string     // metric:NAME
	op     string
	value  any // json.Number, string, bool or nil
	re     *regexp.Regexp
}

// Empty reports whether the query selects everything.
func (q Query) Empty() bool { return len(q.terms) == 0 }

// Parse reads a query; the empty text selects everything.
func Parse(text string) (Query, error) {
	q := Query{Text: strings.TrimSpace(text)}
	parts, err := split(q.Text)
	if err != nil {
		return q, err
	}
	for _, p := range parts {
		t, err := parseTerm(p)
		if err != nil {
			return q, fmt.Errorf("%w: %s", ErrQuery, err)
		}
		q.terms = append(q.terms, t)
	}
	return q, nil
}

// IsTerm reports whether a word of a larger language (the inspector's
// filter) is a term of this one ("..90s", a time range there, is not).
func IsTerm(s string) bool {
	return strings.HasPrefix(s, ".") && !strings.HasPrefix(s, "..") || strings.HasPrefix(s, "metric:")
}

// split cuts text at spaces outside double quotes, keeping the quotes.
func split(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in && c == '\\' && i+1 < len(s):
			cur.WriteByte(c)
			i++
			cur.WriteByte(s[i])
			continue
		case c == '"':
			in = !in
		case !in && unicode.IsSpace(rune(c)):
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
			continue
		}
		cur.WriteByte(c)
	}
	if in {
		return nil, fmt.Errorf("%w: unclosed quote", ErrQuery)
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out, nil
}

var ops = []string{"!=", "<=", ">=", "=", "<", ">", "~"}

func parseTerm(s string) (term, error) {
	var t term
	var lhs, rest string
	switch {
	case strings.HasPrefix(s, "metric:"):
		name, after, err := metricName(s[len("metric:"):])
		if err != nil {
			return t, fmt.Errorf("%s: %v", s, err)
		}
		t.metric, rest = name, after
	case strings.HasPrefix(s, "."):
		i := strings.IndexAny(s, "=!<>~")
		if i < 0 {
			return t, fmt.Errorf("%s: needs an operator (= != < <= > >= ~) and a value, e.g. .celsius>25", s)
		}
		lhs, rest = s[:i], s[i:]
		p, err := diff.ParsePath(lhs)
		if err != nil {
			return t, err
		}
		t.path = &p
	default:
		return t, fmt.Errorf("%s: use .PATH OP VALUE or metric:NAME OP VALUE", s)
	}
	for _, op := range ops {
		if strings.HasPrefix(rest, op) {
			t.op, rest = op, rest[len(op):]
			break
		}
	}
	if t.op == "" {
		return t, fmt.Errorf("%s: needs an operator (= != < <= > >= ~) and a value", s)
	}
	if t.op != "~" && rest != "" && strings.ContainsRune("=!<>~", rune(rest[0])) {
		// `.a>>1`, `.a=<1`, `.a=~x`: a typo, not a comparison with the
		// text ">1" (which would match nothing, silently).
		return t, fmt.Errorf("%s: %q is not an operator (= != < <= > >= ~); quote a value that starts with %q", s, t.op+rest[:1], rest[:1])
	}
	v, err := parseValue(rest)
	if err != nil {
		return t, fmt.Errorf("%s: %v", s, err)
	}
	t.value = v
	if t.op == "~" {
		str, _ := v.(string)
		if str == "" {
			str = rest
		}
		if t.re, err = regexp.Compile(str); err != nil {
			return t, fmt.Errorf("%s: %v", s, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	}
	return t, nil
}

// metricName reads NAME or "NAME" and returns what follows it.
func metricName(s string) (name, rest string, err error) {
	if strings.HasPrefix(s, `"`) {
		end := 1
		for end < len(s) && s[end] != '"' {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(s) {
			return "", "", errors.New("unclosed quote")
		}
		name, err = strconv.Unquote(s[:end+1])
		return name, s[end+1:], err
	}
	i := strings.IndexAny(s, "=!<>~")
	if i <= 0 {
		return "", "", errors.New("needs a metric name, an operator and a value, e.g. metric:Temperature>30")
	}
	return s[:i], s[i:], nil
}

func parseValue(s string) (any, error) {
	switch {
	case s == "":
		return nil, errors.New("needs a value after the operator")
	case s == "true" || s == "false":
		return s == "true", nil
	case s == "null":
		return nil, nil
	case strings.HasPrefix(s, `"`):
		v, err := strconv.Unquote(s)
		if err != nil {
			return nil, fmt.Errorf("bad quoted value %s", s)
		}
		return v, nil
	}
	if isNumber(s) {
		return json.Number(s), nil
	}
	return s, nil
}

func isNumber(s string) bool {
	_, ok := new(big.Float).SetString(s)
	return ok && s != "" && strings.IndexFunc(s, func(r rune) bool { return unicode.IsLetter(r) && r != 'e' && r != 'E' }) < 0
}

// Match reports whether every term holds for a payload's value: doc is
// the value as encoding/json decodes it with UseNumber (nil when the
// payload has none).
func (q Query) Match(doc any) bool {
	for _, t := range q.terms {
		if !t.match(doc) {
			return false
		}
	}
	return true
}

// MatchJSON is Match on a JSON text (a decoded value or a JSON payload);
// text that is not JSON matches only an empty query.
func (q Query) MatchJSON(b []byte) bool {
	if q.Empty() {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var doc any
	if len(b) == 0 || dec.Decode(&doc) != nil {
		return false
	}
	return q.Match(doc)
}

func (t term) match(doc any) bool {
	if t.path != nil {
		return t.path.Any(doc, t.compare)
	}
	found := false
	Metrics(doc, func(name string, value any) bool {
		found = name == t.metric && t.compare(value)
		return !found
	})
	return found
}

// Metrics calls fn with the name and value of each named metric of a
// decoded Sparkplug B payload (doc as Match takes it), in order, until fn
// returns false; other documents have none.
func Metrics(doc any, fn func(name string, value any) bool) {
	obj, _ := doc.(map[string]any)
	metrics, _ := obj["metrics"].([]any)
	for _, m := range metrics {
		mo, _ := m.(map[string]any)
		if name, _ := mo["name"].(string); name != "" && !fn(name, mo["value"]) {
			return
		}
	}
}

// MetricTerm is how a metric is named in a query: metric:NAME, the name
// quoted when it needs to be (metric:"Node Control/Rebirth").
func MetricTerm(name string) string {
	if name == "" || strings.ContainsAny(name, "/\"=!<>~") || strings.ContainsFunc(name, unicode.IsSpace) || !utf8.ValidString(name) {
		return "metric:" + strconv.Quote(name)
	}
	return "metric:" + name
}

// compare applies the operator to a value found in the document.
func (t term) compare(got any) bool {
	if t.op == "~" {
		s, ok := scalarText(got)
		return ok && t.re.MatchString(s)
	}
	c, ok := order(got, t.value)
	switch t.op {
	case "=":
		return ok && c == 0
	case "!=":
		return !ok || c != 0
	case "<":
		return ok && c < 0
	case "<=":
		return ok && c <= 0
	case ">":
		return ok && c > 0
	case ">=":
		return ok && c >= 0
	}
	return false
}

// order compares a document value with a query value: numbers (and
// numeric strings, as protojson writes 64-bit integers) numerically,
// strings as strings, booleans and null by equality. ok is false when
// they cannot be compared.
func order(got, want any) (int, bool) {
	if w, isNum := want.(json.Number); isNum {
		if g, ok := numeric(got); ok {
			wf, _ := new(big.Float).SetString(string(w))
			return g.Cmp(wf), true
		}
		if s, isStr := got.(string); isStr {
			return strings.Compare(s, string(w)), true
		}
		return 0, false
	}
	switch w := want.(type) {
	case string:
		if s, ok := scalarText(got); ok {
			return strings.Compare(s, w), true
		}
	case bool:
		if g, ok := got.(bool); ok {
			if g == w {
				return 0, true
			}
			return 1, true
		}
	case nil:
		if got == nil {
			return 0, true
		}
		return 1, true
	}
	return 0, false
}

// Number is a JSON value the query language compares as a number (a JSON
// number, or a number protojson wrote as a string) as a float64: what the
// inspector's plots draw.
func Number(v any) (float64, bool) {
	f, ok := numeric(v)
	if !ok {
		return 0, false
	}
	x, _ := f.Float64()
	return x, !math.IsInf(x, 0)
}

func numeric(v any) (*big.Float, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	case float64:
		return big.NewFloat(x), true
	default:
		return nil, false
	}
	if !isNumber(s) {
		return nil, false
	}
	f, ok := new(big.Float).SetString(s)
	return f, ok
}

func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return string(x), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}
