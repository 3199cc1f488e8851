package filter

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/mqtape/mqtape/storage"
)

// Predicate parses text, a query of the / line, into a check of one
// message as it is received (record --trigger). Terms that only make sense
// in a capture (session:N, time ranges) are refused. Bare words are topics
// only when they have MQTT structure (a/b, +, #, $...); else payload text.
// values, when set, gives the decoded value that .PATH and metric: terms
// read (nil: the JSON payload).
func Predicate(text string, values ValueFunc) (func(m *storage.Message) bool, error) {
	f, err := Parse(text, Env{Values: values})
	if err != nil {
		return nil, err
	}
	switch {
	case f.Empty():
		return nil, fmt.Errorf("%w: empty query", ErrFilter)
	case f.Session != 0:
		return nil, fmt.Errorf("%w: session: selects from a capture, not from live traffic", ErrFilter)
	case f.From != nil || f.To != nil:
		return nil, fmt.Errorf("%w: a time range selects from a capture, not from live traffic", ErrFilter)
	}
	q := f.Query(nil)
	return func(m *storage.Message) bool {
		if !f.MatchTopic(m.Topic) {
			return false
		}
		if f.QoS != nil && !slices.Contains(f.QoS, m.QoS) {
			return false
		}
		if f.Retained != nil && *f.Retained != m.FromStore {
			return false
		}
		for _, c := range f.Contains {
			if !bytes.Contains(m.Payload, c) {
				return false
			}
		}
		if q.PayloadMatch != nil && !q.PayloadMatch(m.Payload) {
			return false
		}
		return q.MessageMatch == nil || q.MessageMatch(m)
	}, nil
}
