package importer

import (
	"context"

	"github.com/mqtape/mqtape/storage"
)

// Writer is the importer's handle on storage.SessionWriter, which holds the
// writing rules (batches, the never-decreasing order, clamping). It adds the
// two names the readers of this package use directly: info, the description
// of the sessions to come (the pcap reader fills in broker and protocol),
// and lastTS, the open session's last message time.
type Writer struct {
	*storage.SessionWriter
	info   *storage.SessionInfo // the SessionWriter's own Info
	lastTS int64                // LastTime(), refreshed by StartSession and Add
}

// NewWriter prepares a Writer; info describes every session it starts
// (StartedNS is set per session).
func NewWriter(c *storage.Capture, info storage.SessionInfo) *Writer {
	sw := storage.NewSessionWriter(c, info)
	return &Writer{SessionWriter: sw, info: &sw.Info}
}

// StartSession is storage.SessionWriter.StartSession.
func (w *Writer) StartSession(ctx context.Context, startNS int64, reason string, info *storage.SessionInfo) error {
	err := w.SessionWriter.StartSession(ctx, startNS, reason, info)
	w.lastTS = w.LastTime()
	return err
}

// Add is storage.SessionWriter.Add.
func (w *Writer) Add(ctx context.Context, m storage.Message) error {
	err := w.SessionWriter.Add(ctx, m)
	w.lastTS = w.LastTime()
	return err
}
