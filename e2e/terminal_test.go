package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/capturetest"
	"github.com/mqtape/mqtape/internal/testbroker"
	"github.com/mqtape/mqtape/storage"
)

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock pty: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("pty number: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// terminal runs the binary with a pseudo-terminal as its controlling
// terminal, stdin, stdout and stderr; the test types on it and reads it.
type terminal struct {
	cmd    *exec.Cmd
	master *os.File
	slave  *os.File
	mu     sync.Mutex
	screen bytes.Buffer
	exited chan error
}

func runOnTerminal(t *testing.T, bin string, args ...string) *terminal {
	t.Helper()
	m, s := openPTY(t)
	term := &terminal{master: m, slave: s, exited: make(chan error, 1)}
	term.cmd = exec.Command(bin, args...)
	term.cmd.Stdin, term.cmd.Stdout, term.cmd.Stderr = s, s, s
	term.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := term.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { term.cmd.Process.Kill() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			term.mu.Lock()
			term.screen.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { term.exited <- term.cmd.Wait() }()
	return term
}

func (tm *terminal) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.screen.String()
}

// waitFor waits until the screen shows s.
func (tm *terminal) waitFor(t *testing.T, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(tm.text(), s) {
			return
		}
	}
	t.Fatalf("the terminal never showed %q; it shows:\n%s", s, tm.text())
}

func (tm *terminal) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-tm.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("did not exit; the terminal shows:\n%s", tm.text())
	}
	tm.drain(t)
	return tm.cmd.ProcessState.ExitCode()
}

// endOfOutput is what drain writes behind the program's last output.
const endOfOutput = "\x00end-of-output\x00"

// drain waits until the screen holds everything the exited program wrote:
// a marker written to the terminal after it reaches the reader after that
// output (a terminal keeps the order), and is then cut off the screen.
func (tm *terminal) drain(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(tm.slave, endOfOutput); err != nil {
		t.Fatalf("write the end marker: %v", err)
	}
	tm.waitFor(t, endOfOutput)
	tm.mu.Lock()
	defer tm.mu.Unlock()
	before, _, _ := strings.Cut(tm.screen.String(), endOfOutput)
	tm.screen.Reset()
	tm.screen.WriteString(before)
}

// echoOn reports whether the terminal echoes what is typed.
func (tm *terminal) echoOn(t *testing.T) bool {
	t.Helper()
	var st syscall.Termios
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, tm.slave.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&st))); e != 0 {
		t.Fatalf("TCGETS: %v", e)
	}
	return st.Lflag&syscall.ECHO != 0
}

