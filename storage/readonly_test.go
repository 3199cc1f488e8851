package storage

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestReadLeavesNoFiles: reading a finished capture (Open, every reader,
// Check, Recover's input) creates no -wal or -shm beside it.
func TestReadLeavesNoFiles(t *testing.T) {
	ctx := context.Background()
	path := fixture(t, 20, 8, true)
	dir := filepath.Dir(path)
	before := dirNames(t, dir)
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Count(ctx, Query{}); err != nil || n != 40 {
		t.Fatalf("count %d, %v", n, err)
	}
	if _, err := c.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
	during := dirNames(t, dir)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Check(ctx, path, CheckOptions{Full: true}); err != nil || !rep.OK() {
		t.Fatalf("check: %v %+v", err, rep)
	}
	if _, err := Recover(ctx, path, filepath.Join(t.TempDir(), "out.db")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(during, before) || !slices.Equal(dirNames(t, dir), before) {
		t.Errorf("files beside the capture: before %v, while open %v, after %v", before, during, dirNames(t, dir))
	}
}

// TestReadSeesCrashedWritersLog: a capture whose recorder died before it
// checkpointed (committed data only in the -wal) reads in full.
func TestReadSeesCrashedWritersLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "live.db")
	w, err := OpenWrite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := begin(t, w)
	if err := s.Write(ctx, []Message{{TimeNS: 1e18, Topic: "a", Payload: []byte("x")},
		{TimeNS: 1e18 + 1, OffsetNS: 1, Topic: "b", Payload: []byte("y")}}, nil, 1e18+1); err != nil {
		t.Fatal(err)
	}
	// What a kill -9 leaves: the files as they are now, the writer gone.
	crashed := filepath.Join(t.TempDir(), "crashed.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		data, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crashed+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(crashed + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the test needs data in the log: %v", err)
	}
	for _, p := range []string{path, crashed} { // live, and after the crash
		c, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.Count(ctx, Query{})
		c.Close()
		if err != nil || n != 2 {
			t.Errorf("%s: %d messages (%v), want 2", p, n, err)
		}
	}
	if _, err := os.Stat(crashed + "-wal"); err != nil {
		t.Errorf("the reader removed the crashed writer's log: %v", err)
	}
}

// TestNewCaptureIs0600: a new capture is mode 0600, also when it was an
// empty file of another mode (touch x.db; mqtape record -o x.db); its -wal
// follows.
func TestNewCaptureIs0600(t *testing.T) {
	dir := t.TempDir()
	touched := filepath.Join(dir, "touched.db")
	if err := os.WriteFile(touched, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(touched, 0o644); err != nil { // whatever the umask
		t.Fatal(err)
	}
	for _, path := range []string{touched, filepath.Join(dir, "new.db")} {
		c, err := OpenWrite(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v (%v), want 0600", p, fi.Mode().Perm(), err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
