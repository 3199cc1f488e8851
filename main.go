// Command mqtape records MQTT traffic into SQLite captures, inspects them in
// a terminal UI and replays them with the original timing. The command line
// lives in internal/cli; main turns signals into a context and runs it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mqtape/mqtape/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }() // a second Ctrl-C kills the process the usual way
	os.Exit(cli.Run(ctx, os.Args[1:], cli.IO{Stdout: os.Stdout, Stderr: os.Stderr, Stdin: os.Stdin, Getenv: os.Getenv, Process: true}))
}
