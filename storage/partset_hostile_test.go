package storage

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// splitLinkWhere is the SQL selecting a part's start link (its first
// "split" event, the one without a next part).
const splitLinkWhere = "kind = 'split' AND json_extract(detail, '$.next') IS NULL"

// sameOrRefused opens files merged and in place and checks that the in-place
// reader reads what the merge reads, or that both refuse the files with
// the same error; it returns the in-place capture (nil when refused).
func sameOrRefused(t *testing.T, files []string, ordered bool) *Capture {
	t.Helper()
	ctx := context.Background()
	opts := MergeOptions{Version: "9.9", Host: "box"}
	merged, errM := OpenSet(ctx, files, opts)
	opts.InPlace = true
	in, errP := OpenSet(ctx, files, opts)
	if errM != nil || errP != nil {
		if errM == nil || errP == nil || errM.Error() != errP.Error() {
			t.Fatalf("merged: %v; in place: %v", errM, errP)
		}
		return nil
	}
	t.Cleanup(func() { merged.Close(); in.Close() })
	if in.parts == nil {
		want := collect(t, merged.Messages(ctx, Query{}))
		same(t, "Messages (merged both ways)", collect(t, in.Messages(ctx, Query{})), want)
		return in
	}
	if !ordered {
		// A time going back inside a part: read in place, a message keeps
		// the time it was recorded at (as the part read alone shows it),
		// where the merge raises it to the one before. The same messages
		// in the same order, each once.
		key := func(ms []Message) []string {
			var out []string
			for _, m := range ms {
				out = append(out, fmt.Sprint(m.Seq, m.Topic, string(m.Payload)))
			}
			return out
		}
		same(t, "messages", key(collect(t, in.Messages(ctx, Query{}))), key(collect(t, merged.Messages(ctx, Query{}))))
		return in
	}
	checkSameAsMerged(t, merged, in)
	return in
}

