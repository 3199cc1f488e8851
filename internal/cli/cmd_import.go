package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/mqtape/mqtape/importer"
	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/storage"
)

const importUsage = `import [flags] IN -o OUT.db

Convert another recording of MQTT traffic into a capture (a new session in
OUT.db; an existing capture gets one more session). IN is a file, or - for
standard input. The format is detected when --format is not given:

  jsonl      mqtape export's JSON lines. A complete export imported into a new
             file exports again identically (seq order, session, time, ts_ns,
             offset_ns, qos, retain, dup, packet_id, from_store, client_id,
             payload, properties). Seq and session numbers are given anew
             (1, 2, ...; a new session wherever "session" changes), so they
             differ for a filtered export or a capture with empty sessions.
             Hand-written lines need only "topic": time may be "time" (RFC
             3339), the payload "payload" (text or any JSON value) or
             "payload_b64".
  mosquitto  mosquitto_sub -F %j (or %J) output, times from "tst"; or -v
             lines ("topic payload"), which have no times (all messages get
             the file's modification time) and cannot hold topics with
             spaces or payloads with line breaks.
  pcap       a pcap or pcapng file (tcpdump, Wireshark) of MQTT 3.1.1/5 over
             TCP to --port: TCP streams are reassembled, every PUBLISH a
             client sent to the broker is kept once, with its retain flag as
             published, the client id from the connection's CONNECT and the
             packet's capture time; CONNECT and DISCONNECT become events.
             After lost segments or a packet longer than the snap length,
             decoding resumes at the next whole MQTT packet; each gap is
             one problem saying how many bytes were lost and skipped.

A line or packet that cannot be imported is counted, reported on stderr and
stored as an import_problem event; the rest is imported. Messages whose time
goes backwards (input not in time order) keep their order and get the
previous message's time (reported as clamped). MQTT 5 properties are kept
(JSON lines, mosquitto_sub -V 5 -F %j, pcap). mosquitto_sub cuts binary
payloads and correlation data at their first NUL byte: a payload shorter
than its payloadlen is a bad line; correlation data that is binary or empty
is imported as read, with a warning that counts such messages (and an
import_problem event for each). The input is only read, never changed.

Exit codes: 0 imported (even with bad lines, unless --strict), 1 error
(input unreadable or unknown, nothing importable, --strict with bad lines),
2 usage, 4 OUT exists and is not a capture.`

const importExamples = `  mqtape export old.db > old.jsonl && mqtape import old.jsonl -o copy.db
  mosquitto_sub -t '#' -F %j > sub.jsonl; mqtape import sub.jsonl -o sub.db
  mosquitto_sub -t 'plant/#' -F %j | mqtape import - -o live.db
  tcpdump -i eth0 -w mqtt.pcap 'tcp port 1883'; mqtape import mqtt.pcap -o traffic.db
  mqtape import --format pcap --port 11883 wireshark.pcapng -o x.db
`

type importOptions struct {
	in, out string
	format  string
	port    int
	strict  bool
	quiet   bool
}

func parseImport(args []string, cio *cliIO) (importOptions, error) {
	var o importOptions
	fs := newFlagSet("import", importUsage, importExamples, cio)
	fs.StringVarP(&o.out, "output", "o", "", "the capture to write (created, or appended to)")
	fs.StringVar(&o.format, "format", "", "input format: jsonl, mosquitto or pcap (default: detect)")
	fs.IntVar(&o.port, "port", 1883, "pcap: the broker's TCP port")
	fs.BoolVar(&o.strict, "strict", false, "exit 1 when any line or packet could not be imported")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress line and no summary")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.out == "":
		return o, usagef("missing -o OUT.db")
	case fs.NArg() != 1:
		return o, usagef("expected one input file (or -), got %d arguments", fs.NArg())
	case o.port < 1 || o.port > 65535:
		return o, usagef("--port %d: not a TCP port", o.port)
	}
	if o.format != "" && !validFormat(o.format) {
		return o, usagef("--format %q: use jsonl, mosquitto or pcap", o.format)
	}
	o.in = fs.Arg(0)
	return o, nil
}

func validFormat(f string) bool {
	for _, x := range importer.Formats {
		if string(x) == f {
			return true
		}
	}
	return false
}

