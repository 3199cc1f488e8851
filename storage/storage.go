// Package storage is the mqtape capture format: a versioned SQLite file of
// recorded MQTT messages, recording sessions and events. It creates, migrates,
// writes (in batches) and reads (ordered, filtered, paged, in constant memory)
// captures. docs/capture-format.md documents the schema for people who query
// captures with sqlite3.
//
// storage is a leaf package: it imports only the standard library and the
// SQLite driver.
package storage

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Sentinel errors, checked with errors.Is.
var (
	// ErrNotCapture: the file exists but is not an mqtape capture.
	ErrNotCapture = errors.New("not an mqtape capture")
	// ErrNewerVersion: the capture was written by a newer mqtape.
	ErrNewerVersion = errors.New("capture format is newer than this mqtape supports")
	// ErrCorrupt: the file is a damaged or truncated capture.
	ErrCorrupt = errors.New("capture file is damaged")
	// ErrNotFound: the file does not exist.
	ErrNotFound = errors.New("no such file")
	// ErrReadOnly: a write was attempted on a capture opened for reading.
	ErrReadOnly = errors.New("capture is open read-only")
)

// Capture is an open capture file.
type Capture struct {
	path    string
	w       *sql.DB // the single writer connection; nil when opened read-only
	r       *sql.DB // read pool
	version int
	// spoolDone: the last RecoverSpool left nothing it could take; the
	// next BeginSession then does not look again (record recovers first,
	// to report it, then begins its session).
	spoolDone bool
	// deferIndex: sessions ending do not rebuild the topic index; Close
	// does (DeferIndexes).
	deferIndex bool
	// topicIDs, clientIDs: the writer's cache of interned names (names).
	topicIDs, clientIDs map[string]int64
	// codec decompresses payloads for the read pool; zip compresses
	// them for the writer (nil: stored as they are).
	codec *codec
	zip   *compressor
	// readURI: the URI parameters the read pool opened the file with
	// (openReadDB); a payload copy attaches it the same way.
	readURI string
	// label names a set of captures read as one (OpenSet), whose cleanup
	// deletes the temporary capture they were read into.
	label   string
	files   []string // the set's files (Files)
	cleanup func()
	// parts: the parts of a split recording read in place (OpenSet):
	// every read goes to them (partread.go).
	parts *partSet
}

// DeferIndexes makes the sessions that end from now on leave the per-topic
// index to Close, which builds it once. Rebuilding it at each session's end
// costs a pass over every message: a writer of many sessions (import, cut,
// merge, recover) would take sessions × messages.
func (c *Capture) DeferIndexes() { c.deferIndex = true }

// Path returns the file name the capture was opened with.
// For captures read as one (OpenSet) it names the inputs.
func (c *Capture) Path() string {
	if c.label != "" {
		return c.label
	}
	return c.path
}

// Files returns the files the capture was read from: several for a set
// read as one (OpenSet), else its own path.
func (c *Capture) Files() []string {
	if c.files != nil {
		return c.files
	}
	return []string{c.path}
}

// Version returns the capture's format version (PRAGMA user_version).
func (c *Capture) Version() int { return c.version }

// Open opens an existing capture for reading. It never modifies the file, not
// even to migrate it: readers understand every older format version.
func Open(path string) (*Capture, error) {
	if err := sniff(path, false); err != nil {
		return nil, err
	}
	r, uri, err := openReadDB(context.Background(), path, "")
	if err != nil {
		return nil, err
	}
	c := &Capture{path: path, r: r, readURI: uri}
	if err := c.check(context.Background(), false); err != nil {
		r.Close()
		return nil, err
	}
	c.codec = newCodec(r)
	return c, nil
}

