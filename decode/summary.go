package decode

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Summary renders a decoded value on one line of at most max runes (0: no
// limit) for tables and listings: a Sparkplug B payload as its metrics,
// NAME=VALUE separated by spaces (Temperature=21.75 Running=true Count=3;
// #ALIAS for a metric no birth named), anything else as compact JSON.
func Summary(v json.RawMessage, max int) string {
	s := metricsSummary(v)
	if s == "" {
		var b bytes.Buffer
		if json.Compact(&b, v) != nil {
			return ""
		}
		s = b.String()
	}
	if max > 0 && len(s) > max {
		r := []rune(s)
		if len(r) > max {
			s = string(r[:max-1]) + "…"
		}
	}
	return s
}

// metricsSummary is NAME=VALUE for each metric of a Sparkplug B value; ""
// for a value that is not one, or has no metrics.
func metricsSummary(v json.RawMessage) string {
	var p struct {
		Metrics []struct {
			Name  string          `json:"name"`
			Alias *uint64         `json:"alias"`
			Value json.RawMessage `json:"value"`
		} `json:"metrics"`
	}
	if json.Unmarshal(v, &p) != nil || len(p.Metrics) == 0 {
		return ""
	}
	var b strings.Builder
	for i, m := range p.Metrics {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch {
		case m.Name != "":
			b.WriteString(m.Name)
		case m.Alias != nil:
			b.WriteString("#")
			b.WriteString(jsonNumber(*m.Alias))
		default:
			b.WriteString("?")
		}
		b.WriteByte('=')
		var c bytes.Buffer
		if json.Compact(&c, m.Value) == nil {
			b.Write(c.Bytes())
		}
	}
	return b.String()
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
