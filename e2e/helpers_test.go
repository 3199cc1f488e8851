package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/internal/cli"
	"github.com/mqtape/mqtape/internal/testbroker"
)

// The exit codes, as documented in `mqtape --help` and the README.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitConnection  = 3
	exitCapture     = 4
	exitInterrupted = 130
)

// runCLI runs mqtape in the test process with args (no input, the real
// environment) and returns exit code, stdout and stderr.
func runCLI(t *testing.T, ctx context.Context, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// run runs mqtape in the test process with outputs, no input and the real
// environment, and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, args, cli.IO{Stdout: stdout, Stderr: stderr, Stdin: strings.NewReader(""), Getenv: os.Getenv})
}

// startBroker starts the embedded broker with room for a million pending
// messages per client.
func startBroker(t *testing.T) *broker.Broker {
	return testbroker.StartEmbedded(t, broker.Options{MaxPending: 1 << 20})
}

// verbs returns the commands `mqtape --help` lists.
func verbs(t *testing.T) []string {
	t.Helper()
	code, out, _ := runCLI(t, context.Background(), "--help")
	_, list, ok := strings.Cut(out, "\nCommands:\n")
	if code != exitOK || !ok {
		t.Fatalf("mqtape --help: exit %d\n%s", code, out)
	}
	list, _, _ = strings.Cut(list, "\n\n")
	var vs []string
	for _, l := range strings.Split(list, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			vs = append(vs, f[0])
		}
	}
	return vs
}
