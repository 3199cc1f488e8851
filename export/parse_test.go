package export

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestLineRecordHasRecordsKeys: what ParseLine reads is exactly what New
// writes, key for key, so the two forms cannot drift apart.
func TestLineRecordHasRecordsKeys(t *testing.T) {
	keys := func(v any) []string {
		var out []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			out = append(out, name)
		}
		slices.Sort(out)
		return out
	}
	if w, r := keys(Record{}), keys(lineRecord{}); !slices.Equal(w, r) {
		t.Errorf("Record's keys %v, ParseLine's %v", w, r)
	}
}

// TestParseLineRoundTrip: a written record reads back as the same message.
func TestParseLineRoundTrip(t *testing.T) {
	line := []byte(`{"seq":3,"session":2,"time":"2026-01-01T00:00:00.000000001Z","ts_ns":1767225600000000001,"offset_ns":5,"topic":"a/b","qos":1,"retain":true,"dup":false,"packet_id":7,"from_store":true,"client_id":"dev","payload_b64":"AP8=","properties":{"content_type":"x"}}`)
	l, err := ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	m := l.Message
	if !l.HasSession || l.Session != 2 || !l.HasTime || !l.HasOffset || m.TimeNS != 1767225600000000001 || m.OffsetNS != 5 ||
		m.Topic != "a/b" || m.QoS != 1 || !m.Retain || m.PacketID != 7 || !m.FromStore || m.ClientID != "dev" ||
		string(m.Payload) != "\x00\xff" || m.Props == nil || m.Props.ContentType != "x" {
		t.Errorf("parsed %+v %+v", l, m)
	}
}

func FuzzJSONLLine(f *testing.F) {
	for _, s := range []string{
		`{"seq":1,"session":1,"ts_ns":1000,"offset_ns":0,"topic":"a","qos":1,"retain":true,"payload_b64":"AP8="}`,
		`{"topic":"h","time":"2026-01-01T00:00:00Z","payload":{"x":[1,2]}}`,
		`{"topic":"a","qos":7}`, `{"topic":""}`, `{`, `[]`, `{"topic":"a","payload_b64":"!!"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		l, err := ParseLine(line)
		if err != nil {
			return
		}
		if l.Message.QoS > 2 || l.Message.Topic == "" || l.Message.Payload == nil || l.Message.OffsetNS < 0 {
			t.Errorf("accepted a bad record: %+v", l)
		}
	})
}
