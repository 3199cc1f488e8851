package storage

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/mqtape/mqtape/mqtt"
)

// The spool: append-only files beside a capture that hold messages the
// recorder has received but not yet committed. A recorder acknowledges a
// QoS 1/2 message to the broker as soon as it is in the spool (written to
// the kernel with one write(2) per group of messages), not when SQLite
// commits it: acknowledging only after a commit made a broker with a small
// in-flight window (mosquitto's 20) wait for every commit, and a stalled
// commit then filled its queue until it dropped messages. A killed process
// loses nothing that write(2) returned for; the next recording into the
// same capture (RecoverSpool) adds what the spool holds beyond the last
// commit. docs/capture-format.md documents the file layout.
//
// Files are named CAPTURE-spool-SESSION-NNNNNN (the first free number). Each
// starts with a 24-byte header: the magic "MQTSPL01", the session id and the
// session's started_ns (int64 big-endian: a spool left beside a capture that
// was since replaced is never taken for a session of the new one); then
// records: uint32 body length, uint32 CRC-32C of the body, body. A body is
// ts_ns, offset_ns (int64), flags (qos | retain<<2 | from_store<<3 |
// dup<<4), packet id (uint16), then topic, client id and the MQTT 5
// properties as JSON, each as a uvarint length and bytes, and the payload
// (the rest). All integers are big-endian.

const (
	spoolMagic  = "MQTSPL01"
	spoolHeader = 24
	// spoolSegmentBytes is when a spool file is closed and the next one
	// begun; a closed file is deleted once everything in it is committed.
	spoolSegmentBytes = 8 << 20
	// spoolMaxRecord bounds a record's body when reading (an MQTT packet
	// is at most 256 MiB).
	spoolMaxRecord = 256<<20 + 1<<20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Spool appends one session's received messages to its spool files. Append
// and Committed may be called from different goroutines.
type Spool struct {
	mu      sync.Mutex
	prefix  string // CAPTURE-spool-SESSION-
	session int64
	started int64 // the session's started_ns
	f       *os.File
	seg     int   // number of the open file
	size    int64 // bytes in the open file
	lastTS  int64 // newest message in the open file
	full    []spoolFile
	buf     []byte
	err     error // sticky: after a failed write nothing more is appended
}

// spoolFile is a full spool file, kept open (and so locked) until it is
// deleted.
type spoolFile struct {
	f      *os.File // nil after Release
	path   string
	lastTS int64
}

func spoolPrefix(capture string, session int64) string {
	return capture + "-spool-" + strconv.FormatInt(session, 10) + "-"
}

// OpenSpool starts the spool of session s (its files must not exist yet).
func (c *Capture) OpenSpool(s *Session) (*Spool, error) {
	if c.parts != nil {
		return nil, ErrReadOnly
	}
	sp := &Spool{prefix: spoolPrefix(c.path, s.id), session: s.id, started: s.startedNS}
	if err := sp.next(); err != nil {
		return nil, err
	}
	return sp, nil
}

// next closes the open file (keeping it until Committed passes it) and
// starts the next one. Called with mu held (or before sp is shared).
func (sp *Spool) next() error {
	if sp.f != nil {
		sp.full = append(sp.full, spoolFile{sp.f, sp.f.Name(), sp.lastTS})
		sp.f = nil
	}
	var f *os.File
	for {
		sp.seg++
		var err error
		f, err = os.OpenFile(fmt.Sprintf("%s%06d", sp.prefix, sp.seg), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || sp.seg > 1e6 {
			return fmt.Errorf("spool: %w", err)
		}
		// Left by another capture that had this path: never reused.
	}
	// A lock tells a recovery that this file is alive (the kernel drops it
	// when the process dies, however it dies).
	if err := lockFile(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("spool: lock %s: %w", f.Name(), err)
	}
	hdr := binary.BigEndian.AppendUint64([]byte(spoolMagic), uint64(sp.session))
	hdr = binary.BigEndian.AppendUint64(hdr, uint64(sp.started))
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("spool: %w", err)
	}
	sp.f, sp.size, sp.lastTS = f, int64(len(hdr)), 0
	return nil
}

// Append writes msgs to the spool in one write(2). When it returns nil they
// survive the process being killed (not a power loss: the spool is not
// fsynced, like the capture's own commits, which use synchronous=NORMAL).
func (sp *Spool) Append(msgs []Message) error {
	if len(msgs) == 0 {
		return nil
	}
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.err != nil {
		return sp.err
	}
	b := sp.buf[:0]
	for i := range msgs {
		var err error
		if b, err = appendSpoolRecord(b, &msgs[i]); err != nil {
			sp.err = fmt.Errorf("spool: %w", err)
			return sp.err
		}
	}
	sp.buf = b
	if _, err := sp.f.Write(b); err != nil {
		sp.err = fmt.Errorf("spool: %w", err)
		return sp.err
	}
	sp.size += int64(len(b))
	sp.lastTS = msgs[len(msgs)-1].TimeNS
	if len(b) > 1<<20 {
		sp.buf = nil // do not keep a burst's buffer
	}
	if sp.size >= spoolSegmentBytes {
		// msgs are written: a failure to start the next file is the next
		// Append's error.
		if err := sp.next(); err != nil {
			sp.err = err
		}
	}
	return nil
}

// Committed tells the spool that every message received up to tsNS is in
// the capture: spool files holding nothing newer are deleted.
func (sp *Spool) Committed(tsNS int64) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	k := 0
	for k < len(sp.full) && sp.full[k].lastTS <= tsNS {
		sp.full[k].remove()
		k++
	}
	sp.full = sp.full[k:]
}