// OpenWrite opens path for recording: it creates a new capture (mode 0600,
// also when it was an empty file of another mode) when the file does not
// exist or is empty; an existing capture is migrated
// to the current format when the first session begins. Any other file is
// refused untouched.
func OpenWrite(path string) (*Capture, error) {
	if err := sniff(path, true); err != nil {
		return nil, err
	}
	if fi, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create capture %q: %w", path, err)
		}
		f.Close()
	} else if err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		// An empty file (touch x.db) becomes a new capture: it gets a new
		// capture's mode, whatever the umask gave it. SQLite gives the
		// -wal and -shm the main file's mode.
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("create capture %q: %w", path, err)
		}
	}
	w, err := openDB(path, "_txlock=immediate&_pragma=synchronous(NORMAL)&_pragma=page_size(65536)")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	c := &Capture{path: path, w: w}
	ctx := context.Background()
	if err := c.check(ctx, true); err != nil {
		w.Close()
		return nil, err
	}
	if _, err := w.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
		w.Close()
		return nil, c.wrap("set WAL mode", err)
	}
	if c.version == 0 {
		// A new file: give it the schema now, so readers can open it.
		if err := c.migrate(ctx); err != nil {
			w.Close()
			return nil, err
		}
	}
	// An older capture is migrated by the first BeginSession, so a
	// recording that never starts (broker unreachable) leaves it untouched.
	r, err := openDB(path, "mode=ro")
	if err != nil {
		w.Close()
		return nil, err
	}
	c.r, c.readURI = r, "mode=ro"
	c.codec = newCodec(r)
	return c, nil
}

// Close checkpoints the write-ahead log into the main file (so the capture
// is one self-contained file) and closes it.
func (c *Capture) Close() error {
	if c.parts != nil {
		return c.parts.close()
	}
	var errs []error
	c.codec.close()
	if c.r != nil {
		errs = append(errs, c.r.Close())
	}
	if c.w != nil && c.deferIndex {
		errs = append(errs, c.BuildIndexes(context.Background()))
	}
	if c.w != nil {
		// Best effort: a concurrent reader (a live inspector) may keep the
		// checkpoint from truncating; the data is committed either way.
		_, _ = c.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		errs = append(errs, c.w.Close())
	}
	c.r, c.w = nil, nil
	if c.cleanup != nil {
		c.cleanup()
		c.cleanup = nil
	}
	return errors.Join(errs...)
}

func openDB(path, params string) (*sql.DB, error) {
	registerPayloadFunction()
	// trusted_schema=OFF: SQL the file defines (views, triggers, defaults)
	// may not call functions with side effects; validateSchema refuses
	// such objects anyway.
	dsn := fileURI(path, "_pragma=busy_timeout(5000)&_pragma=trusted_schema(0)&"+params)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open capture %q: %w", path, err)
	}
	return db, nil
}

// headerPageSize reads the page size from an SQLite file header (bytes
// 16–17, where 1 stands for 65536).
func headerPageSize(hdr []byte) int64 {
	if size := int64(binary.BigEndian.Uint16(hdr[16:18])); size != 1 {
		return size
	}
	return 65536
}

// escapePath escapes the characters that would end the path part of an
// SQLite URI filename.
func escapePath(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return r.Replace(p)
}

var sqliteMagic = []byte("SQLite format 3\x00")

// sniff looks at the file before SQLite does, so that a directory, a text
// file or a truncated file get a precise error and are never touched.
func sniff(path string, forWrite bool) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if forWrite {
			return nil
		}
		return fmt.Errorf("open capture %q: %w", path, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("open capture %q: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("open capture %q: is a directory: %w", path, ErrNotCapture)
	}
	if fi.Size() == 0 {
		if forWrite {
			return nil
		}
		return fmt.Errorf("open capture %q: empty file: %w", path, ErrNotCapture)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open capture %q: %w", path, err)
	}
	defer f.Close()
	hdr := make([]byte, 100)
	if _, err := io.ReadFull(f, hdr); err != nil || !bytes.Equal(hdr[:16], sqliteMagic) {
		return fmt.Errorf("open capture %q: not an SQLite file: %w", path, ErrNotCapture)
	}
	pageSize := headerPageSize(hdr)
	pages := int64(binary.BigEndian.Uint32(hdr[28:32]))
	// The in-header size is valid when the change counter matches the
	// version-valid-for number (SQLite file format, section 1.3.7). With
	// data in the WAL (a checkpoint that could not finish, e.g. on a full
	// disk) the main file may legitimately be shorter.
	if pages > 0 && bytes.Equal(hdr[24:28], hdr[92:96]) && fi.Size() < pages*pageSize && !walHasData(path) {
		return fmt.Errorf("open capture %q: truncated (%d of %d bytes): %w", path, fi.Size(), pages*pageSize, ErrCorrupt)
	}
	return nil
}

