package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

const recoverUsage = `recover [--json] IN -o OUT

Copy whatever can be read from a damaged capture IN (a truncated file,
corrupted pages, a killed recorder's file) into a new capture OUT:
sessions, topics, messages with their publisher client ids and MQTT 5
properties, and events. IN is read by ranges of seq (and ids), so one bad
page costs the rows on it, not the rest. IN is opened read-only and never
modified; OUT must not exist. Messages get new, contiguous seq numbers in
OUT; the report lists every unreadable range in IN's numbering.

A session whose own row is unreadable but whose messages are not is
re-created with source "recovered" and placeholder metadata.

Rows that break the format's invariants are repaired and listed: a QoS
outside 0–2 becomes 0, a time or offset earlier than the previous message's
of its session is raised to it.

Exit status: 0 OUT was written and passes mqtape check (the report lists
what was lost or repaired; a line on stderr says so); 4 IN is not a
capture at all, or OUT still fails mqtape check; 1 OUT could not be written
(what was written up to then is a valid capture).`

const recoverExamples = `  mqtape recover broken.db -o fixed.db
  mqtape recover --json broken.db -o fixed.db | jq .lost_messages
  mqtape check broken.db || mqtape recover broken.db -o fixed.db
`

type recoverOptions struct {
	json bool
	in   string
	out  string
}

func parseRecover(args []string, cio *cliIO) (recoverOptions, error) {
	var o recoverOptions
	flags := newFlagSet("recover", recoverUsage, recoverExamples, cio)
	flags.StringVarP(&o.out, "output", "o", "", "new capture file to write (required; must not exist)")
	flags.BoolVar(&o.json, "json", false, "print the report as JSON")
	if err := parseFlags(flags, args); err != nil {
		return o, err
	}
	var err error
	if o.in, err = oneFile(flags); err != nil {
		return o, err
	}
	if o.out == "" {
		return o, usagef("missing -o OUT (recover writes a new capture)")
	}
	if _, err := os.Stat(o.out); err == nil {
		return o, usagef("-o %s: the file exists; recover writes a new capture", o.out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return o, usagef("-o %s: %v", o.out, err)
	}
	return o, nil
}

func cmdRecover(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseRecover(args, cio)
	if err != nil {
		return err
	}
	rep, err := storage.Recover(ctx, o.in, o.out)
	if err != nil {
		if rep.Sessions > 0 || rep.Messages > 0 {
			printRecover(cio, rep)
		}
		return err
	}
	// The output must be sound; say so only after checking.
	chk, err := storage.Check(ctx, o.out, storage.CheckOptions{})
	if err != nil {
		return fmt.Errorf("check the recovered capture: %w", err)
	}
	if !chk.OK() {
		return fmt.Errorf("%s: %w: recover could not repair all of it: %s, written from it, still fails mqtape check (%s)",
			o.in, storage.ErrCorrupt, o.out, chk.Problems[0].Detail)
	}
	if o.json {
		if err := writeJSON(cio.stdout, rep); err != nil {
			return err
		}
	} else {
		printRecover(cio, rep)
	}
	if !rep.Complete() {
		// OUT is a sound capture of what could be read: that is success.
		var repaired int64
		for _, r := range rep.Repaired {
			repaired += r.Count
		}
		fmt.Fprintf(cio.stderr, "mqtape recover: %s was damaged: %s and %s lost, %s repaired, "+
			"%s re-created; %s is a sound capture of the rest\n",
			o.in, humanize.Count(rep.LostMessages, "message", "messages"), humanize.Count(rep.LostEvents, "event", "events"),
			humanize.Count(repaired, "message", "messages"), humanize.Count(int64(len(rep.Recreated)), "session", "sessions"), o.out)
	}
	return nil
}

func printRecover(cio *cliIO, r *storage.RecoverReport) {
	w := cio.text
	fmt.Fprintf(w, "recovered: %s → %s (input format v%d)\n", r.In, r.Out, r.InVersion)
	fmt.Fprintf(w, "copied:    %s, %s (%s), %s, %s\n", humanize.Count(int64(r.Sessions), "session", "sessions"),
		humanize.Count(r.Messages, "message", "messages"), humanBytes(r.Bytes), humanize.Count(int64(r.Topics), "topic", "topics"),
		humanize.Count(r.Events, "event", "events"))
	for _, l := range r.Lost {
		rng := fmt.Sprintf("%d–%d", l.From, l.To)
		switch {
		case l.To < 0:
			rng = fmt.Sprintf("%d to the end", l.From)
		case l.From == l.To:
			rng = fmt.Sprint(l.From)
		}
		what := l.Table + " ids " + rng
		if l.Table == "messages" {
			what = "messages seq " + rng
		}
		fmt.Fprintf(w, "lost:      %s: %s\n", what, l.Cause)
	}
	if len(r.Recreated) > 0 {
		fmt.Fprintf(w, "sessions:  %v had unreadable metadata: re-created with source %q\n", r.Recreated, storage.SourceRecovered)
	}
	if len(r.Renumbered) > 0 {
		ids := make([]int64, 0, len(r.Renumbered))
		for id := range r.Renumbered {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			fmt.Fprintf(w, "renumber:  session %d is session %d in %s\n", id, r.Renumbered[id], r.Out)
		}
	}
	for _, rp := range r.Repaired {
		fmt.Fprintf(w, "repaired:  session %d: %s messages (from seq %d): %s\n", rp.Session,
			humanize.GroupDigits(rp.Count), rp.FirstSeq, rp.What)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note:      %s\n", n)
	}
	if r.Complete() {
		fmt.Fprintln(w, "result:    complete: nothing was found missing")
		return
	}
	fmt.Fprintf(w, "result:    INCOMPLETE: %s and %s lost, %s of repair; %s is a sound capture of the rest\n",
		humanize.Count(r.LostMessages, "message", "messages"), humanize.Count(r.LostEvents, "event", "events"),
		humanize.Count(int64(len(r.Repaired)), "kind", "kinds"), r.Out)
}
