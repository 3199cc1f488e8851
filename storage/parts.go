package storage

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A long recording is split into parts (record --split-size/--split-every):
// each part is a complete capture of its own. A part starts with the
// retained state known at its start, carried forward as from_store rows,
// and its neighbours are named by "split" events whose detail is a
// PartLink as JSON.

// EventSplit names the neighbouring part of a split recording.
const EventSplit = "split"

// EventRetention says a finished part was deleted (record --keep,
// --max-total), or could not be.
const EventRetention = "retention"

// StopSplit is the stop reason of a part's session that ended because the
// recording went on in the next part.
const StopSplit = "split"

// PartLink is the detail of a "split" event. The event at a part's start
// names the previous part and how many carried-forward retained rows
// (from_store=1) open the session: those are the first Carried messages of
// the part's first session. The event at a part's end names the next part.
type PartLink struct {
	Recording string `json:"recording"`          // the same in every part of one recording
	Part      int    `json:"part"`               // this part's number
	Previous  string `json:"previous,omitempty"` // file name (base) of the previous part
	Next      string `json:"next,omitempty"`     // file name (base) of the next part
	Carried   int    `json:"carried"`            // carried-forward retained rows at the part's start
}

// RetainedState follows the broker's retained store as a recording sees it:
// per topic the last message sent from the retained store or recorded with
// retain=1, unless an empty one cleared it. It is the one definition of
// "the retained state at a point" (cut's carried state, a part's start).
type RetainedState struct {
	byTopic map[string]Message
}

// Observe updates the state with m (messages in recording order).
func (r *RetainedState) Observe(m *Message) {
	if !m.Retain && !m.FromStore {
		return
	}
	if r.byTopic == nil {
		r.byTopic = make(map[string]Message)
	}
	if len(m.Payload) == 0 && !m.PayloadOmitted { // an empty retained message clears the topic
		delete(r.byTopic, m.Topic)
		return
	}
	r.byTopic[m.Topic] = *m
}

// Messages returns the state in the order the messages were recorded.
func (r *RetainedState) Messages() []Message {
	out := make([]Message, 0, len(r.byTopic))
	for _, m := range r.byTopic {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Message) int {
		return cmp.Or(cmp.Compare(a.TimeNS, b.TimeNS), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Topic, b.Topic))
	})
	return out
}

// Len is the number of topics with a retained message.
func (r *RetainedState) Len() int { return len(r.byTopic) }

// PartStart describes how a new part begins.
type PartStart struct {
	Recording string    // id shared by the recording's parts
	Number    int       // this part's number (from 1)
	Previous  string    // path of the previous part ("" for the first)
	Retained  []Message // the retained state carried forward (RetainedState.Messages)
}

// CreatePart creates the capture file path (which must not exist) and
// begins its session (info.StartedNS is its start) with the carried
// retained state and the "split" event naming the previous part
// (PreparePart, then StartPart at the same time). A trigger snapshot or a
// rotation opens its next part with it. On an error no file is left
// behind.
func CreatePart(ctx context.Context, path string, info SessionInfo, ps PartStart) (*Capture, *Session, error) {
	c, s, err := PreparePart(ctx, path, info)
	if err != nil {
		return nil, nil, err
	}
	if err := StartPart(ctx, s, ps, info.StartedNS); err != nil {
		c.Close()
		RemoveCapture(path)
		return nil, nil, err
	}
	return c, s, nil
}

// InheritSettings gives part what from, an earlier part of the same
// recording, has: payload compression (SetCompression; a part trains its
// own dictionary) and the decoders it carries, so every part reads on its
// own as the first one does.
func InheritSettings(ctx context.Context, from, part *Capture) error {
	part.SetCompression(from.Compressing())
	d, err := from.Decoders(ctx)
	if err != nil || d.IsEmpty() {
		return err
	}
	return part.SetDecoders(ctx, d)
}

