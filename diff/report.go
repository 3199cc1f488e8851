package diff

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/internal/termsafe"
)

// topicWidth is how many characters of a topic the text report shows (the
// JSON report carries it whole).
const topicWidth = 120

// WriteText writes the human form of a report. Data (names, topics,
// payloads) is shown with its control characters visible, one line each.
func (r *Report) WriteText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	p := func(format string, a ...any) { fmt.Fprintf(bw, format, a...) }
	for _, s := range []struct {
		label string
		side  Side
	}{{"A", r.A}, {"B", r.B}} {
		p("%s: %s (%s, %s, %d retained)\n", s.label, termsafe.String(s.side.Name), humanize.Count(s.side.Messages, "live message", "live messages"),
			humanize.Count(int64(s.side.Topics), "topic", "topics"), s.side.Retained)
	}
	for _, x := range []struct {
		label string
		list  []TopicCount
	}{{"only in A", r.OnlyInA}, {"only in B", r.OnlyInB}} {
		if len(x.list) == 0 {
			continue
		}
		p("\ntopics %s (%d):\n", x.label, len(x.list))
		for _, t := range x.list {
			p("  %s  (%s)\n", termsafe.Cell(t.Topic, topicWidth), humanize.Count(t.Count, "message", "messages"))
		}
	}
	for _, t := range r.Topics {
		mark := "~"
		if t.Significant {
			mark = "!"
		}
		p("\n%s %s\n", mark, termsafe.Cell(t.Topic, topicWidth))
		if t.CountA != t.CountB {
			p("    count %d → %d (%+d)%s\n", t.CountA, t.CountB, t.CountB-t.CountA, within(!t.CountChanged))
		}
		if t.RateChanged {
			p("    rate %.3g → %.3g msg/s (%+.1f%%)\n", t.RateA, t.RateB, 100*(t.RateB-t.RateA)/t.RateA)
		}
		if t.SizeChanged {
			p("    mean size %.1f → %.1f bytes\n", t.SizeA, t.SizeB)
		}
		if t.Changed+t.Missing+t.Extra > 0 {
			p("    %d changed, %d missing in B, %d extra in B\n", t.Changed, t.Missing, t.Extra)
		}
		if t.Moved > 0 {
			p("    %s in another order%s\n", humanize.Count(t.Moved, "message", "messages"), orderNote(r.Options.StrictOrder))
		}
		for _, m := range t.Messages {
			switch m.Kind {
			case "changed":
				p("    #%d→#%d changed (seq %d→%d)\n", m.IndexA, m.IndexB, m.SeqA, m.SeqB)
				writeFields(bw, m.Fields, m.MoreFields, m.PayloadA, m.PayloadB)
			case "missing":
				p("    #%d missing in B (seq %d): %s\n", m.IndexA, m.SeqA, termsafe.String(m.PayloadA))
			case "extra":
				p("    #%d extra in B (seq %d): %s\n", m.IndexB, m.SeqB, termsafe.String(m.PayloadB))
			case "moved":
				p("    #%d→#%d moved (seq %d→%d)\n", m.IndexA, m.IndexB, m.SeqA, m.SeqB)
			}
		}
		if n := t.Changed + t.Missing + t.Extra + t.Moved - int64(len(t.Messages)); n > 0 {
			p("    … %d more\n", n)
		}
	}
	if len(r.Retain) > 0 {
		p("\nretained state at the end (%s):\n", differ(len(r.Retain), "topic", "topics"))
		for _, d := range r.Retain {
			switch d.Kind {
			case "only_in_a":
				p("  %s: only in A: %s\n", termsafe.Cell(d.Topic, topicWidth), termsafe.String(d.PayloadA))
			case "only_in_b":
				p("  %s: only in B: %s\n", termsafe.Cell(d.Topic, topicWidth), termsafe.String(d.PayloadB))
			default:
				p("  %s: changed\n", termsafe.Cell(d.Topic, topicWidth))
				writeFields(bw, d.Fields, d.MoreFields, d.PayloadA, d.PayloadB)
			}
		}
	}
	p("\n%s\n", r.Verdict())
	return bw.Flush()
}

// Verdict is the one-line conclusion of a report.
func (r *Report) Verdict() string {
	if r.Equal {
		return "equal within tolerances"
	}
	n := 0
	for _, t := range r.Topics {
		if t.Significant {
			n++
		}
	}
	var parts []string
	if k := len(r.OnlyInA) + len(r.OnlyInB); k > 0 {
		parts = append(parts, humanize.Count(int64(k), "topic", "topics")+" on one side only")
	}
	if n > 0 {
		parts = append(parts, differ(n, "topic", "topics"))
	}
	if len(r.Retain) > 0 {
		parts = append(parts, differ(len(r.Retain), "retained state", "retained states"))
	}
	return "different: " + strings.Join(parts, ", ")
}

// differ says "1 topic differs" or "2 topics differ".
func differ(n int, one, many string) string {
	return humanize.Count(int64(n), one, many) + humanize.Plural(int64(n), " differs", " differ")
}

func orderNote(strict bool) string {
	if strict {
		return ""
	}
	return "  (tolerated: MQTT orders messages only per publisher and QoS; --strict-order counts it)"
}

func within(ok bool) string {
	if ok {
		return "  (within tolerance)"
	}
	return ""
}

func writeFields(w io.Writer, fields []FieldDiff, more bool, pa, pb string) {
	for _, f := range fields {
		fmt.Fprintf(w, "        %s: %s → %s\n", termsafe.String(f.Path), orAbsent(f.A), orAbsent(f.B))
	}
	if more {
		fmt.Fprintf(w, "        …\n")
	}
	if pa != "" || pb != "" {
		fmt.Fprintf(w, "        A: %s\n        B: %s\n", termsafe.String(pa), termsafe.String(pb))
	}
}

func orAbsent(v []byte) string {
	if v == nil {
		return "(absent)"
	}
	return termsafe.String(string(v))
}