func cmdImport(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseImport(args, cio)
	if err != nil {
		return err
	}
	var (
		in    io.Reader
		size  int64
		mtime = time.Now()
		name  = o.in
	)
	if o.in == "-" {
		in, name = cio.stdin, "stdin"
	} else {
		f, err := os.Open(o.in)
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return fmt.Errorf("open input: %w", err)
		}
		if st.IsDir() {
			return fmt.Errorf("open input %q: is a directory", o.in)
		}
		if err := notSameFile(o.in, o.out); err != nil {
			return err
		}
		in, size, mtime = f, st.Size(), st.ModTime()
	}
	// Detect the format before the output exists, so that a wrong input
	// leaves nothing behind.
	br := bufio.NewReaderSize(in, 64<<10)
	format := importer.Format(o.format)
	if format == "" {
		head, err := br.Peek(64 << 10)
		if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("read input: %w", err)
		}
		if len(head) == 0 {
			return fmt.Errorf("import %s: %w: the input is empty", name, importer.ErrNothingImported)
		}
		if format, err = importer.Detect(head); err != nil {
			return fmt.Errorf("import %s: %w", name, err)
		}
	}
	created := !fileExists(o.out)
	c, err := storage.OpenWrite(o.out)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	im := importer.New(c, importer.Options{Format: format, Port: o.port, Name: name, Time: mtime,
		Session: storage.SessionInfo{Source: "import", Protocol: 4, Version: version, Host: host}})
	stop := newStatusLine(cio, o.quiet).start(func() string {
		p := im.Progress()
		s := fmt.Sprintf("importing %s: %s messages, %s bad", name, humanize.GroupDigits(p.Messages), humanize.GroupDigits(p.Bad))
		if size > 0 {
			s += fmt.Sprintf(", %d%% of %s", min(100, p.Bytes*100/size), humanBytes(size))
		} else {
			s += ", " + humanBytes(p.Bytes)
		}
		return s
	})
	res, runErr := im.Run(ctx, br)
	stop()
	closeErr := c.Close()
	if runErr == nil {
		runErr = closeErr
	}
	if runErr != nil && res.Messages == 0 && created {
		removeCapture(o.out)
	}
	if !o.quiet {
		writeImportSummary(cio.stderr, name, o.out, res)
	}
	switch {
	case ctx.Err() != nil:
		return errInterrupted
	case runErr != nil:
		return fmt.Errorf("import %s: %w", name, runErr)
	case o.strict && res.Bad > 0:
		return fmt.Errorf("import %s: %d lines or packets could not be imported (--strict)", name, res.Bad)
	}
	return nil
}

func writeImportSummary(w io.Writer, name, out string, res importer.Result) {
	if res.Messages > 0 {
		var ids []string
		for _, s := range res.Sessions {
			ids = append(ids, fmt.Sprint(s))
		}
		fmt.Fprintf(w, "imported %s (%s) from %s into %s, %s %s\n",
			humanize.Count(res.Messages, "message", "messages"), res.Format, name, out,
			humanize.Plural(int64(len(ids)), "session", "sessions"), strings.Join(ids, ", "))
	}
	if res.Bad > 0 {
		fmt.Fprintf(w, "%s could not be imported:\n", humanize.Count(res.Bad, "line or packet", "lines or packets"))
		for _, p := range res.Problems {
			fmt.Fprintf(w, "  %s\n", termsafe.String(p.String()))
		}
		if more := res.Bad - int64(len(res.Problems)); more > 0 {
			fmt.Fprintf(w, "  … %s more (all stored as import_problem events)\n", humanize.GroupDigits(more))
		}
	}
	if res.Clamped > 0 {
		fmt.Fprintf(w, "%s out of time order: kept in input order with the previous message's time\n",
			humanize.Count(res.Clamped, "message was", "messages were"))
	}
	if res.PropsTruncated > 0 {
		fmt.Fprintf(w, "warning: %s imported with MQTT 5 correlation data that may be cut short (%s%s): "+
			"mosquitto_sub prints correlation data only up to its first NUL byte; record MQTT 5 with mqtape record -V 5 to keep it whole\n",
			humanize.Count(res.PropsTruncated, "message", "messages"), strings.Join(res.PropsTruncatedAt, ", "),
			map[bool]string{true: ", …", false: ""}[res.PropsTruncated > int64(len(res.PropsTruncatedAt))])
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", termsafe.String(n))
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// removeCapture deletes a capture this command created and could not fill.
func removeCapture(path string) { storage.RemoveCapture(path) }

// notAnInput refuses an output that is one of the inputs (files,
// directories, globs).
func notAnInput(inputs []string, out string) error {
	files, err := storage.ExpandInputs(inputs)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := notSameFile(f, out); err != nil {
			return err
		}
	}
	return nil
}

// notSameFile refuses an output that is one of the inputs.
func notSameFile(in, out string) error {
	a, err1 := os.Stat(in)
	b, err2 := os.Stat(out)
	if err1 == nil && err2 == nil && os.SameFile(a, b) {
		return usagef("the output %q is the input: write to another file", out)
	}
	return nil
}