// PreparePart creates the capture file path (which must not exist) and
// begins its empty session (info.StartedNS is its start): a rotation
// prepares the next part before the seam, so that the seam itself costs
// no file creation. StartPart must follow before any message is written.
func PreparePart(ctx context.Context, path string, info SessionInfo) (*Capture, *Session, error) {
	if err := createEmpty(path); err != nil {
		return nil, nil, err
	}
	c, err := OpenWrite(path)
	if err != nil {
		RemoveCapture(path)
		return nil, nil, err
	}
	s, err := c.BeginSession(ctx, info)
	if err != nil {
		c.Close()
		RemoveCapture(path)
		return nil, nil, err
	}
	return c, s, nil
}

// StartPart writes a prepared part's first rows: the carried retained
// state (from_store=1, retain=1, stamped atNS, the seam) and the "split"
// event naming the previous part.
func StartPart(ctx context.Context, s *Session, ps PartStart, atNS int64) error {
	off := max(0, atNS-s.startedNS)
	carried := make([]Message, len(ps.Retained))
	for i, m := range ps.Retained {
		m.TimeNS, m.OffsetNS, m.FromStore, m.Retain = atNS, off, true, true
		carried[i] = m
	}
	link := PartLink{Recording: ps.Recording, Part: ps.Number, Carried: len(carried)}
	if ps.Previous != "" {
		link.Previous = filepath.Base(ps.Previous)
	}
	detail, err := json.Marshal(link)
	if err != nil {
		return err
	}
	ev := []Event{{TimeNS: atNS, OffsetNS: off, Kind: EventSplit, Detail: string(detail)}}
	return s.Write(ctx, carried, ev, atNS)
}

// createEmpty creates an empty capture (schema only) at path, which must
// not exist: made under a temporary name and linked into place once
// complete, so a process killed meanwhile leaves no half-made file at path
// (a leftover PATH-creating is removed by the next attempt).
func createEmpty(path string) error {
	tmp := path + "-creating"
	if err := RemoveCapture(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create part %q: %w", path, err)
	}
	c, err := OpenWrite(tmp)
	if err == nil {
		err = c.Close()
	}
	if err == nil {
		err = os.Link(tmp, path) // fails if path exists, unlike rename
	}
	if rerr := RemoveCapture(tmp); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("create part %q: %w", path, err)
	}
	return nil
}

// EndPart ends a part's session (stop reason "split") after a "split"
// event naming the next part, and closes the capture.
func EndPart(ctx context.Context, c *Capture, s *Session, link PartLink, endNS, dropped int64) error {
	link.Next = filepath.Base(link.Next)
	detail, err := json.Marshal(link)
	if err != nil {
		return err
	}
	err = s.Write(ctx, nil, []Event{{TimeNS: endNS, OffsetNS: max(0, endNS-s.startedNS), Kind: EventSplit, Detail: string(detail)}}, endNS)
	if err == nil {
		err = s.End(ctx, endNS, StopSplit, dropped)
	}
	return errors.Join(err, c.Close())
}

// Size is the capture's size in bytes as SQLite counts it (pages in use
// times the page size, the write-ahead log's pages included): what the
// file holds once checkpointed.
func (c *Capture) Size(ctx context.Context) (int64, error) {
	if c.parts != nil {
		return c.parts.size(ctx)
	}
	db := c.w
	if db == nil {
		db = c.r
	}
	var pages, size int64
	if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return 0, c.wrap("read size", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA page_size").Scan(&size); err != nil {
		return 0, c.wrap("read size", err)
	}
	return pages * size, nil
}

// RemoveCapture deletes a capture file with its -wal and -shm (a finished
// part that retention drops). Spool files are left alone.
func RemoveCapture(path string) error {
	err := os.Remove(path)
	for _, sfx := range []string{"-wal", "-shm"} {
		if e := os.Remove(path + sfx); e != nil && !errors.Is(e, fs.ErrNotExist) {
			err = errors.Join(err, e)
		}
	}
	return err
}

