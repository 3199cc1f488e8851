package filter

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/storage"
)

var testEnv = Env{
	IsTopic: func(s string) bool { return s == "heartbeat" },
	Start:   time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	Loc:     time.UTC,
}

func TestParseFilter(t *testing.T) {
	cases := []struct {
		in, want string // want: Describe(), or the error text
		err      bool
	}{
		{"", "none", false},
		{"   ", "none", false},
		{"plant/+/temp", "topic plant/+/temp", false},
		{"plant/+/temp status/#", "topic plant/+/temp | status/#", false},
		{"heartbeat", "topic heartbeat", false},                        // an existing topic name
		{"error", `payload contains "error"`, false},                   // not a topic: payload text
		{`"two words"`, `payload contains "two words"`, false},         // quoted text
		{`"odd topic/x"`, "topic odd topic/x", false},                  // quoted topic
		{`topic:"a b"`, "topic a b", false},                            // explicit topic with a space
		{`payload:"a \"q\" b"`, `payload contains "a \"q\" b"`, false}, // escaped quotes
		{"payload~^on(line)?$", "payload ~ /^on(line)?$/", false},
		{"$SYS/#", "topic $SYS/#", false},
		{"!status/# #", "topic #, not status/#", false},
		{"qos>=1", "qos 1,2", false},
		{"qos>0 qos<2", "qos 1", false},
		{"qos=0", "qos 0", false},
		{"qos<=1", "qos 0,1", false},
		{"qos>2", "qos none", false},
		{"retained", "retained", false},
		{"!retained", "live (not retained)", false},
		{"session:2", "session 2", false},
		{"1m..2m30s", "time +1m0s..+2m30s", false},
		{"..90s", "time ..+1m30s", false},
		{"10:05..10:06:30.5", "time 2026-11-26 10:05:00..2026-11-26 10:06:30.5", false},
		{"09:00..", "time 2026-11-27 09:00:00..", false}, // before the start: the next day
		{"2026-11-26T10:00:00Z..", "time 2026-11-26 10:00:00..", false},
		{"a/# qos>=1 retained payload~x 1m.. session:1", `topic a/#, payload ~ /x/, qos 1,2, retained, session 1, time +1m0s..`, false},

		{`"unclosed`, "unclosed quote", true},
		{"a/#/b", "invalid topic filter", true},
		{"a+/b", "invalid topic filter", true},
		{"!a/#/b", "invalid topic filter", true},
		{"payload~(", "missing closing )", true},
		{"payload~", "needs a regular expression", true},
		{"payload:", "needs text", true},
		{"qos>=3", "QoS is 0, 1 or 2", true},
		{"retained !retained", "select nothing", true},
		{"session:0", "numbered from 1", true},
		{"session:x", "numbered from 1", true},
		{"1m..2m 3m..4m", "only one time range", true},
		{"..", "needs a start or an end", true},
		{"yesterday..", "use an offset", true},
		{"25:00..", "not a clock time", true},
		{"-5s..", "use an offset", true},
	}
	for _, tc := range cases {
		f, err := Parse(tc.in, testEnv)
		switch {
		case tc.err && err == nil:
			t.Errorf("Parse(%q) = %q, want an error containing %q", tc.in, f.Describe(time.UTC), tc.want)
		case tc.err && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrFilter)):
			t.Errorf("Parse(%q) error %q, want one containing %q wrapping ErrFilter", tc.in, err, tc.want)
		case !tc.err && err != nil:
			t.Errorf("Parse(%q): %v", tc.in, err)
		case !tc.err && f.Describe(time.UTC) != tc.want:
			t.Errorf("Parse(%q) = %q, want %q", tc.in, f.Describe(time.UTC), tc.want)
		}
	}
}

func TestFilterSelection(t *testing.T) {
	topics := []storage.Topic{{ID: 1, Name: "a/x"}, {ID: 2, Name: "a/y"}, {ID: 3, Name: "b"}, {ID: 4, Name: "$SYS/z"}}
	f, err := Parse(`a/# !a/y # qos<2 !retained 30s..1m payload:x "y z" payload~^q`, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := f.Query(topics)
	if got := s.TopicIDs; len(got) != 2 || got[0] != 1 || got[1] != 3 { // # does not match $SYS
		t.Errorf("topic ids %v, want [1 3]", got)
	}
	if string(s.QoS) != "\x00\x01" || s.FromStore == nil || *s.FromStore || *s.FromOffset != 30e9 || *s.ToOffset != 60e9 ||
		s.FromTime != nil || len(s.PayloadContains) != 3 || string(s.PayloadContains[2]) != "q" || s.PayloadMatch == nil { // q: the regexp's literal prefix
		t.Errorf("selection %+v", s)
	}
	if !s.PayloadMatch([]byte("qq")) || s.PayloadMatch([]byte("xq")) {
		t.Error("regexp predicate")
	}
	if none := (&Filter{Topics: []string{"nope/#"}}).Query(topics); none.TopicIDs == nil || len(none.TopicIDs) != 0 {
		t.Errorf("no matching topic must select nothing, got %v", none.TopicIDs)
	}
	if all := (&Filter{}).Query(topics); all.TopicIDs != nil {
		t.Errorf("no topic terms must select every topic, got %v", all.TopicIDs)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"a/+/b qos>=1", `payload~"(x|y)" retained`, `"q\"q"`, "10:00..11:00", "!a/# #", "session:1 ..5s"} {
		f.Add(s)
	}
	topics := []storage.Topic{{ID: 1, Name: "a/b"}, {ID: 2, Name: ""}, {ID: 3, Name: "$x"}}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := Parse(s, testEnv)
		if err != nil {
			if !errors.Is(err, ErrFilter) {
				t.Fatalf("error %v does not wrap ErrFilter", err)
			}
			return
		}
		_ = flt.Describe(time.UTC)
		sel := flt.Query(topics)
		if sel.PayloadMatch != nil {
			sel.PayloadMatch([]byte(s))
		}
		if sel.MessageMatch != nil {
			sel.MessageMatch(&storage.Message{Topic: s, Payload: []byte(s)})
		}
	})
}

// TestFilterWhereTerms: the / line takes export --where's terms and
// applies them to JSON payloads (with no decoder), ANDed with the rest.
func TestFilterWhereTerms(t *testing.T) {
	f, err := Parse(`plant/# .celsius>25 metric:"Node Control/Rebirth"=false ..90s`, testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Where) != 2 || f.To == nil || len(f.Topics) != 1 || !f.HasPayload() {
		t.Fatalf("parsed %+v", f)
	}
	if d := f.Describe(time.UTC); !strings.Contains(d, ".celsius>25") || !strings.Contains(d, `metric:"Node Control/Rebirth"=false`) {
		t.Errorf("describe %q", d)
	}
	sel := f.Query(nil)
	hot := `{"celsius":26,"metrics":[{"name":"Node Control/Rebirth","value":false}]}`
	for payload, want := range map[string]bool{
		hot: true,
		`{"celsius":24,"metrics":[{"name":"Node Control/Rebirth","value":false}]}`: false,
		`{"celsius":26}`: false,
		`not json`:       false,
	} {
		if got := sel.MessageMatch(&storage.Message{Topic: "plant/x", Payload: []byte(payload)}); got != want {
			t.Errorf("%s: %v, want %v", payload, got, want)
		}
	}
	if _, err := Parse(".celsius", testEnv); !errors.Is(err, ErrFilter) || !strings.Contains(err.Error(), "needs an operator") {
		t.Errorf(".celsius: %v", err)
	}
}
