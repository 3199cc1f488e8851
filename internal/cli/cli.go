// Package cli is mqtape's command line: one file per verb (its options
// struct, a parse function tested on its own, and a run function that wires
// the libraries), the exit codes, and the I/O a verb gets from the process.
// main calls Run; nothing else is in package main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/pflag"

	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/timespec"
	"github.com/mqtape/mqtape/topic"
)

// version is the mqtape version recorded in every capture session.
const version = "0.1.0"

// Exit codes, documented in the README and in `mqtape --help`.
const (
	exitOK          = 0
	exitError       = 1   // anything else that went wrong
	exitUsage       = 2   // bad flags, arguments or topic filters
	exitConnection  = 3   // broker unreachable, connection refused, subscription denied
	exitCapture     = 4   // not a capture, newer format, damaged, missing, or would overwrite another file
	exitInterrupted = 130 // play stopped by Ctrl-C
)

// command is one verb.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, io *cliIO) error
}

func commands() []command {
	return []command{
		{"record", "record messages from a broker into a capture", cmdRecord},
		{"info", "summarise a capture", cmdInfo},
		{"export", "write captures' messages as JSON lines, CSV, Parquet or MCAP", cmdExport},
		{"inspect", "browse, filter and decode a capture in a terminal UI", cmdInspect},
		{"play", "replay a capture to a broker with its original timing", cmdPlay},
		{"demo", "record a simulated device fleet on an embedded broker (no setup needed)", cmdDemo},
		{"serve", "run an embedded broker that records everything published to it", cmdServe},
		{"diff", "compare two captures (regression checks)", cmdDiff},
		{"import", "convert JSON lines, mosquitto_sub output or pcap files into a capture", cmdImport},
		{"cut", "copy a time and topic slice of a capture, with the retained state at its start", cmdCut},
		{"merge", "merge captures (e.g. of several recorders) into one, in time order", cmdMerge},
		{"check", "verify a capture: SQLite's check and mqtape's invariants", cmdCheck},
		{"recover", "copy what can be read from a damaged capture into a new one", cmdRecover},
		{"decoders", "list or store the payload decoders a capture carries", cmdDecoders},
		{"web", "serve a read-only view of a capture to a browser (and a JSON API)", cmdWeb},
	}
}

// IO is what Run gets of the process.
type IO struct {
	Stdout, Stderr io.Writer
	Stdin          io.Reader // keys (play), import's "-"
	Getenv         func(string) string
	// Process: Run owns the process (the mqtape binary, not a test): it
	// may set process-wide things (record's garbage collector settings,
	// $MQTAPE_CPUPROFILE).
	Process bool
}

// cliIO carries the process's outputs, input and environment to a verb.
//
// Data from captures and brokers never reaches a terminal raw (see
// internal/termsafe): stderr and text show control characters visibly,
// JSON goes through writeJSON, and only data formats (JSON lines, CSV to a
// file or pipe) use stdout itself.
type cliIO struct {
	// stdout is for data (export); text is stdout for human output
	// (tables, reports); stderr is for status and errors.
	stdout       io.Writer
	text, stderr *termsafe.Writer
	// statusTerm is stderr itself, for the status line's own control
	// sequences (what it shows goes through termsafe.String).
	statusTerm io.Writer
	stdin      io.Reader
	getenv     func(string) string
	// stderrTTY: stderr is a terminal (live status lines, colours).
	stderrTTY bool
	// stdoutTTY: stdout is a terminal (human tables rather than data).
	stdoutTTY bool
	// program is how the user runs mqtape ("mqtape", "./mqtape", "go run ."),
	// for commands printed as advice.
	program string
}

func newCLIIO(pio IO) *cliIO {
	return &cliIO{stdout: pio.Stdout, text: termsafe.NewWriter(pio.Stdout), stderr: termsafe.NewWriter(pio.Stderr),
		statusTerm: pio.Stderr, stdin: pio.Stdin, getenv: pio.Getenv,
		stderrTTY: isTerminal(pio.Stderr), stdoutTTY: isTerminal(pio.Stdout), program: "mqtape"}
}

// usageError marks errors that are the user's invocation (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// interruptedError marks a verb stopped by Ctrl-C that reports it (exit 130).
var errInterrupted = errors.New("interrupted")

// run is Run for tests: outputs, no input, the real environment.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, args, IO{Stdout: stdout, Stderr: stderr, Stdin: strings.NewReader(""), Getenv: os.Getenv})
}

