package inspector

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/internal/humanize"

	"github.com/mqtape/mqtape/storage"
)

// defaultPath proposes a file name in Options.Dir that does not exist yet
// (e and w never overwrite), so a second e or w proposes a name it accepts.
func (u *UI) defaultPath(name string) string {
	return freePath(filepath.Join(u.opts.Dir, name))
}

// freePath returns path when nothing exists there, else the first free one
// of NAME-2.EXT, NAME-3.EXT, … (path itself if 999 are taken: e then says
// the file exists).
func freePath(path string) string {
	free := func(p string) bool {
		_, err := os.Lstat(p)
		return errors.Is(err, fs.ErrNotExist)
	}
	if free(path) {
		return path
	}
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	for i := 2; i < 1000; i++ {
		if p := fmt.Sprintf("%s-%d%s", base, i, ext); free(p) {
			return p
		}
	}
	return path
}

// openExport asks where to export the filtered messages.
func (u *UI) openExport() {
	if u.jobCancel != nil {
		u.fail(fmt.Errorf("%s is running (Esc cancels it)", u.job))
		return
	}
	base := strings.TrimSuffix(filepath.Base(u.c.Path()), filepath.Ext(u.c.Path()))
	u.say("export %s as JSON lines (the file must not exist)", humanize.Count(u.m.total, "message", "messages"))
	u.ask("export to:", u.defaultPath(base+"-export.jsonl"), u.export, nil)
}

// export writes the view's messages to path in the background.
func (u *UI) export(path string) error {
	path = strings.TrimSpace(path)
	if path == "" {
		return errors.New("export: no file name")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	p, horizon, total := u.m.q.p, u.m.horizon, u.m.total
	ctx, cancel := context.WithCancel(u.ctx)
	u.job, u.jobCancel = "exporting…", cancel
	u.spawnCtx(ctx, func(ctx context.Context) {
		n, err := exportTo(ctx, f, p, horizon, func(n int64) {
			u.post(func() {
				u.job = fmt.Sprintf("exporting %s/%s…", humanize.GroupDigits(n), humanize.GroupDigits(total))
			})
		})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path) // no half files
		}
		u.post(func() {
			u.job, u.jobCancel = "", nil
			switch {
			case errors.Is(err, context.Canceled):
				u.say("export cancelled; %s removed", path)
			case err != nil:
				u.fail(fmt.Errorf("export: %w", err))
			default:
				u.say("exported %s to %s", humanize.Count(n, "message", "messages"), path)
			}
		})
	})
	return nil
}

// exportTo streams the selection up to horizon as JSON lines, calling
// progress about every 250 ms.
func exportTo(ctx context.Context, f *os.File, p *storage.Prepared, horizon int64, progress func(int64)) (int64, error) {
	bw := bufio.NewWriterSize(f, 256<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	var n int64
	last := time.Now()
	for m, err := range p.Messages(ctx, 0, false) {
		if err != nil {
			return n, err
		}
		if m.Seq > horizon {
			break
		}
		r := export.New(&m)
		if err := enc.Encode(&r); err != nil {
			return n, err
		}
		n++
		if time.Since(last) > 250*time.Millisecond {
			last = time.Now()
			progress(n)
		}
	}
	if err := ctx.Err(); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// openWrite asks where to write the selected payload.
func (u *UI) openWrite() {
	sel := u.selected()
	if sel == nil {
		u.fail(errors.New("no message selected"))
		return
	}
	m, err := u.c.Get(u.ctx, sel.Seq)
	if err != nil {
		u.fail(err)
		return
	}
	ext := map[payloadKind]string{kindJSON: ".json", kindText: ".txt"}[kindOf(m.Payload)]
	if ext == "" {
		ext = ".bin"
	}
	u.say("write the payload of seq %d (%s); the file must not exist", m.Seq, humanize.Count(int64(len(m.Payload)), "byte", "bytes"))
	u.ask("write to:", u.defaultPath(fmt.Sprintf("payload-%d%s", m.Seq, ext)), func(path string) error {
		path = strings.TrimSpace(path)
		if path == "" {
			return errors.New("write: no file name")
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		_, err = f.Write(m.Payload)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return fmt.Errorf("write: %w", err)
		}
		u.say("wrote %s to %s", humanize.Count(int64(len(m.Payload)), "byte", "bytes"), path)
		return nil
	}, nil)
}
