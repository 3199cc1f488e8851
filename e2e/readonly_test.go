package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mqtape/mqtape/internal/capturetest"
)

// TestReadVerbsLeaveNoFiles: the verbs that read a finished capture leave
// nothing beside it (no -wal, no -shm), whatever they write elsewhere.
func TestReadVerbsLeaveNoFiles(t *testing.T) {
	ctx := context.Background()
	path := capturetest.WriteBig(t, 500)
	dir := filepath.Dir(path)
	other := filepath.Join(dir, "other.db")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, data, 0o600); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	names := func() []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	before := names()
	for _, args := range [][]string{
		{"info", path}, {"info", "--json", path}, {"export", path}, {"export", "--format", "csv", "--from", "0s", path},
		{"check", "--full", path}, {"play", "--dry-run", path}, {"diff", path, other},
		{"cut", path, "--from", "100ms", "-o", filepath.Join(outDir, "cut.db")},
		{"merge", path, other, "-o", filepath.Join(outDir, "merged.db")},
		{"recover", path, "-o", filepath.Join(outDir, "recovered.db")},
	} {
		code, _, stderr := runCLI(t, ctx, args...)
		if code != exitOK {
			t.Errorf("%v: exit %d: %s", args, code, stderr)
		}
		if after := names(); !slices.Equal(after, before) {
			t.Errorf("%v left files beside the capture: before %v, after %v", args, before, after)
			before = after
		}
	}
}
