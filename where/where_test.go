package where

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const sparkplug = `{"timestamp":1,"seq":3,"metrics":[{"name":"Temperature","alias":2,"datatype":"Float","value":21.75},` +
	`{"name":"Node Control/Rebirth","alias":1,"datatype":"Boolean","value":false},{"name":"Count","value":3}]}`

func TestMatch(t *testing.T) {
	doc := `{"celsius":25.5,"status":"ERR","count":"1152921504606846976","ok":true,"none":null,` +
		`"readings":[{"t":19},{"t":22}],"meta":{"site":"north","inner":{"ts":"2026-11-26"}}}`
	for _, tc := range []struct {
		q    string
		doc  string
		want bool
	}{
		{".celsius>25", doc, true},
		{".celsius>25.5", doc, false},
		{".celsius>=25.5", doc, true},
		{".celsius<1e3", doc, true},
		{`.status="ERR"`, doc, true},
		{".status=ERR", doc, true},
		{`.status!="ERR"`, doc, false},
		{".status~^E", doc, true},
		{".count>1152921504606846975", doc, true}, // protojson's 64-bit integers are strings
		{".count=1152921504606846976", doc, true},
		{".ok=true", doc, true},
		{".ok=false", doc, false},
		{".none=null", doc, true},
		{".readings[1].t=22", doc, true},
		{".readings[0].t=22", doc, false},
		{".readings[*].t>20", doc, true},
		{".readings[*].t>30", doc, false},
		{".**.ts~^2026", doc, true},
		{".meta.site=north .celsius>20", doc, true}, // ANDed
		{".meta.site=north .celsius>30", doc, false},
		{".missing=1", doc, false},
		{".celsius>25", `not json`, false},
		{"metric:Temperature>21", sparkplug, true},
		{"metric:Temperature>22", sparkplug, false},
		{`metric:"Node Control/Rebirth"=false`, sparkplug, true},
		{`metric:"Node Control/Rebirth"=true`, sparkplug, false},
		{"metric:Count=3 metric:Temperature<30", sparkplug, true},
		{"metric:Nope=3", sparkplug, false},
		{"", doc, true},
	} {
		q, err := Parse(tc.q)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.q, err)
			continue
		}
		if got := q.MatchJSON([]byte(tc.doc)); got != tc.want {
			t.Errorf("%q on %.40s: %v, want %v", tc.q, tc.doc, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for q, want := range map[string]string{
		".celsius":           "needs an operator",
		".celsius>":          "needs a value",
		"celsius>3":          "use .PATH OP VALUE or metric:NAME OP VALUE",
		".a..b=1":            "empty segment",
		".a[x]=1":            "not a number or *",
		`.s~(`:               "missing closing )",
		`metric:"Node Ctl=1`: "unclosed quote",
		"metric:=1":          "needs a metric name",
		`.s="abc`:            "unclosed quote",
		".celsius>>20":       `">>" is not an operator`,
		".s=~^err":           `"=~" is not an operator`,
		"metric:Count=<3":    `"=<" is not an operator`,
	} {
		_, err := Parse(q)
		if err == nil || !errors.Is(err, ErrQuery) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want ErrQuery mentioning %q", q, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{".a>1", `metric:"x y"=true`, ".**.ts~^2", `.a="b c" .d!=null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err == nil {
			q.MatchJSON([]byte(`{"a":[1,{"b":"c"}],"metrics":[{"name":"x y","value":true}]}`))
		}
	})
}

// TestMetricTermRoundTrip: every name MetricTerm writes parses back to a
// term on that metric.
func TestMetricTermRoundTrip(t *testing.T) {
	for _, name := range []string{"Temperature", "Node Control/Rebirth", `a"b`, "x=y", "tab\there", "ünïcode", "a\\b"} {
		q, err := Parse(MetricTerm(name) + "=1")
		if err != nil {
			t.Errorf("%q: %s does not parse: %v", name, MetricTerm(name), err)
			continue
		}
		doc := map[string]any{"metrics": []any{map[string]any{"name": "other", "value": json.Number("1")},
			map[string]any{"name": name, "value": json.Number("1")}}}
		if !q.Match(doc) {
			t.Errorf("%q: %s does not match its metric", name, MetricTerm(name))
		}
	}
}
