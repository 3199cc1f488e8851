package cli

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
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
