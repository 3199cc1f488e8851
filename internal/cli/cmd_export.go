package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/where"
)

const exportUsage = `export [flags] CAPTURE... [-o FILE]

Write a capture's messages in seq order as JSON lines (one object per
message; "ndjson" is the same), CSV with a header row, Parquet or MCAP.
Streams in constant memory. Several captures — files, a directory (its *.db
files) or a quoted glob such as 'run-*.db' — are read as one capture in time
order: the parts of a split recording (record --split-size) count every
message once.

JSON lines and CSV fields: seq, session, time (RFC 3339, ns, UTC), ts_ns
(Unix ns), offset_ns (monotonic ns since the session started), topic, qos,
retain, dup, packet_id, from_store (1: sent from the broker's retained store
at subscribe time), client_id (the publisher, in captures made by mqtape
serve; else empty), payload_b64 (always), payload (the text, only when valid
UTF-8), and properties (MQTT 5 only, when present: content_type,
payload_format, message_expiry, response_topic, correlation_data_b64,
user_properties as a list of {"key","value"} in order, subscription_ids).
ts_ns is above 2^53: JavaScript and jq read it rounded to a few hundred ns;
use time, which is exact, in such tools.

--format parquet writes one row per message (zstd, row groups of at most
64Ki rows or 24 MiB of payload) for DuckDB, Spark, pandas or Polars:
seq, session, ts_ns, offset_ns (INT64), time (TIMESTAMP, ns, UTC), topic
(STRING, dictionary), qos (INT32), retain, dup, from_store (BOOLEAN),
client_id (STRING), payload (BINARY), payload_text (STRING, null when not
UTF-8), decoded (JSON: the value a binary decoder read, else null),
packet_id (INT32), properties (JSON, null without MQTT 5 properties).
--format mcap writes an MCAP file for Foxglove: zstd chunks, one channel per
topic (and per QoS, retain flag, retained-store origin and publisher, which
are in its metadata). Messages a protobuf decoder read (--decode
FILTER=protobuf:NAME, gzip+ etc. undone) are on protobuf channels, as their
protobuf bytes, with the message type's FileDescriptorSet as schema; the
rest on json channels: JSON objects as they are, payloads another binary
decoder read as their decoded JSON, others as {"text": …} or {"base64": …};
see the README, "MCAP".
Both need -o: FILE, or - for a pipe (never a terminal).

-o FILE is written under a temporary name and appears only when complete;
an existing FILE is never replaced (exit 4). Without -o, JSON lines and CSV
go to stdout. On a terminal, writing a file shows a progress bar.

decoded: the payload as a binary or compressed decoder read it (Sparkplug B,
protobuf, CBOR, MessagePack, gzip+…), a JSON value; decode_error: why the
decoder selected for a message failed (the export goes on). Sparkplug B
metrics carry the name and datatype of the latest NBIRTH/DBIRTH of their edge
node or device even when the message has only aliases; seq_gap: true marks
a seq that does not follow the edge node's previous message, and
unresolved_alias: true an alias no birth in the capture names. In CSV,
decoded is JSON text. --no-decode leaves both out. The decoders each capture
carries (mqtape decoders) apply after --decode.

--where QUERY keeps the messages whose decoded value (else JSON payload)
matches; it combines with -t/-x/--from/--to and streams in constant memory.
Terms, separated by spaces, must all hold:
` + where.Help + `

A selection that contains nothing (--from past the end, a -t/-x that
matches no topic, a --where that matches no message) is an error (exit 1) that says what the capture holds: its
topics, or its sessions and their span; --from not before --to is a usage
error (exit 2). Without selection flags, a capture with no messages gives
an empty export.

JSON escapes the control characters a terminal acts on (C0, DEL, C1, bidi
overrides) as \uXXXX: parsed, the values are exactly the capture's. CSV to a
file or pipe is byte-exact; CSV to a terminal shows those characters as
\x1b or ⟨U+202E⟩ instead of obeying them.

Exit codes: 0 done, 1 error (nothing selected), 2 usage, 4 a capture is not
readable or -o FILE exists, 130 interrupted (nothing is left behind).

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
  mqtape export --format parquet -o exports/rec1.parquet rec1.db rec1-2.db
  mqtape export --format parquet -o - capture.db | aws s3 cp - s3://bucket/capture.parquet
  mqtape export --format mcap -x '$SYS/#' -o capture.mcap capture.db
  mqtape export --format mcap --decode 'acme/#=protobuf:acme.v1.Reading' \
      --proto protos/reading.proto -o capture.mcap capture.db
`

