package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/storage"
)

// damagePage overwrites the page in the middle of the file with garbage.
func damagePage(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	page := fi.Size() / 65536 / 2
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 65536), page*65536); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAndRecoverCLI(t *testing.T) {
	ctx := context.Background()
	good := capturetest.WriteBig(t, 3000)
	code, out, stderr := runCLI(t, ctx, "check", good)
	if code != 0 || !strings.Contains(out, "verdict:   OK") || !strings.Contains(out, "3,000 messages (seq 1–3000)") || stderr != "" {
		t.Fatalf("check good: exit %d\n%s%s", code, out, stderr)
	}

	bad := filepath.Join(t.TempDir(), "bad.db")
	data, _ := os.ReadFile(good)
	os.WriteFile(bad, data, 0o600)
	damagePage(t, bad)
	before, _ := os.ReadFile(bad)
	code, out, stderr = runCLI(t, ctx, "check", "--full", "--json", bad)
	var v CheckJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != exitCapture || v.Verdict != "damaged" || len(v.Problems) == 0 ||
		v.SQLiteCheck != "integrity_check" {
		t.Fatalf("check bad: exit %d, %v\n%s", code, err, out)
	}
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "capture file is damaged") {
		t.Errorf("stderr %q", stderr)
	}
	code, out, _ = runCLI(t, ctx, "check", bad)
	if code != exitCapture || !strings.Contains(out, "verdict:   DAMAGED") || !strings.Contains(out, "problem:   [") {
		t.Errorf("human check bad: exit %d\n%s", code, out)
	}

	fixed := filepath.Join(t.TempDir(), "fixed.db")
	code, out, stderr = runCLI(t, ctx, "recover", bad, "-o", fixed)
	// A sound output is success (exit 0); the report and stderr say what was lost.
	if code != exitOK || !strings.Contains(out, "lost:      messages seq ") || !strings.Contains(out, "INCOMPLETE") ||
		!strings.Contains(stderr, "messages and 0 events lost") {
		t.Fatalf("recover: exit %d\n%s%s", code, out, stderr)
	}
	if after, _ := os.ReadFile(bad); !bytes.Equal(before, after) {
		t.Fatal("check or recover modified the damaged input")
	}
	if code, out, _ := runCLI(t, ctx, "check", fixed); code != 0 {
		t.Fatalf("recovered capture fails check:\n%s", out)
	}
	code, out, _ = runCLI(t, ctx, "export", fixed)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) < 2500 || len(lines) >= 3000 {
		t.Fatalf("export of the recovered capture: exit %d, %d lines", code, len(lines))
	}

	whole := filepath.Join(t.TempDir(), "whole.db")
	code, out, _ = runCLI(t, ctx, "recover", "--json", good, "-o", whole)
	var r storage.RecoverReport
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 || r.Messages != 3000 || r.LostMessages != 0 {
		t.Fatalf("recover intact: exit %d %v\n%s", code, err, out)
	}
	if code, _, stderr := runCLI(t, ctx, "recover", good, "-o", whole); code != exitUsage || !strings.Contains(stderr, "exists") {
		t.Errorf("recover onto an existing file: exit %d %s", code, stderr)
	}
}