func (f spoolFile) remove() error {
	err := os.Remove(f.path)
	if f.f != nil {
		f.f.Close()
	}
	return err
}

// Close deletes the spool: call it once everything appended is committed.
func (sp *Spool) Close() error {
	sp.Release()
	sp.mu.Lock()
	defer sp.mu.Unlock()
	var errs []error
	for _, f := range sp.full {
		errs = append(errs, f.remove())
	}
	sp.full = nil
	return errors.Join(errs...)
}

// Release closes the spool's files and keeps them, for a later
// RecoverSpool (the writer failed: they hold what was not committed).
func (sp *Spool) Release() {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for i := range sp.full {
		if sp.full[i].f != nil {
			sp.full[i].f.Close()
			sp.full[i].f = nil
		}
	}
	if sp.f != nil {
		sp.f.Close()
		sp.full = append(sp.full, spoolFile{path: sp.f.Name(), lastTS: sp.lastTS})
		sp.f = nil
	}
	if sp.err == nil {
		sp.err = errors.New("spool: closed")
	}
}

func appendSpoolRecord(b []byte, m *Message) ([]byte, error) {
	var props []byte
	if m.Props != nil {
		var err error
		if props, err = json.Marshal(m.Props); err != nil {
			return b, err
		}
	}
	at := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0) // length and CRC, set below
	b = binary.BigEndian.AppendUint64(b, uint64(m.TimeNS))
	b = binary.BigEndian.AppendUint64(b, uint64(m.OffsetNS))
	flags := m.QoS & 3
	for i, f := range []bool{m.Retain, m.FromStore, m.Dup} {
		if f {
			flags |= 1 << (2 + i)
		}
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, m.PacketID)
	for _, s := range [][]byte{[]byte(m.Topic), []byte(m.ClientID), props} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, m.Payload...)
	body := b[at+8:]
	if len(body) > spoolMaxRecord {
		return b[:at], fmt.Errorf("message of %d bytes is too large", len(body))
	}
	binary.BigEndian.PutUint32(b[at:], uint32(len(body)))
	binary.BigEndian.PutUint32(b[at+4:], crc32.Checksum(body, castagnoli))
	return b, nil
}

func parseSpoolRecord(body []byte) (Message, error) {
	var m Message
	if len(body) < 19 {
		return m, errors.New("short record")
	}
	m.TimeNS = int64(binary.BigEndian.Uint64(body))
	m.OffsetNS = int64(binary.BigEndian.Uint64(body[8:]))
	flags := body[16]
	m.QoS, m.Retain, m.FromStore, m.Dup = flags&3, flags&4 != 0, flags&8 != 0, flags&16 != 0
	m.PacketID = binary.BigEndian.Uint16(body[17:])
	rest := body[19:]
	var fields [3][]byte
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return m, errors.New("bad field length")
		}
		fields[i], rest = rest[k:k+int(n)], rest[k+int(n):]
	}
	m.Topic, m.ClientID = string(fields[0]), string(fields[1])
	if len(fields[2]) > 0 {
		m.Props = new(mqtt.Properties)
		if err := json.Unmarshal(fields[2], m.Props); err != nil {
			return m, fmt.Errorf("properties: %w", err)
		}
	}
	m.Payload = bytes.Clone(rest)
	if m.QoS > 2 || m.Topic == "" {
		return m, errors.New("bad record")
	}
	return m, nil
}