// TestPartsInPlaceHostile: the parts of a recording whose split events,
// numbering, sessions or times were tampered with, or given twice, read in
// place as the merge reads them (the fast path refused where the parts do
// not bear their links out); never a panic, an error, a lost or doubled
// message or a read outside a part.
func TestPartsInPlaceHostile(t *testing.T) {
	edit := func(part int, stmts ...string) func(t *testing.T, parts []string) []string {
		return func(t *testing.T, parts []string) []string {
			rawExec(t, parts[part], stmts...)
			return parts
		}
	}
	link := func(part int, set string) func(t *testing.T, parts []string) []string {
		return edit(part, "UPDATE events SET detail = json_set(detail, "+set+") WHERE "+splitLinkWhere)
	}
	const empty = "DELETE FROM messages; UPDATE sessions SET first_seq = NULL, last_seq = NULL"
	for _, tc := range []struct {
		name     string
		tamper   func(t *testing.T, parts []string) []string
		messages int  // at least read (every message recorded: none lost); 0: not checked (some were deleted)
		inPlace  bool // still read in place
		reorder  bool // a time goes back: the merge raises it
	}{
		{name: "untouched", messages: 40, inPlace: true},
		{name: "carried negative", tamper: link(1, "'$.carried', -3"), messages: 40},
		{name: "carried zero", tamper: link(1, "'$.carried', 0"), messages: 40},
		{name: "carried one short", tamper: link(2, "'$.carried', json_extract(detail, '$.carried') - 1"), messages: 40},
		{name: "carried more than the part", tamper: link(1, "'$.carried', 1000"), messages: 40},
		{name: "carried huge", tamper: link(1, "'$.carried', 9223372036854775807"), messages: 40},
		{name: "carried over live rows", tamper: edit(1, "UPDATE messages SET from_store = 0 WHERE seq = 1"), messages: 40},
		{name: "first part carries", tamper: link(0, "'$.carried', 2"), messages: 40, inPlace: true},
		{name: "first part names a later one as previous", tamper: edit(0,
			"UPDATE events SET detail = json_set(detail, '$.previous', 'run-0003.db', '$.carried', 2) WHERE "+splitLinkWhere,
			"UPDATE messages SET (ts_ns, offset_ns) = (SELECT ts_ns, offset_ns FROM messages WHERE seq = 1) WHERE seq = 2"), messages: 38},
		{name: "part numbers equal", tamper: link(1, "'$.part', 1"), messages: 40},
		{name: "part numbers decrease", tamper: link(2, "'$.part', 1"), messages: 40},
		{name: "part number huge", tamper: link(2, "'$.part', 1e300"), messages: 40},
		{name: "part number negative", tamper: link(0, "'$.part', -5"), messages: 40, inPlace: true},
		{name: "previous not given", tamper: link(1, "'$.previous', 'elsewhere.db'"), messages: 40},
		{name: "previous is itself", tamper: link(1, "'$.previous', 'run-0002.db'"), messages: 40},
		{name: "previous in another directory", tamper: link(1, "'$.previous', '../run-0001.db'"), messages: 40},
		{name: "forged recording id", tamper: link(2, "'$.recording', 'rec2'"), messages: 40},
		{name: "link not JSON", tamper: edit(1, "UPDATE events SET detail = '{\"recording\":' WHERE "+splitLinkWhere), messages: 40},
		{name: "two start links", tamper: edit(1, "INSERT INTO events (session, ts_ns, offset_ns, kind, detail) SELECT session, ts_ns - 1, offset_ns, kind, json_set(detail, '$.carried', 5) FROM events WHERE "+splitLinkWhere), messages: 40, inPlace: true},
		{name: "two sessions in a part", tamper: edit(1, "INSERT INTO sessions (source, broker, client_id, protocol, clean_session, filters, started_ns, mqtape_version, host) SELECT source, broker, client_id, protocol, clean_session, filters, started_ns + 1, mqtape_version, host FROM sessions"), messages: 40},
		{name: "seqs near the top", tamper: func(t *testing.T, parts []string) []string {
			for _, p := range parts[1:] {
				rawExec(t, p, "UPDATE messages SET seq = seq + 9223372036854775000",
					"UPDATE sessions SET first_seq = first_seq + 9223372036854775000, last_seq = last_seq + 9223372036854775000")
			}
			return parts
		}, messages: 40},
		{name: "middle part emptied", tamper: edit(1, empty), inPlace: true},
		{name: "first part emptied", tamper: edit(0, empty), inPlace: true},
		{name: "last part emptied", tamper: edit(2, empty), inPlace: true},
		{name: "times go back inside a part", tamper: edit(1, "UPDATE messages SET (ts_ns, offset_ns) = (SELECT ts_ns - 1, offset_ns - 1 FROM messages WHERE seq = (SELECT max(seq) - 6 FROM messages)) WHERE seq = (SELECT max(seq) - 2 FROM messages)"), messages: 40, inPlace: true, reorder: true},
		{name: "times overlap the previous part", tamper: edit(1, "UPDATE messages SET ts_ns = ts_ns - 100000000000, offset_ns = offset_ns - 100000000000 WHERE seq = (SELECT max(seq) FROM messages)"), messages: 40, inPlace: true, reorder: true},
		{name: "part starts before the previous ends", tamper: edit(0, "UPDATE messages SET ts_ns = ts_ns + 100000000000, offset_ns = offset_ns + 100000000000 WHERE seq = (SELECT max(seq) FROM messages)"), messages: 40},
		{name: "a format 5 capture among the parts", tamper: func(t *testing.T, parts []string) []string {
			return []string{parts[0], v5Fixture, parts[1], parts[2]}
		}, messages: 40},
		{name: "a format 5 capture forged as part 2", tamper: func(t *testing.T, parts []string) []string {
			v5 := filepath.Join(t.TempDir(), "run-0002.db")
			copyFile(t, v5Fixture, v5)
			rawExec(t, v5, "INSERT INTO events (session, ts_ns, offset_ns, kind, detail) SELECT 1, started_ns, 0, 'split', "+
				"'{\"recording\":\"rec1\",\"part\":2,\"previous\":\"run-0001.db\",\"carried\":0}' FROM sessions WHERE id = 1")
			return []string{parts[0], v5, parts[2]}
		}, messages: 12 + 14},
		{name: "an older fixture among the parts", tamper: func(t *testing.T, parts []string) []string {
			return append(parts, filepath.Join("..", "testdata", "captures", "industrial.db"))
		}, messages: 40},
		{name: "a part and its copy", tamper: func(t *testing.T, parts []string) []string {
			dup := filepath.Join(t.TempDir(), filepath.Base(parts[2]))
			copyFile(t, parts[2], dup)
			return append(parts, dup)
		}, messages: 40 + 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := writeSplit(t, t.TempDir(), "rec1", rand.New(rand.NewPCG(11, 19)), 40, []int{12, 26}, false)
			files := r.parts
			if tc.tamper != nil {
				files = tc.tamper(t, r.parts)
			}
			in := sameOrRefused(t, files, !tc.reorder)
			if got := in.parts != nil; got != tc.inPlace {
				t.Errorf("read in place: %v, want %v", got, tc.inPlace)
			}
			if n, err := in.Count(context.Background(), Query{}); n < int64(tc.messages) || err != nil {
				t.Errorf("%d messages read (%v), want at least %d", n, err, tc.messages)
			}
		})
	}
}

