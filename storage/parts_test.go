package storage

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPartName(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.FixedZone("x", 3600)) // 04:06:07 UTC
	for _, tt := range []struct{ pattern, want string }{
		{"run.db", "run-0012.db"},
		{"dir/run", "dir/run-0012"},
		{"p-{n}.db", "p-0012.db"},
		{"p-%Y%m%d-%H%M%S.db", "p-20260304-040607.db"},
		{"p-%Y-{n}-%%-%q.db", "p-2026-0012-%-%q.db"},
	} {
		if got := PartName(tt.pattern, 12, at); got != tt.want {
			t.Errorf("PartName(%q) = %q, want %q", tt.pattern, got, tt.want)
		}
	}
}

func TestNextPartName(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	touch("run-0001.db")
	touch("run-0002.db")
	if name, n := NextPartName(filepath.Join(dir, "run.db"), 1, at); filepath.Base(name) != "run-0003.db" || n != 3 {
		t.Errorf("numbered: %s %d, want run-0003.db 3", name, n)
	}
	touch("t-0506.db")
	if name, n := NextPartName(filepath.Join(dir, "t-%H%M.db"), 4, at); filepath.Base(name) != "t-0506-2.db" || n != 4 {
		t.Errorf("time fields: %s %d, want t-0506-2.db 4", name, n)
	}
}