// SpoolReport says what RecoverSpool found.
type SpoolReport struct {
	Files     int   // spool files read (and deleted)
	Recovered int64 // messages added to their sessions
	Committed int64 // messages already in the capture
	// Lost describes the tail of a spool file that could not be read (a
	// record cut short or damaged: a power loss can leave one); "" when
	// none.
	Lost []string
	// Busy are spool files another running recorder still writes; left
	// alone.
	Busy []string
	// Orphans are spool files of sessions the capture does not have (or
	// that are not spool files at all); left alone.
	Orphans []string
}

// RecoverSpool adds to the capture what spool files beside it hold beyond
// their sessions' last commit (a recorder that was killed), records a
// spool_recovered event in each such session, and deletes the files. Files a
// live recorder holds are left alone. It is idempotent: an interrupted
// recovery is finished by the next one.
func (c *Capture) RecoverSpool(ctx context.Context) (rep SpoolReport, err error) {
	if c.w == nil {
		return rep, ErrReadOnly
	}
	files, err := SpoolFiles(c.path)
	if err != nil {
		return rep, err
	}
	defer func() { c.spoolDone = err == nil && len(rep.Busy) == 0 }()
	bySession := map[spoolOwner][]string{}
	var sessions []spoolOwner
	for _, f := range files {
		o, err := spoolOwnerOf(f)
		if err != nil {
			if removeStub(f) {
				rep.Files++
				continue
			}
			rep.Orphans = append(rep.Orphans, f)
			continue
		}
		if _, ok := bySession[o]; !ok {
			sessions = append(sessions, o)
		}
		bySession[o] = append(bySession[o], f)
	}
	sort.Slice(sessions, func(i, j int) bool { return sessions[i].id < sessions[j].id })
	for _, o := range sessions {
		if err := c.recoverSpoolSession(ctx, o, bySession[o], &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// SpoolFiles lists the spool files beside the capture at path, oldest first.
func SpoolFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list spool files of %q: %w", path, err)
	}
	var files []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), base+"-spool-") && e.Type().IsRegular() {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	// Names sort by session, then file number, only with equal digit
	// counts: sort by the parsed numbers.
	key := func(f string) (int64, int64) {
		rest := strings.TrimPrefix(filepath.Base(f), base+"-spool-")
		s, n, _ := strings.Cut(rest, "-")
		a, _ := strconv.ParseInt(s, 10, 64)
		b, _ := strconv.ParseInt(n, 10, 64)
		return a, b
	}
	sort.Slice(files, func(i, j int) bool {
		si, ni := key(files[i])
		sj, nj := key(files[j])
		return si < sj || si == sj && ni < nj
	})
	return files, nil
}

// removeStub deletes a spool file shorter than its header that no recorder
// holds: a recorder killed while it created the file.
func removeStub(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() >= spoolHeader || !tryLockFile(f) {
		return false
	}
	if b := make([]byte, fi.Size()); fi.Size() > 0 {
		if _, err := io.ReadFull(f, b); err != nil || !strings.HasPrefix(spoolMagic, string(b[:min(len(b), len(spoolMagic))])) {
			return false // not the start of a spool file: not ours to delete
		}
	}
	return os.Remove(path) == nil
}

// spoolOwner is the session a spool file belongs to.
type spoolOwner struct{ id, started int64 }

func spoolOwnerOf(path string) (spoolOwner, error) {
	f, err := os.Open(path)
	if err != nil {
		return spoolOwner{}, err
	}
	defer f.Close()
	hdr := make([]byte, spoolHeader)
	if _, err := io.ReadFull(f, hdr); err != nil || string(hdr[:8]) != spoolMagic {
		return spoolOwner{}, errors.New("not a spool file")
	}
	return spoolOwner{int64(binary.BigEndian.Uint64(hdr[8:])), int64(binary.BigEndian.Uint64(hdr[16:]))}, nil
}

