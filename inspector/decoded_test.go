package inspector

import (
	"context"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/sparkplugtest"
	"github.com/mqtape/mqtape/storage"
)

// TestDetailDecoded: the detail pane shows a Sparkplug B payload as its
// decoded tree, metric names from the births; v cycles to hex; a payload
// the decoder cannot read shows its error and the hex.
func TestDetailDecoded(t *testing.T) {
	var msgs []storage.Message
	for i, m := range sparkplugtest.EdgeNode()[:4] {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * int64(time.Second), Topic: m.Topic, QoS: 1, Payload: m.Payload})
	}
	msgs = append(msgs, storage.Message{OffsetNS: 5e9, Topic: "spBv1.0/plant/DDATA/edge1/pump1", Payload: []byte{0xff, 0xff}})
	c := open(t, writeCapture(t, msgs))
	reg, err := decode.NewRegistry(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dec := func(ctx context.Context, m *storage.Message) ([]byte, string, error) {
		res, err := export.DecodeOne(ctx, c, m, reg)
		if err != nil || !res.Selected {
			return nil, "", err
		}
		return res.Value, res.Format.String(), res.Err
	}
	h := startOn(t, c, Options{Decode: dec}, 120, 50)
	h.press('G') // the last message: not a Sparkplug payload
	for _, w := range []string{"sparkplug failed, hex (auto)", "decode_error: sparkplug: ", "ff ff"} {
		if !h.contains(w) {
			t.Errorf("want %q on screen:\n%s", w, h.text())
		}
	}
	h.press(tcell.KeyUp) // seq 4: DDATA with aliases only
	for _, w := range []string{"decoded sparkplug (auto)", `"name": "Running"`, `"name": "Count"`, `"alias": 11`} {
		if !h.contains(w) {
			t.Errorf("want %q on screen:\n%s", w, h.text())
		}
	}
	h.press('v', 'v', 'v')
	if !h.contains("view hex") {
		t.Errorf("v cycles to hex:\n%s", h.text())
	}
}