func walHasData(path string) bool {
	fi, err := os.Stat(path + "-wal")
	return err == nil && fi.Size() > 0
}

// check reads the application id and format version. An empty database is
// acceptable only for writing (it becomes a new capture).
func (c *Capture) check(ctx context.Context, forWrite bool) error {
	db := c.r
	if forWrite {
		db = c.w
	}
	var appID, version, objects int
	if err := db.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return c.wrap("read header", err)
	}
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return c.wrap("read header", err)
	}
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&objects); err != nil {
		return c.wrap("read schema", err)
	}
	switch {
	case appID == 0 && version == 0 && objects == 0 && forWrite:
		// A brand-new (or zero-byte) file.
	case appID != ApplicationID:
		return fmt.Errorf("open capture %q: %w (application_id %d)", c.path, ErrNotCapture, appID)
	case version > FormatVersion:
		return fmt.Errorf("open capture %q: %w (file has version %d, this mqtape reads up to %d; upgrade mqtape)",
			c.path, ErrNewerVersion, version, FormatVersion)
	case version == 0:
		return fmt.Errorf("open capture %q: %w (no format version)", c.path, ErrCorrupt)
	}
	c.version = version
	if version == 0 {
		return nil
	}
	return c.validateSchema(ctx, db)
}

// migrate applies the pending migrations, each in its own transaction.
func (c *Capture) migrate(ctx context.Context) error {
	for c.version < len(migrations) {
		next := c.version + 1
		err := c.inTx(ctx, func(tx *sql.Tx) error {
			if c.version == 0 {
				if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id=%d", ApplicationID)); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, migrations[next-1]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version=%d", next))
			return err
		})
		if err != nil {
			return c.wrap(fmt.Sprintf("migrate to format version %d", next), err)
		}
		c.version = next
	}
	return nil
}

func (c *Capture) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if c.w == nil {
		return ErrReadOnly
	}
	tx, err := c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wrap gives an SQLite error the capture's context and maps corruption to
// ErrCorrupt.
func (c *Capture) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%s in %q: %w", what, c.path, err)
	}
	msg := err.Error()
	if detail, ok := payloadError(msg); ok {
		return fmt.Errorf("%s in %q: %w: %s", what, c.path, ErrCorrupt, detail)
	}
	if _, col, ok := strings.Cut(msg, "sql: Scan error on column index "); ok {
		// A value of the wrong type where the format has a number or text
		// (a NULL in a NOT NULL column): the row is damaged.
		held := "a value of the wrong type"
		if strings.Contains(col, "converting NULL") {
			held = "NULL"
		}
		if _, col, ok = strings.Cut(col, ", name "); ok {
			col, _, _ = strings.Cut(col, ":")
			msg = "column " + col + " holds " + held
		}
		return fmt.Errorf("%s in %q: %w: a damaged row (%s)", what, c.path, ErrCorrupt, msg)
	}
	if strings.Contains(msg, "malformed") || strings.Contains(msg, "not a database") ||
		strings.Contains(msg, "SQLITE_CORRUPT") || strings.Contains(msg, "SQLITE_NOTADB") {
		return fmt.Errorf("%s in %q: %w: %v", what, c.path, ErrCorrupt, err)
	}
	return fmt.Errorf("%s in %q: %w", what, c.path, err)
}