func (c *Capture) recoverSpoolSession(ctx context.Context, o spoolOwner, files []string, rep *SpoolReport) error {
	id := o.id
	var lastSeq *int64
	var started int64
	err := c.w.QueryRowContext(ctx, "SELECT last_seq, started_ns FROM sessions WHERE id=?", id).Scan(&lastSeq, &started)
	if errors.Is(err, sql.ErrNoRows) || err == nil && started != o.started {
		rep.Orphans = append(rep.Orphans, files...)
		return nil
	} else if err != nil {
		return c.wrap("recover spool", err)
	}
	committedTS := int64(-1 << 63)
	if lastSeq != nil {
		if err := c.w.QueryRowContext(ctx, "SELECT ts_ns FROM messages WHERE seq=?", *lastSeq).Scan(&committedTS); err != nil {
			return c.wrap("recover spool", err)
		}
	}
	s := &Session{c: c, id: id}
	if s.topics, s.clients, err = c.names(ctx); err != nil {
		return c.wrap("recover spool", err)
	}
	defer s.closeStmts()
	var done []string
	var recovered int64
	var batch []Message
	var batchBytes int
	var last Message
	flush := func(final bool) error {
		var events []Event
		if final && recovered > 0 {
			events = []Event{{TimeNS: last.TimeNS, OffsetNS: last.OffsetNS, Kind: EventSpoolRecovered,
				Detail: fmt.Sprintf("%d messages received and acknowledged before the recorder stopped without closing the session were recovered from its spool", recovered)}}
		}
		if len(batch) == 0 && len(events) == 0 {
			return nil
		}
		// The session's last flush time becomes the newest recovered
		// message's receipt, not the time of this recovery.
		if err := s.Write(ctx, batch, events, last.TimeNS); err != nil {
			return err
		}
		batch = batch[:0]
		return nil
	}
	for _, path := range files {
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("recover spool: %w", err)
		}
		if !tryLockFile(f) {
			f.Close()
			rep.Busy = append(rep.Busy, path)
			continue
		}
		lost, err := readSpool(f, func(m Message) error {
			if m.TimeNS <= committedTS {
				rep.Committed++
				return nil
			}
			committedTS, last = m.TimeNS, m
			batch = append(batch, m)
			batchBytes += len(m.Payload)
			recovered++
			if len(batch) >= 4096 || batchBytes >= 16<<20 {
				batchBytes = 0
				return flush(false)
			}
			return nil
		})
		f.Close()
		if err != nil {
			return fmt.Errorf("recover spool %s: %w", path, err)
		}
		if lost != "" {
			rep.Lost = append(rep.Lost, fmt.Sprintf("%s: %s", filepath.Base(path), lost))
		}
		done = append(done, path)
	}
	if err := flush(true); err != nil {
		return fmt.Errorf("recover spool: %w", err)
	}
	rep.Recovered += recovered
	for _, path := range done {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("recover spool: %w", err)
		}
		rep.Files++
	}
	return nil
}

// readSpool calls fn for each record of an open spool file. A record cut
// short or failing its CRC ends the file: lost says where and how much.
func readSpool(f *os.File, fn func(Message) error) (lost string, err error) {
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	hdr := make([]byte, spoolHeader)
	if _, err := io.ReadFull(br, hdr); err != nil || string(hdr[:8]) != spoolMagic {
		return "not a spool file", nil
	}
	pos := int64(spoolHeader)
	head := make([]byte, 8)
	var body []byte
	for n := 0; ; n++ {
		if _, err := io.ReadFull(br, head); err == io.EOF {
			return "", nil
		} else if err != nil {
			return fmt.Sprintf("record %d at byte %d cut short (%d bytes not read)", n+1, pos, fi.Size()-pos), nil
		}
		size := binary.BigEndian.Uint32(head)
		if size > spoolMaxRecord || int64(size) > fi.Size()-pos-8 {
			return fmt.Sprintf("record %d at byte %d has a bad length (%d bytes not read)", n+1, pos, fi.Size()-pos), nil
		}
		if cap(body) < int(size) {
			body = make([]byte, size)
		}
		body = body[:size]
		if _, err := io.ReadFull(br, body); err != nil {
			return fmt.Sprintf("record %d at byte %d cut short (%d bytes not read)", n+1, pos, fi.Size()-pos), nil
		}
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(head[4:]) {
			return fmt.Sprintf("record %d at byte %d is damaged (%d bytes not read)", n+1, pos, fi.Size()-pos), nil
		}
		m, err := parseSpoolRecord(body)
		if err != nil {
			return fmt.Sprintf("record %d at byte %d is damaged: %v (%d bytes not read)", n+1, pos, err, fi.Size()-pos), nil
		}
		if err := fn(m); err != nil {
			return "", err
		}
		pos += 8 + int64(size)
	}
}
