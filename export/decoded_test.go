package export

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/sparkplugtest"
	"github.com/mqtape/mqtape/storage"
)

// TestResolverMatchesStream: decoding single messages in any order gives
// what reading the capture in order gives (seq gaps aside), twice over:
// Sparkplug aliases resolve from the births before each message, a
// rebirth's new aliases only after it.
func TestResolverMatchesStream(t *testing.T) {
	ctx := context.Background()
	var msgs []storage.Message
	for i, m := range append(sparkplugtest.EdgeNode(), sparkplugtest.EdgeNode()...) {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * int64(time.Second), Topic: m.Topic, Payload: m.Payload})
	}
	msgs = append(msgs, storage.Message{OffsetNS: 99e9, Topic: "other", Payload: []byte(`{"a":1}`)})
	c, err := storage.Open(capturetest.WriteOffsets(t, msgs))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg, err := decode.NewRegistry(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var stream []Decoded
	for d, err := range Decode(ctx, c, storage.Query{}, reg) {
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, d)
	}
	r := NewResolver(c, reg)
	// Forwards first (the births are read as far as each message needs),
	// then backwards (every decoder is reused).
	order := make([]int, 0, 2*len(stream))
	for i := range stream {
		order = append(order, i)
	}
	for i := len(stream) - 1; i >= 0; i-- {
		order = append(order, i)
	}
	resolved := 0
	for _, i := range order {
		d := stream[i]
		got, err := r.Decode(ctx, &d.Message)
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.ReplaceAll(d.Result.Value, []byte(`,"seq_gap":true`), nil)
		if !bytes.Equal(got.Value, want) || got.Selected != d.Result.Selected {
			t.Errorf("seq %d %s:\n got %s\nwant %s", d.Seq, d.Topic, got.Value, want)
		}
		if strings.Contains(d.Topic, "DATA") && bytes.Contains(got.Value, []byte(`"name"`)) {
			resolved++
		}
	}
	if !r.MayDecode("spBv1.0/plant/NDATA/edge1") || r.MayDecode("other") {
		t.Error("MayDecode: Sparkplug topics only, in an MQTT 3.1.1 capture with no --decode")
	}
	if resolved != 2*8 { // 4 data messages in each edge node session, each decoded twice
		t.Errorf("%d data messages had named metrics, want 16", resolved)
	}
}
