// Package filter is the query language of the inspector's / line and of
// mqtape web's filter box: topic filters, payload text and regular
// expressions, QoS, retained, session, time ranges and (package where)
// fields of decoded values. A parsed Filter becomes a storage.Query.
package filter

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/timespec"
	"github.com/mqtape/mqtape/topic"
	"github.com/mqtape/mqtape/where"
)

// Help documents the query language (the inspector's / line, mqtape web's
// filter box).
const Help = `Filter terms (combine with spaces; topic filters are ORed, everything else ANDed):
  plant/+/temp  status/#   MQTT topic filters (a bare word is a topic when a topic has that name)
  !status/#                leave out topics matching a filter
  topic:"odd name/#"       a topic filter, quoted when it has spaces
  payload~REGEX            payload matches a regular expression (Go syntax)
  payload:TEXT  or  TEXT   payload contains TEXT ("quoted text" for spaces)
  qos>=1  qos=2  qos<2     QoS levels
  retained  !retained      from the broker's retained store, or live only
  session:2                one recording session
  1m..2m30s  10:05..10:06  time range: offsets into each session, clock times or RFC 3339; either end optional
Fields of decoded values, else of JSON payloads (the language of export --where):
` + where.Help

// Filter is a parsed query.
type Filter struct {
	Text     string           // as typed
	Topics   []string         // topic filters, ORed; none: every topic
	Excludes []string         // topic filters left out
	Contains [][]byte         // payload substrings, all required
	Regexps  []*regexp.Regexp // payload regular expressions, all required
	QoS      []byte           // allowed QoS levels; nil: any
	Retained *bool            // from the retained store (true) or live (false)
	Session  int64
	From, To *timespec.Point // time range [From, To)
	Where    []string        // .PATH OP VALUE and metric:NAME OP VALUE terms (package where), as typed
	where    where.Query
	values   ValueFunc // what the where terms read (decoded values); nil: the payload
}

// ValueFunc is a message's value for queries (the decoded value, else the
// payload).
type ValueFunc func(m *storage.Message) []byte

// Env is what parsing needs to know about the capture.
type Env struct {
	IsTopic func(name string) bool // a topic with exactly this name exists
	Start   time.Time              // the capture's first message, for clock times
	Loc     *time.Location
	Values  ValueFunc // decoded values for .PATH and metric: terms; nil: the payload
}

// ErrFilter wraps every error in a filter query.
var ErrFilter = errors.New("bad filter")

// Parse reads a query. The empty query is the zero Filter (everything).
func Parse(text string, env Env) (Filter, error) {
	f := Filter{Text: strings.TrimSpace(text)}
	terms, err := splitTerms(f.Text)
	if err != nil {
		return f, err
	}
	for _, t := range terms {
		if err := f.addTerm(t, env); err != nil {
			return f, fmt.Errorf("%w: %v", ErrFilter, err)
		}
	}
	if f.where, err = where.Parse(strings.Join(f.Where, " ")); err != nil {
		return f, fmt.Errorf("%w: %v", ErrFilter, err)
	}
	f.values = env.Values
	return f, nil
}

type term struct {
	raw    string // with quotes removed
	src    string // as typed
	quoted bool   // the whole term was quoted
}

// splitTerms splits on spaces outside double quotes; a quote may start in the
// middle of a term (payload:"a b"). \" and \\ escape inside quotes.
func splitTerms(s string) ([]term, error) {
	var out []term
	var cur strings.Builder
	inQuote, started, wholeQuoted := false, false, false
	start := 0
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case inQuote && r == '\\' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\'):
			i++
			cur.WriteRune(rs[i])
		case r == '"':
			if !inQuote && !started {
				wholeQuoted = true
				start = i
			}
			inQuote = !inQuote
			started = true
		case !inQuote && unicode.IsSpace(r):
			if started {
				out = append(out, term{cur.String(), string(rs[start:i]), wholeQuoted})
				cur.Reset()
				started, wholeQuoted = false, false
			}
		default:
			if !started {
				start = i
			}
			if !inQuote && wholeQuoted {
				wholeQuoted = false // "a"b
			}
			cur.WriteRune(r)
			started = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("%w: unclosed quote", ErrFilter)
	}
	if started {
		out = append(out, term{cur.String(), string(rs[start:]), wholeQuoted})
	}
	return out, nil
}

var qosTerm = regexp.MustCompile(`^qos(>=|<=|=|==|>|<|:)([0-9]+)$`)

