package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
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
