package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

const checkUsage = `check [--full] [--json] FILE

Verify a capture without modifying it. First SQLite's own check of the
file's structure (quick_check; --full runs integrity_check, which also
compares every index with its table and takes longer), then mqtape's
invariants: the format marker and version, the tables, every message's
session, topic and publisher exist, seq has no holes within a session,
offset_ns and ts_ns never decrease within a session, each session's
first_seq/last_seq match its messages, every event's session exists.

Notes are not damage: a session that was not closed cleanly (still
recording, or the recorder was killed: everything committed is intact),
drops, a missing topic index, a write-ahead log that holds data.

Exit status: 0 the capture is sound; 4 it is damaged (the problems are
listed; mqtape recover copies what can be read), or it is not a capture,
of a newer format, or missing.`

const checkExamples = `  mqtape check capture.db
  mqtape check --full --json capture.db | jq .verdict
  mqtape check capture.db || mqtape recover capture.db -o recovered.db
`

type checkOptions struct {
	full bool
	json bool
	file string
}

func parseCheck(args []string, cio *cliIO) (checkOptions, error) {
	var o checkOptions
	fs := newFlagSet("check", checkUsage, checkExamples, cio)
	fs.BoolVar(&o.full, "full", false, "run SQLite's integrity_check (slower: also verifies every index) instead of quick_check")
	fs.BoolVar(&o.json, "json", false, "print the verdict as JSON")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	var err error
	o.file, err = oneFile(fs)
	return o, err
}

// CheckJSON is the JSON form of mqtape check.
type CheckJSON struct {
	Verdict string `json:"verdict"` // ok or damaged
	*storage.CheckReport
}

func cmdCheck(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseCheck(args, cio)
	if err != nil {
		return err
	}
	rep, err := storage.Check(ctx, o.file, storage.CheckOptions{Full: o.full})
	if err != nil {
		return err
	}
	verdict := "ok"
	if !rep.OK() {
		verdict = "damaged"
	}
	if o.json {
		if err := writeJSON(cio.stdout, CheckJSON{Verdict: verdict, CheckReport: rep}); err != nil {
			return err
		}
	} else {
		printCheck(cio, rep)
	}
	if !rep.OK() {
		return fmt.Errorf("%s: %w (%s)", o.file, storage.ErrCorrupt, humanize.Count(int64(len(rep.Problems)), "problem", "problems"))
	}
	return nil
}

func printCheck(cio *cliIO, r *storage.CheckReport) {
	w := cio.text
	size := ""
	if fi, err := os.Stat(r.Path); err == nil {
		size = ", " + humanBytes(fi.Size())
	}
	fmt.Fprintf(w, "file:      %s (capture format v%d%s)\n", r.Path, r.FormatVersion, size)
	sqliteOK := "ok"
	for _, p := range r.Problems {
		if p.Check == "sqlite" {
			sqliteOK = "FAILED"
		}
	}
	fmt.Fprintf(w, "sqlite:    %s %s\n", r.SQLiteCheck, sqliteOK)
	seqs := ""
	if r.Messages > 0 {
		seqs = fmt.Sprintf(" (seq %d–%d)", r.FirstSeq, r.LastSeq)
	}
	fmt.Fprintf(w, "contents:  %s, %s%s, %s, %s\n", humanize.Count(int64(r.Sessions), "session", "sessions"),
		humanize.Count(r.Messages, "message", "messages"), seqs, humanize.Count(r.Topics, "topic", "topics"),
		humanize.Count(r.Events, "event", "events"))
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note:      %s\n", n.Detail)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem:   [%s] %s\n", p.Check, strings.ReplaceAll(p.Detail, "\n", " "))
	}
	if r.OK() {
		fmt.Fprintln(w, "verdict:   OK")
		return
	}
	problems := humanize.Count(int64(len(r.Problems)), "problem", "problems")
	for _, p := range r.Problems {
		if p.Check == "schema" {
			// recover refuses such a file too: it reads only mqtape's schema.
			fmt.Fprintf(w, "verdict:   DAMAGED (%s): its schema is not mqtape's, so no verb (recover included) reads it; "+
				"the objects listed are not mqtape's\n", problems)
			return
		}
	}
	fmt.Fprintf(w, "verdict:   DAMAGED (%s); %s recover %s -o NEW.db copies what can be read\n", problems, cio.program, shellQuote(r.Path))
}
