package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ExpandInputs turns the capture arguments of a reading verb into files:
// a directory stands for the captures in it (*.db, by name), a name with
// glob characters (* ? [) for the files it matches (by name); anything else
// is one file. A directory or glob that names no file is an error. A file
// named twice (again, through a directory or glob, or a hard link to it)
// is read once, where it is first named.
func ExpandInputs(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		var files []string
		fi, err := os.Stat(a)
		isDir := err == nil && fi.IsDir()
		if isDir {
			m, err := filepath.Glob(filepath.Join(globEscape(a), "*.db"))
			if err != nil {
				return nil, fmt.Errorf("list captures in %q: %w", a, err)
			}
			files = m
		} else if strings.ContainsAny(a, "*?[") && errors.Is(err, fs.ErrNotExist) {
			m, err := filepath.Glob(a)
			if err != nil {
				return nil, fmt.Errorf("capture pattern %q: %w", a, err)
			}
			files = m
		} else {
			out = append(out, a)
			continue
		}
		files = slices.DeleteFunc(files, func(f string) bool {
			fi, err := os.Stat(f)
			return err != nil || !fi.Mode().IsRegular() || strings.HasSuffix(f, "-creating")
		})
		if len(files) == 0 {
			what := "no *.db files in the directory"
			if !isDir {
				what = "the pattern matches no file"
			}
			return nil, fmt.Errorf("open captures %q: %w: %s", a, ErrNotFound, what)
		}
		slices.Sort(files)
		out = append(out, files...)
	}
	return onceEach(out), nil
}

// onceEach leaves out of files those naming a file named before (os.SameFile).
func onceEach(files []string) []string {
	seen := map[int64][]os.FileInfo{} // by size: thousands of parts compare few
	return slices.DeleteFunc(files, func(f string) bool {
		fi, err := os.Stat(f)
		if err != nil {
			return false // Open says what is wrong with it
		}
		if slices.ContainsFunc(seen[fi.Size()], func(s os.FileInfo) bool { return os.SameFile(s, fi) }) {
			return true
		}
		seen[fi.Size()] = append(seen[fi.Size()], fi)
		return false
	})
}

