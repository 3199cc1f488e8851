package cli

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

func TestParsePlay(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
		chk  func(playOptions) bool
	}{
		{[]string{"c.db"}, true, func(o playOptions) bool {
			return o.speed == 1 && o.loop == 1 && !o.overrideQoS && o.retainedMode == replay.RetainedKeep &&
				o.maxInflight == 1000 && o.file == "c.db" && o.query.Match == nil
		}},
		{[]string{"c.db", "--speed", "max", "--loop", "0", "--qos", "1", "--retained", "live", "--max-inflight", "5"}, true,
			func(o playOptions) bool {
				c := o.config()
				return math.IsInf(o.speed, 1) && c.Loop == replay.Forever && c.OverrideQoS && c.QoS == 1 &&
					c.Retained == replay.RetainedLive && c.MaxInflight == 5
			}},
		{[]string{"c.db", "--sparkplug-seq", "renumber"}, true, func(o playOptions) bool { return o.config().SparkplugRenumber }},
		{[]string{"c.db"}, true, func(o playOptions) bool { return !o.config().SparkplugRenumber }},
		{[]string{"c.db", "--sparkplug-seq", "reset"}, false, nil},
		{[]string{"--speed", "0.25", "-t", "plant/#", "-x", "plant/+/debug", "--from", "30s", "--to", "2m", "c.db"}, true,
			func(o playOptions) bool {
				q := o.query
				return o.speed == 0.25 && q.Match("plant/1/temp") && !q.Match("plant/1/debug") && !q.Match("other") &&
					*q.FromOffset == int64(30*time.Second) && *q.ToOffset == int64(2*time.Minute)
			}},
		{[]string{"c.db", "--speed", "4x", "--topic-prefix", "sandbox/", "--remap", "a/=b/", "--remap", "c=", "--max-gap", "5s",
			"--session", "2", "--dry-run", "--json", "--retained", "skip"}, true, func(o playOptions) bool {
			return o.speed == 4 && o.topicPrefix == "sandbox/" && slices.Equal(o.remaps, []replay.Remap{{Old: "a/", New: "b/"}, {Old: "c", New: ""}}) &&
				o.maxGap == 5*time.Second && o.query.Session == 2 && o.dryRun && o.json && o.retainedMode == replay.RetainedSkip
		}},
		{[]string{"c.db", "--from", "2026-11-26T10:00:00Z"}, true, func(o playOptions) bool { return o.query.FromTime != nil }},
		{[]string{}, false, nil},
		{[]string{"a.db", "b.db"}, true, func(o playOptions) bool { return len(o.inputs) == 2 }}, // parts read as one
		{[]string{"c.db", "--speed", "0"}, false, nil},
		{[]string{"c.db", "--speed", "-2"}, false, nil},
		{[]string{"c.db", "--speed", "fast"}, false, nil},
		{[]string{"c.db", "--speed", "NaN"}, false, nil},
		{[]string{"c.db", "--speed", "Inf"}, false, nil},
		{[]string{"c.db", "--loop", "-1"}, false, nil},
		{[]string{"c.db", "--qos", "3"}, false, nil},
		{[]string{"c.db", "--retained", "yes"}, false, nil},
		{[]string{"c.db", "--remap", "nothing"}, false, nil},
		{[]string{"c.db", "--remap", "=x"}, false, nil},
		{[]string{"c.db", "--remap", "a/=b/#"}, false, nil},
		{[]string{"c.db", "--topic-prefix", "+/"}, false, nil},
		{[]string{"c.db", "--max-gap", "-1s"}, false, nil},
		{[]string{"c.db", "--max-inflight", "0"}, false, nil},
		{[]string{"c.db", "-t", "a/#/b"}, false, nil},
		{[]string{"c.db", "-x", "a+"}, false, nil},
		{[]string{"c.db", "--from", "yesterday"}, false, nil},
		{[]string{"c.db", "--session", "-1"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			o, err := parsePlay(tt.args, testIO())
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok {
				if code := exitCode(err); code != exitUsage {
					t.Errorf("exit code %d, want %d (%v)", code, exitUsage, err)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if !tt.chk(o) {
				t.Errorf("options = %+v", o)
			}
		})
	}
}

func TestPlayErrors(t *testing.T) {
	path := capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(0, "a/b", 0, "x")})
	notCapture := filepath.Join(t.TempDir(), "x.txt")
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"play", path, "--speed", "fast"}, exitUsage, `--speed "fast"`},
		{[]string{"play", path, "--speed", "0"}, exitUsage, `--speed "0": use a positive number (0.25, 1, 4) or max`},
		{[]string{"play", path, "--remap", "a/b"}, exitUsage, "use OLD=NEW"},
		{[]string{"play", path, "--retained", "maybe"}, exitUsage, "use keep, skip or live"},
		{[]string{"play", path, "-t", "a/#/x"}, exitUsage, "invalid topic filter"},
		{[]string{"play", path, "--session", "7"}, exitUsage, "--session 7"},
		{[]string{"play", path, "--remap", "a/b="}, exitUsage, `"a/b" becomes ""`},
		{[]string{"play", path, "--broker", "ftp://x"}, exitUsage, "invalid broker URL"},
		{[]string{"play", notCapture}, exitCapture, "no such file"},
		{[]string{"play", path, "--broker", "mqtt://127.0.0.1:1", "--connect-timeout", "2s"}, exitConnection, "unreachable"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[2:], " "), func(t *testing.T) {
			code, _, errOut := runCLI(t, context.Background(), tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Errorf("exit %d (want %d), stderr:\n%s", code, tt.code, errOut)
			}
			if first, _, _ := strings.Cut(errOut, "\n"); !strings.Contains(first, tt.msg) {
				t.Errorf("first stderr line %q lacks %q", first, tt.msg)
			}
		})
	}
}
