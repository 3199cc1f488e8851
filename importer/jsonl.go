package importer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"runtime/debug"

	"github.com/mqtape/mqtape/export"
)

// hugeLine is the length from which a line's memory is returned to the
// system as soon as it is parsed.
const hugeLine = 16 << 20

// readJSONL imports mqtape JSON lines. Lines keep their order. A change of
// the "session" field starts a new session, whose start is its first line's
// ts_ns − offset_ns, so a complete export imported into a new file exports
// again identically (seq and session numbers included). Lines without a
// time take the previous line's (the first: Options.Time); lines without
// offset_ns get ts_ns − session start.
func (im *Importer) readJSONL(ctx context.Context, br *bufio.Reader) error {
	var (
		curSession int64
		started    bool
		prevTS     = im.opts.Time.UnixNano()
	)
	return im.readLines(ctx, br, func(n int, line []byte) error {
		if len(bytes.TrimSpace(line)) == 0 {
			return nil // blank lines separate nothing
		}
		l, err := export.ParseLine(line)
		if len(line) > hugeLine {
			// The line is parsed and no longer referenced (readLines
			// lets go of huge lines): give its memory back before the
			// payload is written, which costs SQLite two more copies.
			line = nil
			debug.FreeOSMemory()
		}
		if err != nil {
			im.problem(ctx, fmt.Sprintf("line %d", n), err)
			return nil
		}
		m, hasOffset := l.Message, l.HasOffset
		if !l.HasTime {
			m.TimeNS = prevTS
			if started && hasOffset {
				m.TimeNS = im.w.SessionStart() + m.OffsetNS
			}
		}
		prevTS = m.TimeNS
		if !started || (l.HasSession && l.Session != curSession) {
			start := m.TimeNS
			if hasOffset {
				start -= m.OffsetNS
			}
			if err := im.startSession(ctx, start); err != nil {
				return err
			}
			started, curSession = true, l.Session
		}
		if !hasOffset {
			m.OffsetNS = max(m.TimeNS-im.w.SessionStart(), 0)
		}
		return im.add(ctx, m)
	})
}
