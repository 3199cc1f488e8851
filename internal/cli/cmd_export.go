package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"

	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/storage"
)

const exportUsage = `export [flags] FILE

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

JSON escapes the control characters a terminal acts on (C0, DEL, C1, bidi
overrides) as \uXXXX: parsed, the values are exactly the capture's. CSV to a
file or pipe is byte-exact; CSV to a terminal shows those characters as
\x1b or ⟨U+202E⟩ instead of obeying them.`

const exportExamples = `  mqtape export capture.db > capture.jsonl
  mqtape export --format csv -t 'plant/+/temp' capture.db > temps.csv
  mqtape export --from 90s --to 2m --session 1 capture.db | jq -r .payload
  mqtape export --from 2026-11-26T10:00:00Z capture.db
`

type exportOptions struct {
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
	o.file, err = oneFile(fs)
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
	c, err := storage.Open(o.file)
	if err != nil {
		return err
	}
	defer c.Close()
	bw := bufio.NewWriterSize(cio.stdout, 256<<10)
	defer bw.Flush()
	var cw *csv.Writer
	var enc *json.Encoder
	jw := termsafe.NewJSONWriter(bw)
	if o.format == "csv" {
		cw = csv.NewWriter(bw)
		if err := cw.Write(export.CSVHeader); err != nil {
			return err
		}
	} else {
		enc = json.NewEncoder(jw)
		enc.SetEscapeHTML(false)
	}
	for m, err := range c.Messages(ctx, q) {
		if err != nil {
			return err
		}
		r := export.New(&m)
		if cw != nil {
			row := r.CSV()
			if cio.stdoutTTY {
				for i := range row {
					row[i] = termsafe.String(row[i])
				}
			}
			err = cw.Write(row)
		} else {
			err = enc.Encode(&r)
		}
		if err != nil {
			return err // e.g. stdout closed (| head)
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
	}
	if err := jw.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}