// Run runs one command line (without the program name) and returns its
// exit code. ctx is cancelled on Ctrl-C (main turns signals into it).
func Run(ctx context.Context, args []string, pio IO) int {
	if pio.Process {
		if len(args) > 0 && args[0] == "record" {
			tuneMemory(pio.Getenv)
		}
		if path := pio.Getenv("MQTAPE_CPUPROFILE"); path != "" {
			// For benchmarks: go tool pprof mqtape $MQTAPE_CPUPROFILE
			if f, err := os.Create(path); err == nil {
				pprof.StartCPUProfile(f)
				defer func() { pprof.StopCPUProfile(); f.Close() }()
			}
		}
	}
	cio := newCLIIO(pio)
	if pio.Process {
		cio.program = processInvocation()
	}
	stdout, stderr := cio.stdout, cio.stderr
	defer stderr.Flush()
	defer cio.text.Flush()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) > 1 {
			args = []string{args[1], "--help"}
		} else {
			mainUsage(stdout)
			if len(args) == 0 {
				return exitUsage
			}
			return exitOK
		}
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(stdout, "mqtape", version)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], cio)
			if errors.Is(err, pflag.ErrHelp) {
				return exitOK
			}
			code := exitCode(err)
			if err != nil && !errors.Is(err, errInterrupted) {
				fmt.Fprintf(stderr, "mqtape %s: %s\n", c.name, termsafe.String(err.Error()))
				if code == exitUsage {
					fmt.Fprintf(stderr, "Run 'mqtape %s --help' for usage.\n", c.name)
				}
			}
			return code
		}
	}
	fmt.Fprintf(stderr, "mqtape: unknown command %q\nRun 'mqtape --help' for usage.\n", args[0])
	return exitUsage
}

// exitCode maps an error to the documented exit codes; the one place that does.
func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.As(err, &ue), errors.Is(err, topic.ErrInvalidFilter), errors.Is(err, timespec.ErrInvalid),
		errors.Is(err, mqtt.ErrBadURL):
		return exitUsage
	case errors.Is(err, mqtt.ErrRefused), errors.Is(err, mqtt.ErrUnreachable),
		errors.Is(err, mqtt.ErrSubscribeDenied), errors.Is(err, mqtt.ErrTLSConfig):
		return exitConnection
	case errors.Is(err, storage.ErrNotCapture), errors.Is(err, storage.ErrNewerVersion),
		errors.Is(err, storage.ErrCorrupt), errors.Is(err, storage.ErrNotFound), errors.Is(err, errWouldOverwrite):
		return exitCapture
	}
	return exitError
}

func mainUsage(w io.Writer) {
	fmt.Fprintf(w, `mqtape %s: a flight recorder for MQTT.

Usage:
  mqtape <command> [flags] [arguments]

Commands:
`, version)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run 'mqtape <command> --help' for a command's flags and examples.

Exit codes:
  0    success (a recording stopped with Ctrl-C is a success)
  1    error
  2    usage: bad flag, argument, broker URL or topic filter
  3    broker: unreachable, connection refused, subscription denied, TLS files
  4    capture file: missing, not a capture, newer format, damaged; or an
       output file that exists and would be replaced (export -o)
  130  interrupted (play)

Environment:
  MQTAPE_BROKER    default broker URL (default mqtt://127.0.0.1:1883)
  MQTAPE_PASSWORD  broker password (never pass passwords as flags)
`)
}

// newFlagSet makes a verb's flag set with its usage text and examples.
func newFlagSet(name, usage, examples string, cio *cliIO) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(cio.stderr)
	fs.Usage = func() {
		fmt.Fprintf(cio.stdout, "Usage: mqtape %s\n\nFlags:\n%s\nExamples:\n%s", usage, fs.FlagUsages(), examples)
	}
	return fs
}

// parseFlags parses args; flag errors become usage errors.
func parseFlags(fs *pflag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard) // we print the error ourselves, once
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err // pflag already printed fs.Usage
		}
		return usageError{err}
	}
	return nil
}

// oneFile returns the single positional argument naming a capture.
func oneFile(fs *pflag.FlagSet) (string, error) {
	switch fs.NArg() {
	case 1:
		return fs.Arg(0), nil
	case 0:
		return "", usagef("missing capture file argument")
	}
	return "", usagef("expected one capture file, got %d arguments: %s", fs.NArg(), strings.Join(fs.Args(), " "))
}

// captureArgs returns the positional arguments naming the captures a
// reading verb reads as one (files, directories, globs; see openInputs),
// and a name for them in messages.
func captureArgs(fs *pflag.FlagSet) ([]string, string, error) {
	if fs.NArg() == 0 {
		return nil, "", usagef("missing capture file argument")
	}
	return fs.Args(), strings.Join(fs.Args(), " "), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminalFd(f.Fd())
}

func isTerminalReader(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && isTerminalFd(f.Fd())
}
