package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// mountTmpfs mounts a tmpfs of the given options on a new directory. When
// this machine cannot mount (not root, or no CAP_SYS_ADMIN in a container)
// the test skips, saying why — except in CI (CI=true), where the
// resource-fault tests must run, so it fails loudly.
func mountTmpfs(t *testing.T, opts string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, opts); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot mount a tmpfs (%s): %v (uid %d), but CI=true requires the resource-fault tests to run: give CI root with CAP_SYS_ADMIN", opts, err, os.Geteuid())
		}
		t.Skipf("cannot mount a tmpfs (%s) here: %v (uid %d); this resource-fault test needs root with CAP_SYS_ADMIN", opts, err, os.Geteuid())
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// oneLine asserts stderr is one clear line naming want, no stack trace.
func oneLine(t *testing.T, stderr, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) || strings.Contains(stderr, "goroutine ") {
		t.Errorf("want one line with %q, got:\n%s", want, stderr)
	}
}

// readOnlyDir returns a directory that cannot be written to, holding a copy
// of the capture src: a read-only tmpfs as root (root ignores directory
// permissions), a 0555 directory otherwise.
func readOnlyDir(t *testing.T, src string) (dir, capture string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		dir = t.TempDir()
		capture = filepath.Join(dir, "cap.db")
		if err := os.WriteFile(capture, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o555)
		t.Cleanup(func() { os.Chmod(dir, 0o755) })
		return dir, capture
	}
	dir = mountTmpfs(t, "size=4m")
	capture = filepath.Join(dir, "cap.db")
	if err := os.WriteFile(capture, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=4m"); err != nil {
		t.Skipf("cannot remount the tmpfs read-only: %v", err)
	}
	return dir, capture
}

// TestFaultReadOnlyDirectory: recording into a directory that cannot be
// written fails with one clear line and leaves nothing behind; a capture
// in such a directory is still read by every reading verb, refused for
// appending, untouched, and recover writes its copy elsewhere.
func TestFaultReadOnlyDirectory(t *testing.T) {
	ctx := context.Background()
	b := startBroker(t)
	dir, capture := readOnlyDir(t, capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(0, "a/b", 1, "x"), capturetest.Msg(time.Second, "a/c", 0, "y")}))
	before, _ := os.ReadFile(capture)

	code, _, stderr := runCLI(t, ctx, "record", "-b", b.URL(), "--quiet", "-o", filepath.Join(dir, "new.db"))
	if code == 0 {
		t.Fatal("recording into a read-only directory succeeded")
	}
	oneLine(t, stderr, "new.db")
	if !strings.Contains(stderr, "read-only file system") && !strings.Contains(stderr, "permission denied") {
		t.Errorf("the error does not say why: %s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.db")); err == nil {
		t.Error("a file was left behind")
	}
	code, _, stderr = runCLI(t, ctx, "record", "-b", b.URL(), "--quiet", "-o", capture)
	if code == 0 {
		t.Fatal("appending to a capture in a read-only directory succeeded")
	}
	oneLine(t, stderr, "cap.db")

	if code, out, stderr := runCLI(t, ctx, "check", capture); code != 0 || !strings.Contains(out, "verdict:   OK") {
		t.Errorf("check in a read-only directory: exit %d %s", code, stderr)
	}
	for _, argv := range [][]string{{"info", capture}, {"export", capture}, {"play", capture, "--dry-run"}} {
		// storage.Open falls back to an immutable open when SQLite cannot
		// create the -shm file next to a capture whose WAL is empty.
		if code, out, stderr := runCLI(t, ctx, argv...); code != 0 || out == "" {
			t.Errorf("%s in a read-only directory: exit %d %s", argv[0], code, stderr)
		}
	}
	code, _, stderr = runCLI(t, ctx, "recover", capture, "-o", filepath.Join(dir, "copy.db"))
	if code == 0 {
		t.Error("recover into a read-only directory succeeded")
	}
	oneLine(t, stderr, "copy.db")
	if code, _, stderr := runCLI(t, ctx, "recover", capture, "-o", filepath.Join(t.TempDir(), "copy.db")); code != 0 {
		t.Errorf("recover out of a read-only directory: exit %d %s", code, stderr)
	}
	if after, _ := os.ReadFile(capture); !bytes.Equal(before, after) {
		t.Error("the capture in the read-only directory changed")
	}
}

