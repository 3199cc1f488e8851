package filter

import (
	"errors"
	"testing"

	"github.com/mqtape/mqtape/storage"
)

func TestPredicate(t *testing.T) {
	msg := func(topic, payload string, qos byte) *storage.Message {
		return &storage.Message{Topic: topic, Payload: []byte(payload), QoS: qos}
	}
	cases := []struct {
		query string
		m     *storage.Message
		want  bool
	}{
		{"alarms/#", msg("alarms/boiler", "x", 0), true},
		{"alarms/#", msg("plant/temp", "x", 0), false},
		{"payload~FAULT", msg("plant/temp", `{"state":"FAULT 7"}`, 0), true},
		{"payload~FAULT", msg("plant/temp", `{"state":"ok"}`, 0), false},
		{"plant/# .temp>80", msg("plant/a", `{"temp":81}`, 1), true},
		{"plant/# .temp>80", msg("plant/a", `{"temp":79}`, 1), false},
		{"qos>=1 overheat", msg("x", "overheat!", 1), true},
		{"qos>=1 overheat", msg("x", "overheat!", 0), false},
		{"a/# !a/quiet", msg("a/quiet", "", 0), false},
	}
	for _, c := range cases {
		p, err := Predicate(c.query, nil)
		if err != nil {
			t.Fatalf("%q: %v", c.query, err)
		}
		if got := p(c.m); got != c.want {
			t.Errorf("%q on %s %q = %v, want %v", c.query, c.m.Topic, c.m.Payload, got, c.want)
		}
	}
	for _, bad := range []string{"", "session:2", "1m..2m", "payload~(", `"open`, ".temp>>3"} {
		if _, err := Predicate(bad, nil); !errors.Is(err, ErrFilter) {
			t.Errorf("%q: err %v, want ErrFilter", bad, err)
		}
	}
}
