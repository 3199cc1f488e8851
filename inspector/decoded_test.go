package inspector

import (
	"slices"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
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
	dec := export.NewResolver(c, reg).Decode
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

// decodedCapture is sparkplugtest's edge node, a message a second, then
// CBOR readings on sensors/…, with a Resolver decoding sensors/# as CBOR.
func decodedCapture(t *testing.T) (*storage.Capture, DecodeFunc) {
	t.Helper()
	var msgs []storage.Message
	for i, m := range sparkplugtest.EdgeNode() {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * int64(time.Second), Topic: m.Topic, QoS: 1, Payload: m.Payload})
	}
	for i, c := range []float64{19.5, 26.25, 22} {
		b, err := cbor.Marshal(map[string]any{"celsius": c, "id": "s-1"})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, storage.Message{OffsetNS: int64(10+i) * int64(time.Second), Topic: "sensors/s-1", Payload: b})
	}
	c := open(t, writeCapture(t, msgs))
	rules, err := decode.ParseRules([]string{"sensors/#=cbor"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := decode.NewRegistry(rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, export.NewResolver(c, reg).Decode
}

// decodedOptions are the inspector's options with the Resolver of c.
func decodedOptions(t *testing.T, c *storage.Capture, rules ...string) Options {
	t.Helper()
	parsed, err := decode.ParseRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := decode.NewRegistry(parsed, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := export.NewResolver(c, reg)
	return Options{Decode: r.Decode, MayDecode: r.MayDecode}
}

// TestFilterOnDecoded: the / line's .PATH and metric: terms read decoded
// values: Sparkplug metrics by the names their births gave the aliases
// (also a birth's own), CBOR fields; counts follow.
func TestFilterOnDecoded(t *testing.T) {
	c, dec := decodedCapture(t)
	h := startOn(t, c, Options{Decode: dec}, 140, 30)
	for _, tc := range []struct {
		filter string
		seqs   []int64
	}{
		{"metric:Count<0", []int64{5}},           // DDATA with the alias of Count only
		{"metric:Count>=0", []int64{3, 4}},       // the DBIRTH names it itself
		{"metric:Pressure>2", []int64{8}},        // after the rebirth, alias 2 is Pressure
		{"metric:Temperature=21.75", []int64{2}}, // before it, alias 2 is Temperature
		{".celsius>20", []int64{10, 11}},         // CBOR
		{`sensors/# .id="s-1" .celsius<20`, []int64{9}},
	} {
		h.press(tcell.KeyCtrlU, '/', tcell.KeyCtrlU, tc.filter, tcell.KeyEnter)
		var got []int64
		h.state(func(u *UI) {
			for r := range u.m.total {
				if m := u.m.rowAt(u.ctx, r); m != nil {
					got = append(got, m.Seq)
				}
			}
		})
		if !slices.Equal(got, tc.seqs) {
			t.Errorf("/%s selects %v, want %v\n%s", tc.filter, got, tc.seqs, h.text())
		}
	}
}

// TestDecodedColumnAndPlot: the payload column shows each decoded value
// on one line (Sparkplug metrics by name, CBOR as JSON, a failing decoder
// says so); the field plot offers a Sparkplug message's metrics by name
// and plots them over the topic's messages.
func TestDecodedColumnAndPlot(t *testing.T) {
	c, _ := decodedCapture(t)
	bad, err := storage.Open(writeCapture(t, []storage.Message{{Topic: "sensors/x", Payload: []byte{0xbf, 0x61}},
		{Topic: "plain", Payload: []byte{0xbf, 0x61}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	h := startOn(t, c, decodedOptions(t, c, "sensors/#=cbor"), 160, 40)
	for _, w := range []string{
		"spBv1.0/plant/NBIRTH/edge1       1     72 bdSeq=0 Node Control/Rebirth=false Temperature=20.5",
		"spBv1.0/plant/NDATA/edge1        1     14 Temperature=21.75",
		"spBv1.0/plant/DDATA/edge1/pump1  1     17 Running=true Count=3",
		"Count=-4", "Pressure=2.25", `{"celsius":26.25,"id":"s-1"}`,
	} {
		if !h.contains(w) {
			t.Errorf("want %q in the table:\n%s", w, h.text())
		}
	}
	h.press(tcell.KeyHome, tcell.KeyDown, tcell.KeyDown, tcell.KeyDown, 's') // seq 4, DDATA
	for _, w := range []string{"metric:Count", "field 1 of 3", "2 values, min -4, max 3"} {
		if !h.contains(w) {
			t.Errorf("want %q in the plot:\n%s", w, h.text())
		}
	}
	h.press('n')
	if !h.contains(".seq") || !h.contains("field 2 of 3") {
		t.Errorf("n: the next field is .seq:\n%s", h.text())
	}

	h = startOn(t, bad, decodedOptions(t, bad, "sensors/#=cbor"), 120, 20)
	if !h.contains("sensors/x 0      2 ⟨cbor: unexpected EOF⟩") || !h.contains("plain     0      2 ⟨bin⟩ bf 61") {
		t.Errorf("a payload the decoder fails on, one no decoder reads:\n%s", h.text())
	}
}
