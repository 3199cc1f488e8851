package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/sparkplugtest"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

func TestPlayDryRun(t *testing.T) {
	path := capturetest.WriteOffsets(t,
		[]storage.Message{{OffsetNS: 0, Topic: "s", QoS: 1, Retain: true, FromStore: true, Payload: []byte("A")},
			capturetest.Msg(time.Second, "a/x", 1, "12"), capturetest.Msg(time.Hour, "a/y", 0, "123")},
		[]storage.Message{capturetest.Msg(time.Second, "a/x", 2, "1")},
	)
	code, out, errOut := runCLI(t, context.Background(), "play", path, "--dry-run", "--speed", "2", "--max-gap", "1m",
		"--topic-prefix", "sb/", "--loop", "3", "--broker", "mqtt://127.0.0.1:1") // never contacted
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	for _, want := range []string{"dry run: nothing is sent", "sessions 1, 2", "4 per pass (1 retained restore)",
		"30s per pass at speed 2 (1m0s of capture time), 3 passes: 1m30s", "on 3 topics", "first:     +0s", "sb/s  (session 1, seq 1, QoS 1",
		"retained restore)", "last:      +30s  ", "sb/a/x  (session 2", "2  sb/a/x  ← a/x"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, context.Background(), "play", path, "--dry-run", "--json", "--session", "1", "--retained", "skip")
	var pl PlayPlan
	if err := json.Unmarshal([]byte(out), &pl); err != nil || code != 0 {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	if pl.Messages != 2 || pl.Restored != 0 || pl.CaptureS != 3599 || pl.First.Topic != "a/x" || pl.Last.Topic != "a/y" ||
		len(pl.Topics) != 2 || !slices.Equal(pl.Sessions, []int64{1}) {
		t.Errorf("plan = %+v", pl)
	}
}

// TestPlayProtocolAsRecorded: play connects with the capture's MQTT
// version unless -V says otherwise; the dry run says which, and how many
// messages carry properties.
func TestPlayProtocolAsRecorded(t *testing.T) {
	dir := t.TempDir()
	const start = int64(1_790_000_000_000_000_000)
	props := &mqtt.Properties{ContentType: "text/plain", SubscriptionIDs: []int{1}}
	write := func(name string, protocol int) string {
		path := filepath.Join(dir, name)
		capturetest.Write(t, path, capturetest.Session{Info: storage.SessionInfo{Source: "subscriber", Protocol: protocol, StartedNS: start},
			Messages: []storage.Message{{TimeNS: start, Topic: "a", Payload: []byte("x"), Props: props},
				{TimeNS: start + 1, Topic: "a", Payload: []byte("y"), Props: &mqtt.Properties{SubscriptionIDs: []int{1}}}}})
		return path
	}
	v5, v4 := write("v5.db", 5), write("v4.db", 4)
	for _, tt := range []struct {
		args      []string
		protocol  string
		withProps int64
		warning   string
	}{
		{[]string{v5}, "5", 1, ""},
		{[]string{v4}, "311", 1, ""},
		{[]string{v5, "-V", "3.1.1"}, "311", 1, "over MQTT 3.1.1 (-V 311) 1 message of 2 loses its properties"},
		{[]string{v4, "-V", "5"}, "5", 1, ""},
	} {
		code, out, stderr := runCLI(t, context.Background(), append([]string{"play", "--dry-run", "--json"}, tt.args...)...)
		var pl PlayPlan
		if err := json.Unmarshal([]byte(out), &pl); err != nil || code != 0 || pl.Protocol != tt.protocol || pl.WithProps != tt.withProps ||
			!strings.Contains(stderr, tt.warning) || (tt.warning == "" && stderr != "") {
			t.Errorf("%v: exit %d, plan %+v\n%s", tt.args, code, pl, stderr)
		}
	}
	if code, _, stderr := runCLI(t, context.Background(), "play", "--dry-run", v5, "-V", "7"); code != exitUsage || !strings.Contains(stderr, "--protocol-version \"7\"") {
		t.Errorf("-V 7: exit %d %s", code, stderr)
	}
}

// sparkplugCapture writes sparkplugtest's edge node, one message a
// second, with extra messages after it.
func sparkplugCapture(t *testing.T, extra ...storage.Message) string {
	t.Helper()
	var msgs []storage.Message
	for i, m := range sparkplugtest.EdgeNode() {
		msgs = append(msgs, storage.Message{OffsetNS: int64(i) * int64(time.Second), Topic: m.Topic, QoS: 1, Payload: m.Payload})
	}
	return capturetest.WriteOffsets(t, append(msgs, extra...))
}

// TestPlayDryRunDecoded: --dry-run --decode lists each message as it
// would be sent, decoded in send order: from inside the Sparkplug session
// the births go first and name the aliases of the data after them;
// --sparkplug-seq renumber shows the seq as sent.
func TestPlayDryRunDecoded(t *testing.T) {
	reading, err := cbor.Marshal(map[string]any{"celsius": 21.5, "raw": []byte{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	path := sparkplugCapture(t, storage.Message{OffsetNS: int64(7500 * time.Millisecond), Topic: "sensors/a", Payload: reading},
		storage.Message{OffsetNS: 8e9, Topic: "sensors/b", Payload: []byte{0xff, 0}},
		storage.Message{OffsetNS: 9e9, Topic: "notes", Payload: []byte("hello")})
	code, out, errOut := runCLI(t, context.Background(), "play", path, "--dry-run", "--from", "3500ms",
		"--decode", "sensors/#=cbor", "--decode", "spBv1.0/#=sparkplug")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errOut)
	}
	for _, want := range []string{"dry run: nothing is sent", "messages:\n",
		"+0s         spBv1.0/plant/NBIRTH/edge1  bdSeq=0 Node Control/Rebirth=false Temperature=20.5\n",
		"spBv1.0/plant/DBIRTH/edge1/pump1  Running=false Count=0\n",
		"+0s         spBv1.0/plant/DDATA/edge1/pump1  Count=-4\n",
		"spBv1.0/plant/NDATA/edge1  Pressure=2.25\n",
		`sensors/a  {"celsius":21.5,"raw":"AQI="}`,
		"sensors/b  decode_error: cbor: unexpected \"break\" code\n", "notes  hello\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCLI(t, context.Background(), "play", path, "--dry-run", "--json", "--from", "3500ms",
		"--sparkplug-seq", "renumber", "--decode", "spBv1.0/#=sparkplug", "-t", "spBv1.0/#")
	var pl struct {
		PlayPlan
		Messages []PlayPlanListed `json:"messages"`
	}
	if err := json.Unmarshal([]byte(out), &pl); err != nil || code != 0 {
		t.Fatalf("exit %d, %v %s\n%s", code, err, errOut, out)
	}
	if pl.PlayPlan.Messages != 6 || len(pl.Messages) != 6 || pl.File != path {
		t.Fatalf("plan %+v", pl)
	}
	var ddata struct {
		Seq     int `json:"seq"`
		Metrics []struct {
			Name  string `json:"name"`
			Value int    `json:"value"`
		} `json:"metrics"`
	}
	m := pl.Messages[2]
	if !pl.Messages[0].Birth || !pl.Messages[1].Birth || m.Birth || m.Topic != "spBv1.0/plant/DDATA/edge1/pump1" ||
		json.Unmarshal(m.Decoded, &ddata) != nil || ddata.Seq != 2 || len(ddata.Metrics) != 1 || ddata.Metrics[0].Name != "Count" ||
		ddata.Metrics[0].Value != -4 || m.Payload != nil {
		t.Errorf("DDATA listed as %+v (decoded %s)", m, m.Decoded)
	}
	for _, args := range [][]string{{"--decode", "a=cbor"}, {"--dry-run", "--decode", "a=yaml"}, {"--dry-run", "--proto", "missing.proto"}} {
		if code, _, errOut := runCLI(t, context.Background(), append([]string{"play", path}, args...)...); code != exitUsage || errOut == "" {
			t.Errorf("%v: exit %d %s", args, code, errOut)
		}
	}
}
