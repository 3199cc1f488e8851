package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// secret is the password the leak tests look for.
const secret = "pw-Zq7x9-leakcheck"

// TestCaptureFilesArePrivate: a capture, its write-ahead log and shared
// memory file are created with mode 0600 while recording, whatever the
// umask, and so is a recovered capture.
func TestCaptureFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	b := startBroker(t)
	path := filepath.Join(t.TempDir(), "private.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := recordCLI(t, ctx, path, "--broker", b.URL(), "--quiet")
	pub := testbroker.Connect(t, b.URL())
	for i := range 20 {
		testbroker.Publish(t, pub, "secret/payload", 1, false, []byte(fmt.Sprint(i)))
	}
	waitFor(t, 5*time.Second, func() bool { return countMessages(path) >= 20 }, "20 messages committed (the WAL holds them)")
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("while recording: %v", err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v while recording, want 0600", filepath.Base(f), fi.Mode().Perm())
		}
	}
	cancel()
	if code, _, stderr := wait(); code != 0 {
		t.Fatalf("record: exit %d %s", code, stderr)
	}
	out := filepath.Join(t.TempDir(), "recovered.db")
	if code, _, stderr := runCLI(t, context.Background(), "recover", path, "-o", out); code != 0 {
		t.Fatalf("recover: exit %d %s", code, stderr)
	}
	for _, f := range []string{path, out} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi.Mode(), err)
		}
	}
}

// captureBytes returns the capture and its side files, concatenated.
func captureBytes(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, data...)
	}
	return all
}

// TestPasswordNeverLeaks records from a broker that needs a password,
// given by MQTAPE_PASSWORD and by --password-file, and looks for the
// password in the capture's bytes (with its write-ahead log), in what
// record, info --json, export, check and play print, and in the error of a
// refused connection.
func TestPasswordNeverLeaks(t *testing.T) {
	b := testbroker.StartWithPassword(t, "alice", secret)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte(secret+"\n"), 0o600)
	for _, how := range []string{"env", "file"} {
		t.Run(how, func(t *testing.T) {
			var args []string
			if how == "env" {
				t.Setenv("MQTAPE_PASSWORD", secret)
			} else {
				args = []string{"--password-file", pwFile}
			}
			path := filepath.Join(dir, how+".db")
			var outputs []string
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			wait := recordCLI(t, ctx, path, append([]string{"--broker", b.URL(), "-u", "alice", "--count", "3"}, args...)...)
			pub := testbroker.Connect(t, b.URL())
			for i := range 3 {
				testbroker.Publish(t, pub, "a/b", byte(i), false, []byte("hello"))
			}
			code, stdout, stderr := wait()
			if code != 0 {
				t.Fatalf("record: exit %d %s", code, stderr)
			}
			outputs = append(outputs, stdout, stderr)
			// While a recording runs the WAL holds what was written:
			// look at it too, from a second recording killed mid-way.
			ctx2, cancel2 := context.WithCancel(context.Background())
			wait2 := recordCLI(t, ctx2, path, append([]string{"--broker", b.URL(), "-u", "alice"}, args...)...)
			testbroker.Publish(t, pub, "a/b", 1, false, []byte("more"))
			waitFor(t, 5*time.Second, func() bool { return countMessages(path) >= 4 }, "the 4th message committed")
			live := captureBytes(t, path)
			cancel2()
			_, o2, e2 := wait2()
			outputs = append(outputs, o2, e2)
			for _, argv := range [][]string{{"info", "--json", path}, {"info", path}, {"export", path}, {"check", "--json", path},
				append([]string{"play", path, "-b", b.URL(), "-u", "alice", "--speed", "max", "--json"}, args...)} {
				code, o, e := runCLI(t, context.Background(), argv...)
				if code != 0 {
					t.Errorf("%s: exit %d %s", argv[0], code, e)
				}
				outputs = append(outputs, o, e)
			}
			// A refused connection names the cause, not the password.
			os.Setenv("MQTAPE_PASSWORD", secret+"-wrong")
			code, o, e := runCLI(t, context.Background(), "record", "-b", b.URL(), "-u", "alice", "-o", filepath.Join(dir, "x.db"))
			os.Unsetenv("MQTAPE_PASSWORD")
			if code != exitConnection {
				t.Errorf("wrong password: exit %d %s", code, e)
			}
			outputs = append(outputs, o, e)
			for i, s := range outputs {
				if strings.Contains(s, secret) {
					t.Errorf("output %d shows the password:\n%s", i, s)
				}
			}
			for name, data := range map[string][]byte{"while recording": live, "after": captureBytes(t, path)} {
				if bytes.Contains(data, []byte(secret)) {
					t.Errorf("the capture holds the password (%s)", name)
				}
			}
			if !strings.Contains(outputs[4], `"client_id"`) || !strings.Contains(outputs[4], `"messages": 4`) {
				t.Errorf("info --json printed nothing useful: %q", outputs[4])
			}
		})
	}
}

// TestRefusalsInOwnWords: a refused login says what mqtape did not send,
// over MQTT 3.1.1 and 5, for record and play; an unreachable broker is
// described without the MQTT library's text.
func TestRefusalsInOwnWords(t *testing.T) {
	b := testbroker.StartWithPassword(t, "alice", secret)
	dir := t.TempDir()
	t.Setenv("MQTAPE_PASSWORD", "")
	capture := capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(0, "a", 0, "x")})
	for _, v := range []string{"311", "5"} {
		for _, tt := range []struct {
			name string
			args []string
			want string
		}{
			{"username without password", []string{"-u", "alice"},
				`no password given for "alice": set MQTAPE_PASSWORD, --password-file or --ask-password`},
			{"no credentials", nil, "no username or password given: use -u USER with MQTAPE_PASSWORD, --password-file or --ask-password"},
		} {
			for _, verb := range [][]string{{"record", "-o", filepath.Join(dir, "r.db")}, {"play", capture}} {
				t.Run(v+" "+verb[0]+" "+tt.name, func(t *testing.T) {
					args := append(append(slices.Clone(verb), "-b", b.URL(), "-V", v), tt.args...)
					code, _, stderr := runCLI(t, context.Background(), args...)
					if code != exitConnection || !strings.Contains(stderr, "connection refused by broker") || !strings.Contains(stderr, tt.want) {
						t.Errorf("exit %d, want %d and %q:\n%s", code, exitConnection, tt.want, stderr)
					}
				})
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "mqtt://" + l.Addr().String()
	l.Close()
	for _, v := range []string{"311", "5"} {
		code, _, stderr := runCLI(t, context.Background(), "record", "-b", closed, "-V", v, "-o", filepath.Join(dir, "u.db"))
		if code != exitConnection || !strings.Contains(stderr, "broker unreachable: "+closed+": connection refused: is a broker listening on that port?") ||
			strings.Contains(stderr, "network Error") || strings.Contains(stderr, "dial tcp") {
			t.Errorf("-V %s unreachable: exit %d\n%s", v, code, stderr)
		}
	}
}