func (f *Filter) addTerm(t term, env Env) error {
	s := t.raw
	if t.quoted {
		return f.addBare(s, env)
	}
	lower := strings.ToLower(s)
	switch {
	case where.IsTerm(t.src):
		f.Where = append(f.Where, t.src)
	case lower == "retained" || lower == "!retained":
		v := lower == "retained"
		if f.Retained != nil && *f.Retained != v {
			return errors.New("retained and !retained together select nothing")
		}
		f.Retained = &v
	case strings.HasPrefix(lower, "payload~"):
		expr := s[len("payload~"):]
		if expr == "" {
			return errors.New("payload~ needs a regular expression")
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return fmt.Errorf("payload~%s: %v", expr, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		f.Regexps = append(f.Regexps, re)
	case strings.HasPrefix(lower, "payload:"):
		if s[len("payload:"):] == "" {
			return errors.New("payload: needs text")
		}
		f.Contains = append(f.Contains, []byte(s[len("payload:"):]))
	case strings.HasPrefix(lower, "topic:"):
		return f.addTopic(s[len("topic:"):])
	case strings.HasPrefix(lower, "session:"):
		n, err := strconv.ParseInt(s[len("session:"):], 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("%s: sessions are numbered from 1", s)
		}
		f.Session = n
	case strings.HasPrefix(lower, "qos"):
		m := qosTerm.FindStringSubmatch(lower)
		if m == nil {
			return f.addBare(s, env)
		}
		return f.addQoS(m[1], m[2])
	case strings.Contains(s, ".."):
		return f.addRange(s, env)
	case strings.HasPrefix(s, "!") && len(s) > 1:
		ex := s[1:]
		if err := topic.ValidateFilter(ex); err != nil {
			return err
		}
		f.Excludes = append(f.Excludes, ex)
	default:
		return f.addBare(s, env)
	}
	return nil
}

// addBare reads a term without a keyword: a topic filter when it has MQTT
// structure or names an existing topic, else a payload substring.
func (f *Filter) addBare(s string, env Env) error {
	if s == "" {
		return nil
	}
	if strings.ContainsAny(s, "/+#") || strings.HasPrefix(s, "$") || (env.IsTopic != nil && env.IsTopic(s)) {
		return f.addTopic(s)
	}
	f.Contains = append(f.Contains, []byte(s))
	return nil
}

func (f *Filter) addTopic(s string) error {
	if err := topic.ValidateFilter(s); err != nil {
		return err
	}
	f.Topics = append(f.Topics, s)
	return nil
}

func (f *Filter) addQoS(op, num string) error {
	n, err := strconv.Atoi(num)
	if err != nil || n > 2 {
		return fmt.Errorf("qos%s%s: QoS is 0, 1 or 2", op, num)
	}
	var allowed []byte
	for q := 0; q <= 2; q++ {
		ok := false
		switch op {
		case ">=":
			ok = q >= n
		case ">":
			ok = q > n
		case "<=":
			ok = q <= n
		case "<":
			ok = q < n
		default:
			ok = q == n
		}
		if ok && (f.QoS == nil || bytes.IndexByte(f.QoS, byte(q)) >= 0) {
			allowed = append(allowed, byte(q))
		}
	}
	if allowed == nil {
		allowed = []byte{}
	}
	f.QoS = allowed
	return nil
}

func (f *Filter) addRange(s string, env Env) error {
	if f.From != nil || f.To != nil {
		return errors.New("only one time range")
	}
	a, b, _ := strings.Cut(s, "..")
	if a == "" && b == "" {
		return errors.New(".. needs a start or an end")
	}
	for _, side := range []struct {
		text string
		dst  **timespec.Point
	}{{a, &f.From}, {b, &f.To}} {
		if side.text == "" {
			continue
		}
		p, err := ParsePoint(side.text, env)
		if err != nil {
			return err
		}
		*side.dst = &p
	}
	return nil
}

var clockRE = regexp.MustCompile(`^([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]{1,9})?)?$`)

// ParsePoint reads an offset (90s), an RFC 3339 time or a clock time
// (HH:MM[:SS[.frac]]) taken on the day of the capture's start in env.Loc,
// or the next day when that is before the start.
func ParsePoint(s string, env Env) (timespec.Point, error) {
	if m := clockRE.FindStringSubmatch(s); m != nil {
		h, _ := strconv.Atoi(m[1])
		mi, _ := strconv.Atoi(m[2])
		sec, _ := strconv.Atoi(m[3])
		var ns int
		if m[4] != "" {
			frac := (m[4][1:] + "000000000")[:9]
			ns, _ = strconv.Atoi(frac)
		}
		if h > 23 || mi > 59 || sec > 59 {
			return timespec.Point{}, fmt.Errorf("%q: not a clock time", s)
		}
		loc := env.Loc
		if loc == nil {
			loc = time.UTC
		}
		st := env.Start.In(loc)
		t := time.Date(st.Year(), st.Month(), st.Day(), h, mi, sec, ns, loc)
		if t.Before(st.Truncate(time.Second)) {
			t = t.AddDate(0, 0, 1)
		}
		return timespec.Point{Time: t, Absolute: true}, nil
	}
	p, err := timespec.Parse(s)
	if err != nil {
		return p, fmt.Errorf("%q: use an offset like 90s, a clock time like 10:05:30 or an RFC 3339 time", s)
	}
	return p, nil
}

// Empty reports whether the filter selects everything.
func (f *Filter) Empty() bool {
	return len(f.Topics) == 0 && len(f.Excludes) == 0 && len(f.Contains) == 0 && len(f.Regexps) == 0 &&
		f.QoS == nil && f.Retained == nil && f.Session == 0 && f.From == nil && f.To == nil && len(f.Where) == 0
}

// TopicOnly reports whether the filter has topic terms and nothing else.
func (f *Filter) TopicOnly() bool {
	g := *f
	g.Topics, g.Excludes, g.Text = nil, nil, ""
	return (len(f.Topics) > 0 || len(f.Excludes) > 0) && g.Empty()
}

// HasPayload reports whether the filter looks into payloads (a full scan).
func (f *Filter) HasPayload() bool {
	return len(f.Contains) > 0 || len(f.Regexps) > 0 || len(f.Where) > 0
}

// MatchTopic reports whether a topic name passes the topic terms.
func (f *Filter) MatchTopic(name string) bool {
	if !topic.Set(f.Topics).Match(name) {
		return false
	}
	for _, ex := range f.Excludes {
		if topic.Match(ex, name) {
			return false
		}
	}
	return true
}

// Query turns the filter into a storage query: topic terms resolved against
// topics (nil: matched by name when the query runs).
func (f *Filter) Query(topics []storage.Topic) storage.Query {
	var s storage.Query
	switch {
	case len(f.Topics) == 0 && len(f.Excludes) == 0:
	case topics == nil:
		s.Match = f.MatchTopic
	default:
		s.TopicIDs = []int64{}
		for _, t := range topics {
			if f.MatchTopic(t.Name) {
				s.TopicIDs = append(s.TopicIDs, t.ID)
			}
		}
	}
	s.Session = f.Session
	s.QoS = f.QoS
	s.FromStore = f.Retained
	s.PayloadContains = f.Contains
	for _, re := range f.Regexps {
		// Every match starts with the literal prefix, so SQLite can skip
		// payloads without it before Go runs the expression.
		if prefix, _ := re.LiteralPrefix(); prefix != "" {
			s.PayloadContains = append(s.PayloadContains[:len(s.PayloadContains):len(s.PayloadContains)], []byte(prefix))
		}
	}
	if len(f.Regexps) > 0 {
		res := f.Regexps
		s.PayloadMatch = func(p []byte) bool {
			for _, re := range res {
				if !re.Match(p) {
					return false
				}
			}
			return true
		}
	}
	if len(f.Where) > 0 {
		// On the decoded value (else the JSON payload), as export --where.
		wq, values := f.where, f.values
		if values == nil {
			values = func(m *storage.Message) []byte { return m.Payload }
		}
		s.MessageMatch = func(m *storage.Message) bool { return wq.MatchJSON(values(m)) }
	}
	for _, b := range []struct {
		p        *timespec.Point
		off, abs **int64
	}{{f.From, &s.FromOffset, &s.FromTime}, {f.To, &s.ToOffset, &s.ToTime}} {
		if b.p == nil {
			continue
		}
		if b.p.Absolute {
			v := b.p.Time.UnixNano()
			*b.abs = &v
		} else {
			v := int64(b.p.Offset)
			*b.off = &v
		}
	}
	return s
}

// Describe says how the filter was understood, for the header.
func (f *Filter) Describe(loc *time.Location) string {
	if f.Empty() {
		return "none"
	}
	var parts []string
	if len(f.Topics) > 0 {
		parts = append(parts, "topic "+strings.Join(f.Topics, " | "))
	}
	for _, ex := range f.Excludes {
		parts = append(parts, "not "+ex)
	}
	for _, c := range f.Contains {
		parts = append(parts, "payload contains "+strconv.Quote(string(c)))
	}
	for _, re := range f.Regexps {
		parts = append(parts, "payload ~ /"+re.String()+"/")
	}
	parts = append(parts, f.Where...)
	if f.QoS != nil {
		var qs []string
		for _, q := range f.QoS {
			qs = append(qs, strconv.Itoa(int(q)))
		}
		if len(qs) == 0 {
			qs = []string{"none"}
		}
		parts = append(parts, "qos "+strings.Join(qs, ","))
	}
	if f.Retained != nil {
		if *f.Retained {
			parts = append(parts, "retained")
		} else {
			parts = append(parts, "live (not retained)")
		}
	}
	if f.Session != 0 {
		parts = append(parts, "session "+strconv.FormatInt(f.Session, 10))
	}
	if f.From != nil || f.To != nil {
		show := func(p *timespec.Point) string {
			switch {
			case p == nil:
				return ""
			case p.Absolute:
				return p.Time.In(loc).Format("2006-01-02 15:04:05.999")
			}
			return "+" + p.Offset.String()
		}
		parts = append(parts, "time "+show(f.From)+".."+show(f.To))
	}
	return strings.Join(parts, ", ")
}

// ReplaceTopicTerms swaps the topic filters of a query for one ("" for none),
// keeping its other terms.
func ReplaceTopicTerms(query, filter string, env Env) string {
	terms, _ := splitTerms(query)
	var keep []string
	if filter != "" {
		if strings.ContainsAny(filter, " \t\"\\") {
			filter = "topic:" + strconv.Quote(filter)
		}
		keep = append(keep, filter)
	}
	for _, t := range terms {
		var probe Filter
		if err := probe.addTerm(t, env); err == nil && len(probe.Topics) > 0 {
			continue
		}
		keep = append(keep, t.src)
	}
	return strings.Join(keep, " ")
}