// TestFaultDiskFull records a flood onto an 8 MiB tmpfs until it is full
// (a few of the writer's batches, up to 4096 messages each on a flood):
// the recorder stops with one clear error saying what stays intact, and
// the capture on the full disk is sound (mqtape check, and every message
// recovered from it is intact, seq without holes). A disk that is full
// before recording starts fails at once and leaves no file.
func TestFaultDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "size=8m")
	b := startBroker(t)
	path := filepath.Join(dir, "full.db")
	done := make(chan struct{})
	var code int
	var stderr string
	go func() {
		defer close(done)
		code, _, stderr = runCLI(t, context.Background(), "record", "-b", b.URL(), "-t", "flood/#", "--quiet", "-o", path)
	}()
	waitSubscribed(t, path, nil)
	stop := make(chan struct{})
	_, pubDone := rawPublisher(t, b.Addr(), 0, "flood/0", stop)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the recorder did not stop when the disk filled up")
	}
	close(stop)
	<-pubDone
	if code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	oneLine(t, stderr, "disk is full")
	if !strings.Contains(stderr, "everything committed before this is intact") {
		t.Errorf("the error does not say what is intact: %s", stderr)
	}

	rep, err := storage.Check(context.Background(), path, storage.CheckOptions{Full: true})
	if err != nil || !rep.OK() {
		t.Fatalf("check on the full disk: %v %+v", err, rep)
	}
	// A checkpoint that could not finish leaves the main file shorter than
	// its header says; the pages are in the WAL, and Open reads them.
	onDisk, err := storage.Open(path)
	if err != nil {
		t.Fatalf("storage.Open refuses the capture on the full disk: %v", err)
	}
	onDisk.Close()
	out := filepath.Join(t.TempDir(), "copy.db")
	rrep, err := storage.Recover(context.Background(), path, out)
	if err != nil || !rrep.Complete() {
		t.Fatalf("recover from the full disk: %v %+v", err, rrep)
	}
	c, err := storage.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int64
	last := -1
	for m, err := range c.Messages(context.Background(), storage.Query{}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		_, i, ok := parseFlood(string(m.Payload))
		if m.Seq != n || !ok || i <= last {
			t.Fatalf("seq %d (want %d): payload %.30q after message %d", m.Seq, n, m.Payload, last)
		}
		last = i
	}
	if n < 100 {
		t.Errorf("only %d messages fit on the disk", n)
	}
	t.Logf("disk full after %d messages (%d committed events); check and recover agree, seq 1–%d intact", n, rrep.Events, n)

	// A disk that is full before recording starts.
	full := mountTmpfs(t, "size=256k")
	os.WriteFile(filepath.Join(full, "filler"), bytes.Repeat([]byte{1}, 250<<10), 0o600)
	code, _, stderr = runCLI(t, context.Background(), "record", "-b", b.URL(), "--quiet", "-o", filepath.Join(full, "new.db"))
	if code == 0 {
		t.Fatal("recording onto a full disk succeeded")
	}
	oneLine(t, stderr, "full")
	if _, err := os.Stat(filepath.Join(full, "new.db")); err == nil {
		t.Error("recording onto a full disk left a file behind")
	}
}

// TestFaultDeletedWhileRecording deletes the capture (and its -wal and
// -shm) under a running recorder: it notices within a second, stops with a
// clear error, and writes what it had recorded back to the path, so
// nothing is lost quietly. A capture replaced by another file is saved
// next to it instead, leaving the other file alone.
func TestFaultDeletedWhileRecording(t *testing.T) {
	b := startBroker(t)
	pub := testbroker.Connect(t, b.URL())
	for _, replace := range []bool{false, true} {
		t.Run(fmt.Sprintf("replaced=%v", replace), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "doomed.db")
			wait := recordCLI(t, context.Background(), path, "--broker", b.URL(), "-t", "d/#", "--quiet")
			for i := range 300 {
				testbroker.Publish(t, pub, "d/x", 1, false, []byte(fmt.Sprint(i)))
			}
			for _, f := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(f)
			}
			other := []byte("someone else's file\n")
			if replace {
				os.WriteFile(path, other, 0o600)
			}
			deleted := time.Now()
			for i := 300; i < 400; i++ {
				testbroker.Publish(t, pub, "d/x", 1, false, []byte(fmt.Sprint(i)))
			}
			code, _, stderr := wait()
			if took := time.Since(deleted); took > 5*time.Second {
				t.Errorf("noticed after %s", took)
			}
			saved := path
			if replace {
				saved = path + ".rescued"
				if data, _ := os.ReadFile(path); !bytes.Equal(data, other) {
					t.Error("the file that replaced the capture was overwritten")
				}
			}
			if code != exitError {
				t.Errorf("exit %d, want %d", code, exitError)
			}
			oneLine(t, stderr, "deleted or replaced while recording")
			if !strings.Contains(stderr, "saved to "+saved) {
				t.Errorf("stderr does not say where the messages went: %s", stderr)
			}
			rep, err := storage.Check(context.Background(), saved, storage.CheckOptions{})
			if err != nil || !rep.OK() || rep.Messages < 300 {
				t.Fatalf("saved capture: %v %+v", err, rep)
			}
			if fi, _ := os.Stat(saved); fi.Mode().Perm() != 0o600 {
				t.Errorf("saved capture has mode %v", fi.Mode().Perm())
			}
			c, err := storage.Open(saved)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msgs, _ := c.Page(context.Background(), storage.Query{})
			for i, m := range msgs {
				if string(m.Payload) != fmt.Sprint(i) {
					t.Fatalf("message %d: %q", i, m.Payload)
				}
			}
		})
	}
}