func globEscape(dir string) string {
	r := strings.NewReplacer("*", `\*`, "?", `\?`, "[", `\[`, `\`, `\\`)
	return r.Replace(dir)
}

// OpenSet opens captures read as one: one file is simply opened (Open);
// several — parts of one split recording, or of different recordings —
// are read in time order as Merge writes them (the retained rows carried
// into a part are left out when its previous part is among them, so every
// message counts once). The files are only read. Path returns the inputs'
// names.
//
// With opts.InPlace, the parts of one split recording given together —
// each file one session that a "split" event starts, every part naming the
// one before it as its previous, their messages in time order across the
// seams — are read where they are (partset.go): opening costs a few
// queries per part, whatever their size, and a read touches only the
// parts its seq range reaches. That is what record --split-* and --ring
// write and what users point a verb at (inspect parts/). The capture shows
// what the merge would: one session, seqs and topic ids counted across
// the parts. Differences: a retained-store message that repeats one
// read before it (a reconnect's) is kept, as the unsplit recording keeps
// it, where the merge keeps it once; a receive time going back inside a
// part is read as recorded, where the merge raises it. Reads that copy from a capture (Cut,
// Merge, SaveCopy) refuse such a capture. Anything else — parts of
// different recordings, out of order, with a part missing between two, or
// overlapping in time — is merged into a temporary capture under
// os.TempDir ($TMPDIR) that Close deletes: correct, only slower (about
// 8 µs a message before the first read).
func OpenSet(ctx context.Context, files []string, opts MergeOptions) (*Capture, error) {
	if len(files) == 1 {
		return Open(files[0])
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no capture given")
	}
	var ins []*Capture
	defer func() {
		for _, c := range ins {
			c.Close()
		}
	}()
	if opts.InPlace {
		if c, err := openParts(ctx, files, opts); c != nil || err != nil {
			return c, err
		}
	}
	for _, f := range files {
		c, err := Open(f)
		if err != nil {
			return nil, err
		}
		ins = append(ins, c)
	}
	dir, err := os.MkdirTemp("", "mqtape-set-")
	if err != nil {
		return nil, fmt.Errorf("read %d captures as one: %w", len(files), err)
	}
	tmp := filepath.Join(dir, "set.db")
	c, err := mergeInto(ctx, ins, tmp, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.label = setLabel(files)
	c.files = slices.Clone(files)
	c.cleanup = func() { os.RemoveAll(dir) }
	return c, nil
}

func mergeInto(ctx context.Context, ins []*Capture, tmp string, opts MergeOptions) (*Capture, error) {
	out, err := OpenWrite(tmp)
	if err != nil {
		return nil, err
	}
	_, err = Merge(ctx, ins, out, opts)
	if err == nil {
		err = describeSet(ctx, ins, out)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return Open(tmp)
}

// describeSet gives the merged session of a set what its inputs say
// rather than "merge": their source when they share one (the parts of one
// recording are all "subscriber"), the stop reason of the input session
// that ended last (the recording's own end, not a seam's "split"), and a
// clean session when every input was one.
func describeSet(ctx context.Context, ins []*Capture, out *Capture) error {
	var all []SessionInfo
	for _, c := range ins {
		sessions, err := c.Sessions(ctx)
		if err != nil {
			return err
		}
		all = append(all, sessions...)
	}
	source, stop, clean := setDescription(all)
	_, err := out.w.ExecContext(ctx, "UPDATE sessions SET source = coalesce(nullif(?, ''), source), "+
		"stop_reason = coalesce(nullif(?, ''), stop_reason), clean_session = ?", source, stop, clean)
	return out.wrap("describe the captures read as one", err)
}

// setLabel names a set of captures: the first and last file and how many.
func setLabel(files []string) string {
	return fmt.Sprintf("%s … %s (%d files)", filepath.Base(files[0]), filepath.Base(files[len(files)-1]), len(files))
}

// partStart is the start link of a part and the time of its "split"
// event: the seam, when its carried retained rows are stamped.
type partStart struct {
	PartLink
	at int64
}

// partStarts returns the "split" links of c's sessions (the start link of
// each part, by session id).
func (c *Capture) partStarts(ctx context.Context) (map[int64]partStart, error) {
	events, err := c.Events(ctx, 0)
	if err != nil {
		return nil, err
	}
	return partStartsOf(events), nil
}

// partStartsOf returns the start links among a capture's events, by
// session id.
func partStartsOf(events []Event) map[int64]partStart {
	out := map[int64]partStart{}
	for _, e := range events {
		var l PartLink
		if e.Kind != EventSplit || json.Unmarshal([]byte(e.Detail), &l) != nil || l.Next != "" {
			continue
		}
		if _, seen := out[e.Session]; !seen {
			out[e.Session] = partStart{l, e.TimeNS}
		}
	}
	return out
}

// carriedThrough is the seq through which the carried retained rows of
// a part's session go, given the session's first seq and its start link:
// first-1 (none) unless the part bears the link out — l.Carried rows from
// first on, each from the retained store, all stamped at one time (the
// seam). A forged or damaged count (negative, larger than the part, over
// rows that were not carried) carries nothing: no message of the part is
// left out for it.
func (c *Capture) carriedThrough(ctx context.Context, session, first int64, l PartLink) (int64, error) {
	through := first + int64(l.Carried) - 1
	if l.Carried <= 0 || through < first {
		return first - 1, nil
	}
	var n, times int64
	err := c.r.QueryRowContext(ctx, "SELECT count(*), count(DISTINCT ts_ns) FROM messages "+
		"WHERE seq BETWEEN ? AND ? AND session = ? AND from_store = 1", first, through, session).Scan(&n, &times)
	if err != nil {
		return 0, c.wrap("read messages", err)
	}
	if n != int64(l.Carried) || times != 1 {
		return first - 1, nil
	}
	return through, nil
}

// carriedSkips returns, per input and session, the seq through which a
// part's carried retained rows go when its previous part (same recording)
// is an input too: those rows repeat what the previous part holds.
func carriedSkips(ctx context.Context, ins []*Capture) ([]map[int64]int64, error) {
	type key struct{ rec, name string }
	present := map[key]bool{}
	starts := make([]map[int64]partStart, len(ins))
	for i, c := range ins {
		s, err := c.partStarts(ctx)
		if err != nil {
			return nil, err
		}
		starts[i] = s
		for _, l := range s {
			present[key{l.Recording, filepath.Base(c.Path())}] = true
		}
	}
	skips := make([]map[int64]int64, len(ins))
	for i, c := range ins {
		skips[i] = map[int64]int64{}
		for sess, l := range starts[i] {
			if l.Previous == "" || l.Carried == 0 || !present[key{l.Recording, l.Previous}] {
				continue
			}
			first, err := c.firstSeq(ctx, sess)
			if err != nil {
				return nil, err
			}
			through, err := c.carriedThrough(ctx, sess, first, l.PartLink)
			if err != nil {
				return nil, err
			}
			if through >= first {
				skips[i][sess] = through
			}
		}
	}
	return skips, nil
}

// firstSeq is the seq of a session's first message (0 when it has none).
func (c *Capture) firstSeq(ctx context.Context, session int64) (int64, error) {
	var first *int64
	err := c.r.QueryRowContext(ctx, "SELECT first_seq FROM sessions WHERE id=?", session).Scan(&first)
	if err != nil || first == nil {
		return 0, c.wrap("read session", err)
	}
	return *first, nil
}
