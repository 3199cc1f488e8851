package cli

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

const mergeUsage = `merge [flags] A B ... -o OUT

Merge captures into one session of OUT, in receive-time order (ts_ns). Ties
go to the input named first (then its earlier session); each input
session's own order is always kept. Use it to join the captures of several
recorders, e.g.
recorders that share the work of one subscription on a clustered broker:

  mqtape record --broker mqtt://node1 -t '$share/mqtape/#' -o rec1.db
  mqtape record --broker mqtt://node2 -t '$share/mqtape/#' -o rec2.db
  mqtape merge rec1.db rec2.db -o all.db

The broker hands each message of a shared subscription to one member of the
group, so every recorder stores a part and the merge is the whole. Times
come from each recorder's clock: keep the hosts in sync (NTP), or messages
from different recorders may be ordered by up to the clock difference.
Even on one host, two recorders receive a publisher's consecutive messages
over two connections: the merge follows their receive times, which can put
a message before the one published just ahead of it (by the delivery
jitter, typically well under a millisecond).
Messages from the brokers' retained stores keep their flag (play restores
them first); a retained-store message identical to one already merged
(topic, QoS, payload, properties) is kept once, since every member of a
shared subscription may get the broker's retained store. The events of every input session are kept, in time order, and
each input session is named by a "merged" event. Offsets count from the
earliest input session's start. The inputs are only read, never changed.
A payload over 1 MiB is copied inside SQLite, never held by mqtape
(--compress stores it as published).

Exit codes: 0 done, 1 error, 2 usage, 4 an input is not a readable capture
(or OUT exists and is not a capture).

Inputs may be directories or quoted globs. The parts of a split recording
count each message once: the retained rows carried into a part are left out
when its previous part is merged too.`

const mergeExamples = `  mqtape merge rec1.db rec2.db rec3.db -o all.db
  mqtape merge site-a.db site-b.db -o both.db && mqtape info both.db
  mqtape merge --compress rec1.db rec2.db -o all.db                 # payloads compressed in all.db
`

type mergeOptions struct {
	inputs   []string
	out      string
	quiet    bool
	compress bool // OUT stores payloads compressed
}

func parseMerge(args []string, cio *cliIO) (mergeOptions, error) {
	var o mergeOptions
	fs := newFlagSet("merge", mergeUsage, mergeExamples, cio)
	fs.StringVarP(&o.out, "output", "o", "", "the capture to write (created, or appended to)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line and no summary")
	registerCompress(fs, &o.compress)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if o.out == "" {
		return o, usagef("missing -o OUT")
	}
	if fs.NArg() < 1 {
		return o, usagef("expected at least two captures to merge, got none")
	}
	o.inputs = fs.Args()
	return o, nil
}

func cmdMerge(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseMerge(args, cio)
	if err != nil {
		return err
	}
	var inputs []*storage.Capture
	defer func() {
		for _, c := range inputs {
			c.Close()
		}
	}()
	files, err := storage.ExpandInputs(o.inputs)
	if err != nil {
		return err
	}
	if len(files) < 2 {
		return usagef("expected at least two captures to merge, got %d", len(files))
	}
	for _, path := range files {
		c, err := storage.Open(path)
		if err != nil {
			return err
		}
		inputs = append(inputs, c)
		if err := notSameFile(path, o.out); err != nil {
			return err
		}
	}
	created := !fileExists(o.out)
	out, err := storage.OpenWrite(o.out)
	if err != nil {
		return err
	}
	out.SetCompression(o.compress)
	var written atomic.Int64
	stop := newStatusLine(cio, o.quiet).start(func() string {
		return fmt.Sprintf("merging: %s messages", humanize.GroupDigits(written.Load()))
	})
	host, _ := os.Hostname()
	res, runErr := storage.Merge(ctx, inputs, out, storage.MergeOptions{Version: version, Host: host, Progress: &written})
	stop()
	if err := out.Close(); runErr == nil {
		runErr = err
	}
	if (runErr != nil || res.Messages == 0) && created {
		removeCapture(o.out)
	}
	switch {
	case ctx.Err() != nil:
		return errInterrupted
	case runErr != nil:
		return runErr
	case res.Messages == 0:
		return fmt.Errorf("merge: the inputs have no messages (nothing written)")
	}
	if !o.quiet {
		dupes := ""
		if res.RetainedDuplicates > 0 {
			dupes = fmt.Sprintf(" (%s kept once)", humanize.Count(res.RetainedDuplicates,
				"identical retained-store message", "identical retained-store messages"))
		}
		fmt.Fprintf(cio.stderr, "merged %s from %s into %s%s\n", humanize.Count(res.Messages, "message", "messages"),
			humanize.Count(int64(len(inputs)), "capture", "captures"), o.out, dupes)
	}
	return nil
}