// TestPartsInPlaceBadFile: a part that is not a sound capture, among
// others, is refused naming it, in place as merged.
func TestPartsInPlaceBadFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
		want   error
	}{
		{"not a capture", func(t *testing.T, path string) { os.WriteFile(path, []byte("hello"), 0o600) }, ErrNotCapture},
		{"truncated", func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			os.WriteFile(path, b[:len(b)/2], 0o600)
		}, ErrCorrupt},
		{"newer format", func(t *testing.T, path string) { rawExec(t, path, "PRAGMA user_version = 999") }, ErrNewerVersion},
		{"missing", func(t *testing.T, path string) { os.Remove(path) }, ErrNotFound},
		// The merge reads a session by its first_seq/last_seq (as one
		// file's session reads do): only the in-place reader, which reads
		// a part by its seqs, can tell.
		{"session range wrong in place", func(t *testing.T, path string) { rawExec(t, path, "UPDATE sessions SET first_seq = 1000") }, ErrCorrupt},
		{"session range short in place", func(t *testing.T, path string) { rawExec(t, path, "UPDATE sessions SET last_seq = last_seq - 1") }, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := writeSplit(t, t.TempDir(), "rec1", rand.New(rand.NewPCG(11, 19)), 40, []int{12, 26}, false)
			tc.damage(t, r.parts[1])
			for _, inPlace := range []bool{false, true} {
				if !inPlace && strings.HasSuffix(tc.name, "in place") {
					continue
				}
				c, err := OpenSet(context.Background(), r.parts, MergeOptions{InPlace: inPlace})
				if err == nil {
					c.Close()
				}
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), filepath.Base(r.parts[1])) {
					t.Errorf("in place %v: %v, want %v naming %s", inPlace, err, tc.want, r.parts[1])
				}
			}
		})
	}
}

// TestExpandInputsOnceEach: a file named twice — again, through its
// directory, or a hard link to it — is read once.
func TestExpandInputsOnceEach(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	copyFile(t, v5Fixture, a)
	copyFile(t, v5Fixture, b) // a copy is another file
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Link(a, link); err != nil {
		t.Fatal(err)
	}
	got, err := ExpandInputs([]string{a, dir, a, link, filepath.Join(dir, "*.db")})
	if err != nil || !slices.Equal(got, []string{a, b}) {
		t.Errorf("ExpandInputs: %q (%v), want %q", got, err, []string{a, b})
	}
}