// TestAskPassword types the password at the --ask-password prompt of the
// real binary on a pseudo-terminal: it is not echoed, the recording
// connects with it, the terminal's echo is back afterwards (also after
// Ctrl-C at the prompt), and without a terminal the flag is a clear error.
func TestAskPassword(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	b := testbroker.StartWithPassword(t, "alice", secret)
	dir := t.TempDir()

	path := filepath.Join(dir, "asked.db")
	tm := runOnTerminal(t, bin, "record", "-b", b.URL(), "-u", "alice", "--ask-password", "--count", "2", "--quiet", "-o", path)
	tm.waitFor(t, "Password for alice at "+b.URL()+": ")
	if tm.echoOn(t) {
		t.Error("echo is on while the password is asked")
	}
	io.WriteString(tm.master, secret+"\n")
	subscribed := func() bool {
		c, err := storage.Open(path)
		if err != nil {
			return false
		}
		defer c.Close()
		ev, _ := c.Events(context.Background(), 0)
		return len(ev) >= 2
	}
	if !testbroker.Eventually(10*time.Second, subscribed) {
		t.Fatalf("the recorder did not subscribe; terminal:\n%s", tm.text())
	}
	pub := testbroker.Connect(t, b.URL())
	testbroker.Publish(t, pub, "t", 1, false, []byte("one"))
	testbroker.Publish(t, pub, "t", 1, false, []byte("two"))
	if code := tm.wait(t); code != 0 {
		t.Fatalf("record --ask-password: exit %d; terminal:\n%s", code, tm.text())
	}
	if strings.Contains(tm.text(), secret) {
		t.Errorf("the password was echoed:\n%s", tm.text())
	}
	if !tm.echoOn(t) {
		t.Error("echo is still off after the prompt")
	}

	// A wrong password typed at the prompt: refused by the broker.
	tm = runOnTerminal(t, bin, "record", "-b", b.URL(), "-u", "alice", "--ask-password", "--quiet", "-o", filepath.Join(dir, "wrong.db"))
	tm.waitFor(t, "Password for alice")
	io.WriteString(tm.master, "guess\n")
	if code := tm.wait(t); code != exitConnection || !strings.Contains(tm.text(), "bad username or password") && !strings.Contains(tm.text(), "not authorised") {
		t.Errorf("wrong password: exit %d; terminal:\n%s", code, tm.text())
	}

	// Ctrl-C at the prompt: exit 130 and the terminal echoes again.
	tm = runOnTerminal(t, bin, "record", "-b", b.URL(), "-u", "alice", "--ask-password", "-o", filepath.Join(dir, "ctrlc.db"))
	tm.waitFor(t, "Password for alice")
	io.WriteString(tm.master, "\x03")
	if code := tm.wait(t); code != exitInterrupted {
		t.Errorf("Ctrl-C at the prompt: exit %d; terminal:\n%s", code, tm.text())
	}
	if !tm.echoOn(t) {
		t.Error("Ctrl-C at the prompt left the terminal without echo")
	}
	if _, err := os.Stat(filepath.Join(dir, "ctrlc.db")); err == nil {
		t.Error("Ctrl-C at the prompt left a capture behind")
	}

	// No terminal at all: a clear error, exit 2.
	cmd := exec.Command(bin, "record", "-b", b.URL(), "-u", "alice", "--ask-password", "-o", filepath.Join(dir, "none.db"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(out), "--ask-password needs a terminal") ||
		strings.Count(string(out), "\n") > 2 {
		t.Errorf("no terminal: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}

	// --ask-password with --password-file is a usage error; the flags are shared.
	for _, verb := range []string{"record", "play", "inspect"} {
		args := []string{verb, "--ask-password", "--password-file", "pw"}
		if verb == "record" {
			args = append(args, "-o", filepath.Join(dir, "y.db"))
		} else {
			args = append(args, capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(0, "a", 0, "x")}))
		}
		if code, _, stderr := runCLI(t, context.Background(), args...); code != exitUsage || !strings.Contains(stderr, "choose one") {
			t.Errorf("%s: exit %d %s", verb, code, stderr)
		}
	}
}

// TestPlayConfirmsNonLoopback: play to a broker that is not on this machine
// asks on the terminal first (and refuses without one unless --yes); a
// loopback broker is not asked about. No test connects anywhere but
// 127.0.0.1: the remote broker here is a name under .invalid, and every
// path that would connect to it is decided before connecting.
func TestPlayConfirmsNonLoopback(t *testing.T) {
	// The real binary: without a terminal it refuses; on one it asks and
	// a "no" sends nothing; a loopback broker is played without a question.
	bin := testbroker.BuildMqtape(t)
	capture := capturetest.WriteOffsets(t, []storage.Message{capturetest.Msg(0, "a/b", 1, "x"), capturetest.Msg(time.Millisecond, "a/c", 0, "y")})
	cmd := exec.Command(bin, "play", capture, "-b", "mqtt://broker.invalid:1883")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != exitUsage || !strings.Contains(string(out), "not a loopback broker") {
		t.Errorf("no terminal: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
	tm := runOnTerminal(t, bin, "play", capture, "-b", "mqtt://broker.invalid:1883")
	tm.waitFor(t, "publish 2 messages from "+capture+" to it? [y/N] ")
	io.WriteString(tm.master, "n\n")
	if code := tm.wait(t); code != exitUsage || !strings.Contains(tm.text(), "nothing was sent") {
		t.Errorf("answered no: exit %d\n%s", code, tm.text())
	}

	b := testbroker.StartEmbedded(t, broker.Options{MaxPending: 1 << 20})
	sub := testbroker.Subscribe(t, b.URL())
	for _, url := range []string{b.URL(), strings.Replace(b.URL(), "127.0.0.1", "localhost", 1)} {
		tm = runOnTerminal(t, bin, "play", capture, "-b", url, "--quiet")
		if code := tm.wait(t); code != 0 || strings.Contains(tm.text(), "[y/N]") {
			t.Errorf("loopback %s: exit %d\n%s", url, code, tm.text())
		}
	}
	if got := sub.Wait(t, 4); len(got) != 4 {
		t.Errorf("loopback plays delivered %d messages, want 4", len(got))
	}
}

// TestPlayKeysOnTerminal: on a terminal play names its keys (q among them);
// + doubles the speed and q stops, and the report gives the speed at the
// end and the one it started with.
func TestPlayKeysOnTerminal(t *testing.T) {
	bin := testbroker.BuildMqtape(t)
	var msgs []storage.Message
	for i := range 50 {
		msgs = append(msgs, capturetest.Msg(time.Duration(i)*200*time.Millisecond, "tick", 0, fmt.Sprint(i)))
	}
	capture := capturetest.WriteOffsets(t, msgs)
	b := testbroker.StartEmbedded(t, broker.Options{MaxPending: 1 << 20})
	sub := testbroker.Subscribe(t, b.URL())
	tm := runOnTerminal(t, bin, "play", capture, "-b", b.URL())
	tm.waitFor(t, "keys: space pause/resume, → step, +/- speed, q or Ctrl-C stop")
	sub.Wait(t, 1)
	io.WriteString(tm.master, "+")
	tm.waitFor(t, "×2") // the progress line shows the new speed
	io.WriteString(tm.master, "q")
	if code := tm.wait(t); code != exitInterrupted || !strings.Contains(tm.text(), ", speed 2 (started at 1)") {
		t.Errorf("exit %d, want %d and the speed at the end\n%s", code, exitInterrupted, tm.text())
	}
}
