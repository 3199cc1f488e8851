package cli

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

const cutUsage = `cut [flags] IN... -o OUT

Copy a time and topic slice of a capture into OUT (a new capture, or one more
session of an existing one). Each session of IN with messages in the slice
becomes a session of OUT that starts at the slice's start: offsets count from
--from, absolute times stay as recorded.

The slice keeps the retained state valid at its start: for every selected
topic, the last retained message before --from (one the broker sent from its
retained store, or a live message recorded with retain=1; an empty one
clears the topic) is carried to the start of the slice as a message from
the retained store, so 'mqtape play OUT' restores the broker's retained
state as it was at that moment. Events inside the slice are copied too.

--from/--to take an offset into each session (90s, 1m30s) or an RFC 3339
time; the slice is [from, to). IN is only read, never changed. A payload
over 1 MiB is copied inside SQLite, never held by mqtape (--compress stores
it as published).

A slice that contains nothing (--from past the end, a -t/-x that
matches no topic) is an error (exit 1) that says what the capture holds: its
topics, or its sessions and their span; --from not before --to is a usage
error (exit 2).

Exit codes: 0 done, 1 error, 2 usage, 4 IN is not a readable capture (or
OUT exists and is not a capture).

Several captures — files, a directory (its *.db files) or a quoted glob such as
'run-*.db' — are read as one capture in time order: the parts of a split
recording (record --split-size) count every message once.`

const cutExamples = `  mqtape cut big.db --from 10m --to 12m -o incident.db
  mqtape cut big.db -t 'plant/line1/#' -o line1.db
  mqtape cut big.db --from 2026-11-26T10:00:00Z --to 2026-11-26T10:05:00Z -x '$SYS/#' -o five-minutes.db
  mqtape cut big.db --session 2 --from 30s -o s2.db
  mqtape cut big.db --compress -o small.db                       # the whole capture, payloads compressed
`

type cutOptions struct {
	inputs  []string // the captures read as one (openInputs)
	sel     selectFlags
	in, out string
	quiet   bool
	// compress: OUT stores payloads compressed (--compress).
	compress bool
	query    storage.Query
}

func parseCut(args []string, cio *cliIO) (cutOptions, error) {
	var o cutOptions
	fs := newFlagSet("cut", cutUsage, cutExamples, cio)
	fs.StringVarP(&o.out, "output", "o", "", "the capture to write (created, or appended to)")
	o.sel.register(fs, true)
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line and no summary")
	registerCompress(fs, &o.compress)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if o.out == "" {
		return o, usagef("missing -o OUT")
	}
	var err error
	if o.inputs, o.in, err = captureArgs(fs); err != nil {
		return o, err
	}
	o.query, err = o.sel.query()
	return o, err
}

func cmdCut(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseCut(args, cio)
	if err != nil {
		return err
	}
	if err := notAnInput(o.inputs, o.out); err != nil {
		return err
	}
	in, err := openInputs(ctx, cio, o.inputs, false)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := checkNotEmpty(ctx, in, o.in, o.query); err != nil {
		return err
	}
	created := !fileExists(o.out)
	out, err := storage.OpenWrite(o.out)
	if err != nil {
		return err
	}
	out.SetCompression(o.compress)
	var written atomic.Int64
	stop := newStatusLine(cio, o.quiet).start(func() string {
		return fmt.Sprintf("cutting %s: %s", o.in, humanize.Count(written.Load(), "message", "messages"))
	})
	host, _ := os.Hostname()
	res, runErr := storage.Cut(ctx, in, out, storage.CutOptions{Select: o.query, Version: version, Host: host, Progress: &written})
	stop()
	if err := out.Close(); runErr == nil {
		runErr = err
	}
	if runErr != nil && res.Messages == 0 && created {
		removeCapture(o.out)
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	if runErr != nil {
		return runErr
	}
	if res.Messages == 0 {
		if created {
			removeCapture(o.out)
		}
		return fmt.Errorf("cut %s: no message in the slice (nothing written)", o.in)
	}
	if !o.quiet {
		fmt.Fprintf(cio.stderr, "cut %s (%s carried retained) from %s into %s, %s\n",
			humanize.Count(res.Messages, "message", "messages"), humanize.GroupDigits(res.Carried), o.in, o.out,
			humanize.Count(int64(res.Sessions), "session", "sessions"))
	}
	return nil
}
