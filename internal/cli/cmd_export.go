package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/where"
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

decoded: the payload as a binary or compressed decoder read it (Sparkplug B,
protobuf, CBOR, MessagePack, gzip+…), a JSON value; decode_error: why the
decoder selected for a message failed (the export goes on). Sparkplug B
metrics carry the name and datatype of the latest NBIRTH/DBIRTH of their edge
node or device even when the message has only aliases; seq_gap: true marks
a seq that does not follow the edge node's previous message, and
unresolved_alias: true an alias no birth in the capture names. In CSV,
decoded is JSON text. --no-decode leaves both out. The decoders the capture
carries (mqtape decoders) apply after --decode.

--where QUERY keeps the messages whose decoded value (else JSON payload)
matches; it combines with -t/-x/--from/--to and streams in constant memory.
Terms, separated by spaces, must all hold:
` + where.Help + `

A selection that contains nothing (--from past the end, a -t/-x that
matches no topic, a --where that matches no message) is an error (exit 1) that says what the capture holds: its
topics, or its sessions and their span; --from not before --to is a usage
error (exit 2).

JSON escapes the control characters a terminal acts on (C0, DEL, C1, bidi
overrides) as \uXXXX: parsed, the values are exactly the capture's. CSV to a
file or pipe is byte-exact; CSV to a terminal shows those characters as
\x1b or ⟨U+202E⟩ instead of obeying them.

` + decodeFlagsHelp

const exportExamples = `  mqtape export capture.db > capture.jsonl
  mqtape export --format csv -t 'plant/+/temp' capture.db > temps.csv
  mqtape export --from 90s --to 2m --session 1 capture.db | jq -r .payload
  mqtape export --from 2026-11-26T10:00:00Z capture.db
  mqtape export -t 'spBv1.0/#' capture.db | jq -c '.decoded.metrics'
  mqtape export --decode 'sensors/+/cbor=cbor' --decode 'acme/#=gzip+protobuf:acme.v1.Reading' \
      --proto protos/reading.proto --proto-path protos/common capture.db
  mqtape export --no-decode capture.db
  mqtape export --where '.celsius>25' -t 'plant/+/temp' capture.db
  mqtape export --where 'metric:"Node Control/Rebirth"=true' -t 'spBv1.0/#' capture.db
`

type exportOptions struct {
	sel      selectFlags
	decoders decodeFlags
	noDecode bool
	where    where.Query
	wheres   []string // --where as given
	format   string
	file     string
}

func parseExport(args []string, cio *cliIO) (exportOptions, error) {
	var o exportOptions
	fs := newFlagSet("export", exportUsage, exportExamples, cio)
	fs.StringVar(&o.format, "format", "jsonl", "jsonl or csv")
	o.sel.register(fs, true)
	o.decoders.register(fs)
	fs.BoolVar(&o.noDecode, "no-decode", false, "leave decoded and decode_error out")
	fs.StringArrayVar(&o.wheres, "where", nil, "only messages whose decoded value matches QUERY, e.g. '.celsius>25' (repeatable, ANDed)")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	var err error
	if o.where, err = where.Parse(strings.Join(o.wheres, " ")); err != nil {
		return o, usagef("--where: %v", err)
	}
	if o.noDecode && (len(o.decoders.rules) > 0 || len(o.decoders.protos) > 0) {
		return o, usagef("--no-decode with --decode or --proto: choose one")
	}
	if o.format != "jsonl" && o.format != "csv" && o.format != "json" {
		return o, usagef("--format %q: use jsonl or csv", o.format)
	}
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
	var reg *decode.Registry
	if !o.noDecode {
		if reg, err = o.decoders.registry(ctx); err != nil {
			return err
		}
	}
	c, err := storage.Open(o.file)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := checkNotEmpty(ctx, c, o.file, q); err != nil {
		return err
	}
	if reg != nil {
		if reg, err = withCapture(ctx, reg, c, cio.stderr); err != nil {
			return err
		}
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
	var read, written int64
	for d, err := range export.Decode(ctx, c, q, reg) {
		if err != nil {
			return err
		}
		read++
		if !o.where.Empty() && !o.where.MatchJSON(d.Value()) {
			continue
		}
		written++
		if err := w.Write(&d.Message, d.Result); err != nil {
			return err // e.g. stdout closed (| head)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if out != nil {
		if err := out.Flush(); err != nil {
			return err
		}
	}
	if written == 0 && read > 0 {
		// Like an empty -t/--from selection (checkNotEmpty): nothing
		// exported is an error that says what was there.
		return fmt.Errorf("nothing selected: --where %s matches none of the %s selected in %s",
			strings.Join(o.wheres, " "), humanize.Count(read, "message", "messages"), o.file)
	}
	return nil
}