type exportOptions struct {
	sel      selectFlags
	decoders decodeFlags
	noDecode bool
	where    where.Query
	wheres   []string // --where as given
	format   string
	files    []string
	out      string // "" stdout, "-" stdout for binary formats too
	quiet    bool
	query    storage.Query
}

// exportFormats are the formats --format takes, and their canonical names.
var exportFormats = map[string]string{"jsonl": "jsonl", "json": "jsonl", "ndjson": "jsonl", "csv": "csv",
	"parquet": "parquet", "mcap": "mcap"}

func parseExport(args []string, cio *cliIO) (exportOptions, error) {
	var o exportOptions
	fs := newFlagSet("export", exportUsage, exportExamples, cio)
	fs.StringVar(&o.format, "format", "jsonl", "jsonl (or ndjson), csv, parquet or mcap")
	fs.StringVarP(&o.out, "output", "o", "", "write to this new file (- for stdout); parquet and mcap need it")
	o.sel.register(fs, true)
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar and no summary")
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
	format, ok := exportFormats[o.format]
	if !ok {
		return o, usagef("--format %q: use jsonl, ndjson, csv, parquet or mcap", o.format)
	}
	o.format = format
	if binaryFormat(o.format) && o.out == "" {
		return o, usagef("--format %s writes a file: give -o FILE (or -o - for a pipe)", o.format)
	}
	if fs.NArg() == 0 {
		return o, usagef("missing capture file argument")
	}
	o.files = fs.Args()
	o.query, err = o.sel.query()
	return o, err
}

func binaryFormat(format string) bool { return format == "parquet" || format == "mcap" }

// ExportRecord is one exported message (see package export).
type ExportRecord = export.Record

// exportSink is one output format.
type exportSink interface {
	Write(m *storage.Message, res decode.Result) error
	Close() error // writes what is buffered (and a footer); not the file
}

