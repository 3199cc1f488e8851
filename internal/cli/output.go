package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// errWouldOverwrite: an output file exists and a verb that writes whole
// files (export -o) does not replace files (exit 4).
var errWouldOverwrite = errors.New("would overwrite an existing file")

// outputFile is a file written under a temporary name beside its final
// one and put in place only when complete: an interrupted or failed write
// leaves nothing behind, and an existing file is never replaced.
type outputFile struct {
	*os.File
	path string
}

// createOutput starts writing path, which must not exist.
func createOutput(path string) (*outputFile, error) {
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("output %q: %w: remove it or choose another name", path, errWouldOverwrite)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("output %q: %w", path, err)
	}
	// CreateTemp makes it 0600, which it keeps: an export holds the same
	// device data as the capture, which mqtape also makes 0600.
	return &outputFile{File: f, path: path}, nil
}

// commit syncs the file and gives it its name, unless a file of that name
// appeared meanwhile.
func (o *outputFile) commit() error {
	tmp := o.Name()
	err := o.Sync()
	if cerr := o.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// A hard link fails if path exists (rename would replace it);
		// rename only where the file system has no hard links.
		if err = os.Link(tmp, o.path); errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("%w: %s appeared while it was written", errWouldOverwrite, o.path)
		} else if err != nil {
			if _, serr := os.Lstat(o.path); errors.Is(serr, fs.ErrNotExist) {
				err = os.Rename(tmp, o.path)
			}
		}
	}
	os.Remove(tmp)
	if err != nil {
		return fmt.Errorf("output %q: %w", o.path, err)
	}
	return nil
}

// abort removes what was written.
func (o *outputFile) abort() {
	o.Close()
	os.Remove(o.Name())
}
