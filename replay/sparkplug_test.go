package replay_test

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/mqtape/mqtape/internal/sparkplugtest"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

// seqOf reads the seq (field 3) of a Sparkplug B payload; -1 when it has none.
func seqOf(p string) int {
	b := []byte(p)
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		b = b[n:]
		if num == 3 {
			v, _ := protowire.ConsumeVarint(b)
			return int(v)
		}
		b = b[protowire.ConsumeFieldValue(num, typ, b):]
	}
	return -1
}

// TestPlaySparkplugFrom: a replay starting inside a Sparkplug session
// first publishes the births in force at its start (a device that died
// before it has none); --sparkplug-seq renumber counts seq on from them.
func TestPlaySparkplugFrom(t *testing.T) {
	var msgs []storage.Message
	for i, m := range sparkplugtest.EdgeNode() { // one message a second, from 0 s
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * int64(time.Second), Topic: m.Topic, QoS: 1, Payload: m.Payload})
	}
	path := writeCapture(t, msgs)
	short := func(topic string) string { return strings.TrimPrefix(topic, "spBv1.0/plant/") }
	for _, tt := range []struct {
		name     string
		from     time.Duration
		renumber bool
		want     string // topic:seq@s, in publish order
	}{
		{"from the start: as recorded", 0, false,
			"NBIRTH/edge1:0@0 NDATA/edge1:1@1 DBIRTH/edge1/pump1:2@2 DDATA/edge1/pump1:3@3 DDATA/edge1/pump1:5@4 DDEATH/edge1/pump1:6@5 NBIRTH/edge1:0@6 NDATA/edge1:1@7"},
		{"from inside: the node's and the device's births first", 3500 * time.Millisecond, false,
			"NBIRTH/edge1:0@0 DBIRTH/edge1/pump1:2@0 DDATA/edge1/pump1:5@0 DDEATH/edge1/pump1:6@1 NBIRTH/edge1:0@2 NDATA/edge1:1@3"},
		{"after the device died: the node's birth only", 5500 * time.Millisecond, false,
			"NBIRTH/edge1:0@0 NBIRTH/edge1:0@0 NDATA/edge1:1@1"},
		{"renumbered", 3500 * time.Millisecond, true,
			"NBIRTH/edge1:0@0 DBIRTH/edge1/pump1:1@0 DDATA/edge1/pump1:2@0 DDEATH/edge1/pump1:3@1 NBIRTH/edge1:0@2 NDATA/edge1:1@3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := replay.Config{SparkplugRenumber: tt.renumber}
				if tt.from > 0 {
					from := int64(tt.from)
					cfg.Query.FromOffset = &from
				}
				pub := newFakePub()
				if _, err := play(t, path, cfg, pub); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, s := range pub.sent() {
					got = append(got, fmt.Sprintf("%s:%d@%d", short(s.Topic), seqOf(s.Payload), s.At/time.Second))
				}
				if g := strings.Join(got, " "); g != tt.want {
					t.Errorf("published\n %s\nwant\n %s", g, tt.want)
				}
			})
		})
	}
}
