// Package importer turns other recordings of MQTT traffic into mqtape
// captures: mqtape's own JSON lines (mqtape export), the output of
// mosquitto_sub (-F %j, -F %J or -v) and pcap/pcapng packet captures of MQTT
// over TCP, decoded in pure Go.
//
// Input that cannot be read (a bad line, a malformed packet, a broken TCP
// stream) is never skipped silently: each problem is counted, reported
// through Options.Problem and stored in the capture as an "import_problem"
// event of the session it happened in.
package importer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/storage"
)

// Format is an input format.
type Format string

// The input formats.
const (
	FormatJSONL     Format = "jsonl"     // mqtape export's JSON lines
	FormatMosquitto Format = "mosquitto" // mosquitto_sub -F %j / %J, or -v lines
	FormatPcap      Format = "pcap"      // pcap or pcapng of MQTT over TCP
)

// Formats lists the formats in the order they are documented.
var Formats = []Format{FormatJSONL, FormatMosquitto, FormatPcap}

// ErrUnknownFormat: the input's format could not be detected.
var ErrUnknownFormat = errors.New("unknown input format")

// ErrNothingImported: the input held no message that could be imported.
var ErrNothingImported = errors.New("no message could be imported")

// Event kinds written by the importer.
const (
	EventProblem = "import_problem" // detail: where and what
	EventImport  = "import"         // detail: JSON summary of the import
)

// maxProblemEvents bounds the problems stored as events per import (all are
// counted).
const maxProblemEvents = 1000

// Options control an import.
type Options struct {
	// Format of the input; "" detects it.
	Format Format
	// Port is the broker's TCP port in packet captures (default 1883).
	Port int
	// Name labels the input in events and problems (e.g. its file name).
	Name string
	// Time is the receive time given to messages whose input has none
	// (mosquitto_sub -v lines); default now.
	Time time.Time
	// Session describes the sessions created (Source defaults to "import").
	Session storage.SessionInfo
	// Problem, when set, is called for every bad line or packet.
	Problem func(Problem)
}

// Problem is one piece of input that could not be imported.
type Problem struct {
	Where string // "line 17", "packet 2043", "stream 10.0.0.2:51234→10.0.0.1:1883"
	Err   error
}

func (p Problem) String() string { return p.Where + ": " + p.Err.Error() }

// Result summarises an import.
type Result struct {
	Format   Format
	Messages int64
	Sessions []int64
	// Bad counts the lines or packets that could not be imported.
	Bad int64
	// Problems are the first few problems (all of them are counted in Bad).
	Problems []Problem
	// Clamped counts messages whose time had to be raised to keep the
	// capture's order (their input was not in time order).
	Clamped int64
	// Notes are remarks that are not errors (e.g. dropped MQTT 5 properties).
	Notes []string
	// PropsTruncated counts imported messages whose MQTT 5 properties may
	// be cut short (mosquitto_sub prints correlation data only up to its
	// first NUL byte); PropsTruncatedAt says where, for the first few. They
	// are imported as read, and stored as import_problem events.
	PropsTruncated   int64
	PropsTruncatedAt []string
}

// Progress is a live snapshot.
type Progress struct {
	Bytes    int64 // input bytes consumed
	Messages int64
	Bad      int64
}

// Importer imports one input into a capture. Create it with New and call
// Run once; Progress is safe to call from any goroutine meanwhile.
type Importer struct {
	c    *storage.Capture
	opts Options

	bytes, messages, bad atomic.Int64

	w        *storage.SessionWriter
	res      Result
	pending  []storage.Event // problems before the first session
	problems int
	notes    map[string]int
}

// New prepares an import into c.
func New(c *storage.Capture, opts Options) *Importer {
	if opts.Port == 0 {
		opts.Port = 1883
	}
	if opts.Time.IsZero() {
		opts.Time = time.Now()
	}
	if opts.Session.Source == "" {
		opts.Session.Source = "import"
	}
	return &Importer{c: c, opts: opts, notes: map[string]int{}}
}

// Progress returns a live snapshot.
func (im *Importer) Progress() Progress {
	return Progress{Bytes: im.bytes.Load(), Messages: im.messages.Load(), Bad: im.bad.Load()}
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Detect names the format of an input from its first bytes (up to 64 KiB).
func Detect(head []byte) (Format, error) {
	if len(head) >= 4 {
		switch binary.LittleEndian.Uint32(head) {
		case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a:
			return FormatPcap, nil
		}
	}
	if bytes.HasPrefix(head, []byte("SQLite format 3\x00")) {
		return "", fmt.Errorf("%w: an SQLite file (a capture? mqtape merge combines captures)", ErrUnknownFormat)
	}
	for len(head) > 0 {
		line, rest, found := bytes.Cut(head, []byte("\n"))
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			head = rest
			continue
		}
		if line[0] == '{' {
			keys, err := topLevelKeys(line, found)
			if err != nil {
				return "", fmt.Errorf("%w: the first line looks like JSON but is not: %v", ErrUnknownFormat, err)
			}
			switch {
			case keys["tst"]:
				return FormatMosquitto, nil
			case keys["topic"]:
				return FormatJSONL, nil
			case !found:
				return "", fmt.Errorf("%w: the first %d bytes of the first line name no \"topic\" field; name the format with --format", ErrUnknownFormat, len(line))
			}
			return "", fmt.Errorf("%w: JSON lines without a \"topic\" field (or name the format with --format)", ErrUnknownFormat)
		}
		if isVLine(line) && isTextLine(line) {
			return FormatMosquitto, nil
		}
		break
	}
	return "", fmt.Errorf("%w: not JSON lines, mosquitto_sub output, pcap or pcapng (or name the format with --format)", ErrUnknownFormat)
}