func cmdExport(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseExport(args, cio)
	if err != nil {
		return err
	}
	if o.out == "-" && binaryFormat(o.format) && cio.stdoutTTY {
		return usagef("-o -: stdout is a terminal: %s is binary; give -o FILE or pipe the output", o.format)
	}
	var reg *decode.Registry
	if !o.noDecode {
		if reg, err = o.decoders.registry(ctx); err != nil {
			return err
		}
	}
	c, err := openExportInput(ctx, cio, o)
	if c != nil {
		defer c.Close()
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	if err != nil {
		return err
	}
	if reg != nil {
		if reg, err = withCapture(ctx, reg, c, cio.stderr); err != nil { // the decoders c carries
			return err
		}
	}
	toFile := o.out != "" && o.out != "-"
	dst := cio.stdout
	var file *outputFile
	if toFile {
		if file, err = createOutput(o.out); err != nil {
			return err
		}
		dst = file
	}
	var total int64 = -1 // unknown: no progress bar
	if toFile && cio.stderrTTY && !o.quiet {
		total, err = c.Count(ctx, o.query)
	}
	var n int64
	if err == nil {
		n, err = writeExport(ctx, o, c, reg, dst, cio, total)
	}
	if err == nil && file != nil {
		err = file.commit()
	} else if file != nil {
		file.abort()
	}
	if err != nil && ctx.Err() != nil {
		return errInterrupted
	}
	if err != nil {
		return err
	}
	if toFile && !o.quiet {
		fmt.Fprintf(cio.stderr, "exported %s from %s to %s (%s)\n", humanize.Count(n, "message", "messages"),
			strings.Join(o.files, " "), o.out, humanBytes(fileSize(o.out)))
	}
	return nil
}

// openExportInput opens the captures as one (openInputs) and refuses a
// selection that contains nothing (an unselective export of captures
// without messages is an empty export).
func openExportInput(ctx context.Context, cio *cliIO, o exportOptions) (*storage.Capture, error) {
	if o.out != "" && o.out != "-" {
		files, err := storage.ExpandInputs(o.files)
		if err != nil {
			return nil, err
		}
		for _, path := range files {
			if err := notSameFile(path, o.out); err != nil {
				return nil, err
			}
		}
	}
	c, err := openInputs(ctx, cio, o.files, true)
	if err != nil {
		return nil, err
	}
	if !o.sel.selective() {
		return c, nil
	}
	return c, checkNotEmpty(ctx, c, strings.Join(o.files, " "), o.query)
}

// writeExport writes the selected messages of c to dst and returns how
// many it wrote. total > 0 shows a progress bar.
func writeExport(ctx context.Context, o exportOptions, c *storage.Capture, reg *decode.Registry, dst io.Writer,
	cio *cliIO, total int64) (int64, error) {
	sink, err := newExportSink(o.format, dst, cio.stdoutTTY && o.out == "")
	if err != nil {
		return 0, err
	}
	var written atomic.Int64
	stop := newStatusLine(cio, o.quiet || total < 0).start(func() string {
		n := written.Load()
		frac := 1.0
		if total > 0 {
			frac = float64(n) / float64(total)
		}
		return fmt.Sprintf("exporting to %s [%s] %s/%s messages", o.out, progressBar(frac), humanize.GroupDigits(n),
			humanize.GroupDigits(total))
	})
	defer stop()
	var read int64
	for d, err := range export.Decode(ctx, c, o.query, reg) {
		if err != nil {
			return written.Load(), err
		}
		read++
		if !o.where.Empty() && !o.where.MatchJSON(d.Value()) {
			continue
		}
		if err := sink.Write(&d.Message, d.Result); err != nil {
			return written.Load(), err // e.g. stdout closed (| head)
		}
		written.Add(1)
	}
	if err := sink.Close(); err != nil {
		return written.Load(), err
	}
	if written.Load() == 0 && read > 0 {
		// Like an empty -t/--from selection (checkNotEmpty): nothing
		// exported is an error that says what was there.
		return 0, fmt.Errorf("nothing selected: --where %s matches none of the %s selected in %s",
			strings.Join(o.wheres, " "), humanize.Count(read, "message", "messages"), strings.Join(o.files, ", "))
	}
	return written.Load(), nil
}

// newExportSink returns the writer of one format to dst; tty: dst is a
// terminal.
func newExportSink(format string, dst io.Writer, tty bool) (exportSink, error) {
	// The payloads are streamed: a message of size P needs no copy of it.
	// JSON goes through termsafe's JSON filter (\u escapes, the same
	// values); CSV to a terminal through its text filter.
	switch format {
	case "parquet":
		return export.NewParquetWriter(dst, version), nil
	case "mcap":
		return export.NewMCAPWriter(dst, version)
	case "csv":
		var out *termsafe.Writer
		if tty {
			out = termsafe.NewWriter(dst)
			dst = out
		}
		w, err := export.NewCSVWriter(dst)
		return textSink{w, out}, err
	}
	out := termsafe.NewJSONWriter(dst)
	return textSink{export.NewJSONWriter(out), out}, nil
}

// textSink is JSON lines or CSV, through a termsafe filter or not.
type textSink struct {
	*export.Writer
	out *termsafe.Writer // nil: none
}

func (s textSink) Close() error {
	if err := s.Flush(); err != nil {
		return err
	}
	if s.out != nil {
		return s.out.Flush()
	}
	return nil
}

// selective: any selection flag is set.
func (s *selectFlags) selective() bool {
	return len(s.topics)+len(s.exclude) > 0 || s.from != "" || s.to != "" || s.session != 0
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}