// PartName expands a part name pattern: {n} is the part number (4 digits),
// %Y %m %d %H %M %S the part's start in UTC, %% a percent sign. A pattern
// with none of them gets "-NNNN" before its extension (run.db →
// run-0001.db).
func PartName(pattern string, n int, start time.Time) string {
	if !PartPatternHasFields(pattern) {
		ext := filepath.Ext(pattern)
		return fmt.Sprintf("%s-%04d%s", strings.TrimSuffix(pattern, ext), n, ext)
	}
	start = start.UTC()
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "{n}"):
			fmt.Fprintf(&b, "%04d", n)
			i += 2
		case pattern[i] == '%' && i+1 < len(pattern):
			if v, ok := strftimeField(pattern[i+1], start); ok {
				b.WriteString(v)
				i++
				continue
			}
			b.WriteByte('%')
		default:
			b.WriteByte(pattern[i])
		}
	}
	return b.String()
}

func strftimeField(c byte, t time.Time) (string, bool) {
	pad := func(v, w int) string { return fmt.Sprintf("%0*d", w, v) }
	switch c {
	case 'Y':
		return pad(t.Year(), 4), true
	case 'm':
		return pad(int(t.Month()), 2), true
	case 'd':
		return pad(t.Day(), 2), true
	case 'H':
		return pad(t.Hour(), 2), true
	case 'M':
		return pad(t.Minute(), 2), true
	case 'S':
		return pad(t.Second(), 2), true
	case '%':
		return "%", true
	}
	return "", false
}

// PartPatternHasFields reports whether pattern holds {n} or a strftime
// field.
func PartPatternHasFields(pattern string) bool {
	if strings.Contains(pattern, "{n}") {
		return true
	}
	for _, f := range []string{"%Y", "%m", "%d", "%H", "%M", "%S"} {
		if strings.Contains(pattern, f) {
			return true
		}
	}
	return false
}

// NextPartName returns the name of part n, or of the first part after it
// whose file does not exist yet, and that part's number: a pattern with
// {n} (or none of the fields) counts on past parts of an earlier
// recording; a pattern of time fields only that names an existing file
// gets "-N" before its extension.
func NextPartName(pattern string, n int, start time.Time) (string, int) {
	free := func(name string) bool {
		_, err := os.Lstat(name)
		return errors.Is(err, fs.ErrNotExist)
	}
	numbered := strings.Contains(pattern, "{n}") || !PartPatternHasFields(pattern)
	for k := n; ; k++ {
		name := PartName(pattern, k, start)
		if numbered {
			if free(name) {
				return name, k
			}
			continue
		}
		if k > n {
			ext := filepath.Ext(name)
			name = strings.TrimSuffix(name, ext) + "-" + strconv.Itoa(k-n+1) + ext
		}
		if free(name) {
			return name, n
		}
	}
}

// StopSnapshot is the stop reason of a trigger snapshot's session that
// ended with its post-window.
const StopSnapshot = "snapshot"

// EventSnapshot marks what made a trigger snapshot (record --ring): its
// detail is a SnapshotEvent as JSON. A snapshot part has one for the
// trigger that opened it and one for each trigger that extended it.
const EventSnapshot = "snapshot"

// SnapshotEvent is the detail of a "snapshot" event.
type SnapshotEvent struct {
	Reason string `json:"reason"`          // "trigger" (a message matched --trigger) or "manual" (SIGUSR1)
	Seq    int64  `json:"seq,omitempty"`   // the triggering message's seq in this part (reason "trigger")
	Topic  string `json:"topic,omitempty"` // its topic
	// PostUntilNS is when the post-window ends as of this trigger (Unix ns).
	PostUntilNS int64 `json:"post_until_ns"`
	Evicted     int64 `json:"evicted"` // messages the ring had dropped (age or --ring-size) before this snapshot, since recording started
}