// topLevelKeys returns the keys of the JSON object that line starts. When
// complete is false line is only the start of a longer line (its first
// 64 KiB): the keys before the point where it was cut are enough, since
// mqtape export writes "topic" and mosquitto_sub "tst" before the payload.
func topLevelKeys(line []byte, complete bool) (map[string]bool, error) {
	keys := map[string]bool{}
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	depth, wantKey := 1, true
	for depth > 0 {
		tok, err := dec.Token()
		if err != nil {
			if !complete && (errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF) {
				return keys, nil // cut in the middle of a value
			}
			return nil, err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if k, ok := tok.(string); ok && depth == 1 && wantKey {
			keys[k] = true
			wantKey = false
			continue
		}
		wantKey = depth == 1
	}
	if dec.More() {
		return nil, errors.New("more than one value on the line")
	}
	return keys, nil
}

// isTextLine reports whether a line is UTF-8 text without control
// characters (a binary file's first "line" is not).
func isTextLine(line []byte) bool {
	if !utf8.Valid(line) {
		return false
	}
	for _, c := range line {
		if c < 0x20 && c != '\t' {
			return false
		}
	}
	return true
}

// Run reads the whole input and writes it into new sessions of the capture.
// A cancelled context stops it; what was written so far stays, in a session
// ended with reason "interrupted".
func (im *Importer) Run(ctx context.Context, in io.Reader) (Result, error) {
	br := bufio.NewReaderSize(countingReader{in, &im.bytes}, 256<<10)
	f := im.opts.Format
	if f == "" {
		head, err := br.Peek(64 << 10)
		if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
			return im.res, err
		}
		if len(head) == 0 {
			return im.res, fmt.Errorf("%w: the input is empty", ErrNothingImported)
		}
		if f, err = Detect(head); err != nil {
			return im.res, err
		}
	}
	im.res.Format = f
	im.w = storage.NewSessionWriter(im.c, im.opts.Session)
	var err error
	switch f {
	case FormatJSONL:
		err = im.readJSONL(ctx, br)
	case FormatMosquitto:
		err = im.readMosquitto(ctx, br)
	case FormatPcap:
		err = im.readPcap(ctx, br)
	default:
		return im.res, fmt.Errorf("%w %q: use jsonl, mosquitto or pcap", ErrUnknownFormat, f)
	}
	reason := "import"
	if ctx.Err() != nil {
		reason = "interrupted"
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if im.w.InSession() {
		detail, _ := json.Marshal(map[string]any{"input": im.opts.Name, "format": f, "messages": im.w.Messages,
			"bad": im.res.Bad, "clamped": im.w.Clamped})
		im.event(ctx, EventImport, string(detail), im.w.LastTime())
	}
	if endErr := im.w.EndSession(ctx, reason); err == nil {
		err = endErr
	}
	im.res.Messages, im.res.Sessions, im.res.Clamped = im.w.Messages, im.w.Sessions, im.w.Clamped
	for n, k := range im.notes {
		im.res.Notes = append(im.res.Notes, fmt.Sprintf("%s: %d", n, k))
	}
	slices.Sort(im.res.Notes)
	if err == nil && im.res.Messages == 0 {
		err = ErrNothingImported
		if im.res.Bad > 0 {
			err = fmt.Errorf("%w: %d bad, the first: %s", ErrNothingImported, im.res.Bad, im.res.Problems[0])
		}
	}
	return im.res, err
}

// maxProblemText bounds the text of a problem: errors quote the input
// (a topic, a line), which may be megabytes long.
const maxProblemText = 512

// shortError is an error whose text had its middle cut (see shorten).
type shortError struct {
	text string
	err  error
}

func (e shortError) Error() string { return e.text }
func (e shortError) Unwrap() error { return e.err }

// shorten cuts the middle out of an error text longer than
// maxProblemText, keeping its start (what was bad) and its end (why).
func shorten(err error) error {
	s := err.Error()
	if len(s) <= maxProblemText {
		return err
	}
	head, tail := maxProblemText/2, len(s)-maxProblemText/4
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return shortError{fmt.Sprintf("%s…(%s left out)…%s", s[:head], humanize.Count(int64(tail-head), "byte", "bytes"), s[tail:]), err}
}

// problem counts and reports a bad piece of input and stores it as an event.
func (im *Importer) problem(ctx context.Context, where string, err error) {
	p := Problem{Where: where, Err: shorten(err)}
	im.res.Bad++
	im.bad.Add(1)
	if len(im.res.Problems) < 10 {
		im.res.Problems = append(im.res.Problems, p)
	}
	if im.opts.Problem != nil {
		im.opts.Problem(p)
	}
	im.problems++
	switch {
	case im.problems < maxProblemEvents:
		im.event(ctx, EventProblem, p.String(), im.w.LastTime())
	case im.problems == maxProblemEvents:
		im.event(ctx, EventProblem, "further problems are only counted", im.w.LastTime())
	}
}

// propsTruncated counts a message imported with properties that may be cut
// short, and stores it as an event like a problem.
func (im *Importer) propsTruncated(ctx context.Context, where, what string) {
	im.res.PropsTruncated++
	if len(im.res.PropsTruncatedAt) < 10 {
		im.res.PropsTruncatedAt = append(im.res.PropsTruncatedAt, where)
	}
	im.problems++
	if im.problems < maxProblemEvents {
		im.event(ctx, EventProblem, where+": "+what+" (imported as read)", im.w.LastTime())
	}
}

// note records a remark that is not an error.
func (im *Importer) note(s string) { im.notes[s]++ }

// event stores an event in the open session, or keeps it for the next one.
func (im *Importer) event(ctx context.Context, kind, detail string, ts int64) {
	e := storage.Event{TimeNS: ts, Kind: kind, Detail: detail}
	if !im.w.InSession() {
		im.pending = append(im.pending, e)
		return
	}
	e.OffsetNS = max(ts-im.w.SessionStart(), 0)
	_ = im.w.Event(ctx, e) // a failing write surfaces at the next flush
}

// startSession begins a new output session at startNS, storing the problems
// that came before it.
func (im *Importer) startSession(ctx context.Context, startNS int64) error {
	if err := im.w.StartSession(ctx, startNS, "import", nil); err != nil {
		return err
	}
	for _, e := range im.pending {
		e.TimeNS, e.OffsetNS = startNS, 0
		if err := im.w.Event(ctx, e); err != nil {
			return err
		}
	}
	im.pending = nil
	return nil
}

// add writes one message of the open session.
func (im *Importer) add(ctx context.Context, m storage.Message) error {
	im.messages.Add(1)
	return im.w.Add(ctx, m)
}

// emitLine calls fn with the line in *buf without its line ending. A huge
// line (one big payload) is handed over: *buf is cleared first, so that no
// reference but fn's keeps it once fn has parsed it, before the payload is
// written.
//
//go:noinline
func emitLine(fn func(n int, line []byte) error, n int, buf *[]byte) error {
	line := *buf
	if cap(line) > 1<<20 {
		*buf = nil
	}
	if len(line) > 0 && line[len(line)-1] == '\n' {
		line = line[:len(line)-1]
	}
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return fn(n, line)
}

// joinLine copies a long line's start and parts into one buffer of its
// size; for a huge line, it returns the memory they held before the line
// is parsed.
func joinLine(start []byte, parts [][]byte, size int) []byte {
	line := make([]byte, 0, size)
	line = append(line, start...)
	for _, p := range parts {
		line = append(line, p...)
	}
	if clear(parts); size > hugeLine {
		debug.FreeOSMemory()
	}
	return line
}

// readLines calls fn for every line (without its line ending), numbering
// lines from 1. Lines longer than maxLine are reported and skipped.
func (im *Importer) readLines(ctx context.Context, br *bufio.Reader, fn func(n int, line []byte) error) error {
	var buf []byte
	// parts holds a long line's chunks past its first MiB: grown by
	// append, its buffer would leave a trail of copies, five times its
	// size (a 140 MB line peaked at 300 MB before it was parsed).
	var parts [][]byte
	n, size := 0, 0
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 && !tooLong {
			if size += len(chunk); parts == nil && size <= 1<<20 {
				buf = append(buf, chunk...)
			} else {
				parts = append(parts, bytes.Clone(chunk))
			}
			if size > maxLine {
				tooLong, buf, parts = true, buf[:0], nil
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(chunk) > 0 || tooLong {
			n++
			if tooLong {
				im.problem(ctx, fmt.Sprintf("line %d", n), fmt.Errorf("longer than %d bytes", maxLine))
			} else {
				if parts != nil {
					buf, parts = joinLine(buf, parts, size), nil
				}
				if ferr := emitLine(fn, n, &buf); ferr != nil {
					return ferr
				}
			}
			buf, tooLong, size = buf[:0], false, 0
			if n%1024 == 0 && ctx.Err() != nil {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// maxLine bounds one input line: MQTT's largest payload (256 MiB) as
// base64 plus room for the other fields.
const maxLine = 360 << 20
