package cli

import (
	"context"
	"io"

	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/termsafe"
)

const exportUsage = `export [flags] FILE...

Write a capture's messages to stdout in seq order, as JSON lines (one object
per message) or CSV with a header row. Streams in constant memory.

Fields: seq, session, time (RFC 3339, ns, UTC), ts_ns (Unix ns), offset_ns
(monotonic ns since the session started), topic, qos, retain, dup, packet_id,
from_store (1: sent from the broker's retained store at subscribe time),
client_id (the publisher, in captures made by mqtape serve; else empty),
payload_b64 (always), payload (the text, only when valid UTF-8), and
properties (MQTT 5 only, when present: content_type, payload_format,
message_expiry, response_topic, correlation_data_b64, user_properties as a
list of {"key","value"} in order, subscription_ids).

A selection that contains nothing (--from past the end, a -t/-x that
matches no topic) is an error (exit 1) that says what the capture holds: its
topics, or its sessions and their span; --from not before --to is a usage
error (exit 2).

JSON escapes the control characters a terminal acts on (C0, DEL, C1, bidi
overrides) as \uXXXX: parsed, the values are exactly the capture's. CSV to a
file or pipe is byte-exact; CSV to a terminal shows those characters as
\x1b or ⟨U+202E⟩ instead of obeying them.

Several captures — files, a directory (its *.db files) or a quoted glob such as
'run-*.db' — are read as one capture in time order: the parts of a split
recording (record --split-size) count every message once.`

const exportExamples = `  mqtape export capture.db > capture.jsonl
  mqtape export --format csv -t 'plant/+/temp' capture.db > temps.csv
  mqtape export --from 90s --to 2m --session 1 capture.db | jq -r .payload
  mqtape export --from 2026-11-26T10:00:00Z capture.db
`

type exportOptions struct {
	inputs []string // the captures read as one (openInputs)
	sel    selectFlags
	format string
	file   string
}

func parseExport(args []string, cio *cliIO) (exportOptions, error) {
	var o exportOptions
	fs := newFlagSet("export", exportUsage, exportExamples, cio)
	fs.StringVar(&o.format, "format", "jsonl", "jsonl or csv")
	o.sel.register(fs, true)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if o.format != "jsonl" && o.format != "csv" && o.format != "json" {
		return o, usagef("--format %q: use jsonl or csv", o.format)
	}
	var err error
	o.inputs, o.file, err = captureArgs(fs)
	return o, err
}

// ExportRecord is one exported message (see package export).
type ExportRecord = export.Record

func cmdExport(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseExport(args, cio)
	if err != nil {
		return err
	}
	q, err := o.sel.query()
	if err != nil {
		return err
	}
	c, err := openInputs(ctx, cio, o.inputs)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := checkNotEmpty(ctx, c, o.file, q); err != nil {
		return err
	}
	// The payloads are streamed: a message of size P needs no copy of it.
	// JSON goes through termsafe's JSON filter (\u escapes, the same
	// values); CSV to a terminal through its text filter.
	var w *export.Writer
	var out *termsafe.Writer
	if o.format == "csv" {
		dst := io.Writer(cio.stdout)
		if cio.stdoutTTY {
			out = termsafe.NewWriter(cio.stdout)
			dst = out
		}
		if w, err = export.NewCSVWriter(dst); err != nil {
			return err
		}
	} else {
		out = termsafe.NewJSONWriter(cio.stdout)
		w = export.NewJSONWriter(out)
	}
	defer w.Flush()
	for m, err := range c.Messages(ctx, q) {
		if err != nil {
			return err
		}
		if err := w.Write(&m); err != nil {
			return err // e.g. stdout closed (| head)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if out != nil {
		return out.Flush()
	}
	return nil
}
