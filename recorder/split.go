package recorder

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mqtape/mqtape/storage"
)

// Split rotates a recording into parts: when the part being written
// reaches Size bytes or is Every old, the writer closes it and goes on in
// the next one, without losing or repeating a message at the seam and
// without touching the broker connection. Each part is a complete capture
// (see storage.CreatePart).
type Split struct {
	Size  int64         // start the next part once the current one holds this many bytes (0: no limit)
	Every time.Duration // start the next part once the current one is this old (0: no limit)
	// Keep is how many parts stay on disk, the one being written included
	// (0: all); MaxTotal how many bytes they may take together (0: no
	// limit). The oldest finished parts of this recording are deleted
	// first; never the part being written.
	Keep     int
	MaxTotal int64
	// Pattern names the parts (storage.PartName); the capture given to New
	// is part First.
	Pattern   string
	First     int
	Recording string // id shared by the parts (storage.PartLink)
}

// PartInfo is a part of a split recording, as Stats and Result report it.
type PartInfo struct {
	Path    string
	Deleted bool // by retention
}

// splitter is the writer's rotation state.
type splitter struct {
	cfg     Split
	capture *storage.Capture // the part being written
	n       int              // its number
	started time.Time        // its start on the pipeline's clock
	// retained follows the retained state of what was committed: it opens
	// the next part.
	retained storage.RetainedState
	finished []string // finished parts still on disk, oldest first (mu)
	// closing counts the parts being ended in the background.
	closing sync.WaitGroup
	pruneMu sync.Mutex
	// info describes the next part's session (the filters as granted).
	info func() storage.SessionInfo
	// event records an event in the part being written.
	event func(kind, detail string)

	mu    sync.Mutex
	parts []PartInfo // every part, for Stats/Result
}

func newSplitter(cfg Split, capture *storage.Capture, start time.Time, info func() storage.SessionInfo, event func(kind, detail string)) *splitter {
	if cfg.First <= 0 {
		cfg.First = 1
	}
	return &splitter{cfg: cfg, capture: capture, n: cfg.First, started: start, info: info, event: event,
		parts: []PartInfo{{Path: capture.Path()}}}
}

// link is the "split" event detail of the part being written.
func (s *splitter) link() storage.PartLink {
	return storage.PartLink{Recording: s.cfg.Recording, Part: s.n}
}

// firstEvent is the detail of the first part's "split" event.
func (s *splitter) firstEvent() string {
	b, _ := json.Marshal(s.link())
	return string(b)
}

// due reports whether the part being written is full or old enough.
func (s *splitter) due(now time.Time) (bool, error) {
	if s.cfg.Every > 0 && now.Sub(s.started) >= s.cfg.Every {
		return true, nil
	}
	if s.cfg.Size > 0 {
		size, err := s.capture.Size(context.Background())
		if err != nil {
			return false, err
		}
		return size >= s.cfg.Size, nil
	}
	return false, nil
}

func (s *splitter) snapshot() []PartInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]PartInfo(nil), s.parts...)
}

// rotate closes the part being written and opens the next, without
// touching the connection or pausing acknowledgements. The next part is
// prepared first (file, session, spool). Then intake is held just long
// enough to mark the seam: everything queued and handed to the spooler
// before it belongs to the old part, everything after to the new one, and
// the spooler switches spools at the seam without waiting. Then the old
// part's messages are committed, the new part gets the retained state as of
// the seam, and the old part is ended in the background.
func (b *batcher) rotate() error {
	p, s := b.p, b.split
	ctx := context.Background()
	prepTS, prepOff := p.stamp()
	name, n := storage.NextPartName(s.cfg.Pattern, s.n+1, time.Unix(0, prepTS))
	info := s.info()
	info.StartedNS = prepTS
	capture, sess, err := storage.PreparePart(ctx, name, info)
	if err != nil {
		return fmt.Errorf("%w: start the next part: %w", ErrWriter, err)
	}
	if err := storage.InheritSettings(ctx, s.capture, capture); err != nil {
		capture.Close()
		storage.RemoveCapture(name)
		return fmt.Errorf("%w: start the next part: %w", ErrWriter, err)
	}
	spool, err := capture.OpenSpool(sess)
	if err == nil {
		err = b.lockIntake()
		if err != nil {
			spool.Close()
		}
	}
	if err != nil {
		capture.Close()
		storage.RemoveCapture(name)
		return fmt.Errorf("%w: start the next part: %w", ErrWriter, err)
	}
	err = b.take() // everything queued before the seam
	seam := p.setSeam(spool)
	ts, off := p.stamp()
	p.seamAt.Store(off)
	p.partBase.Store(prepOff) // messages queued from now on belong to the next part
	p.handling.Unlock()
	if err == nil {
		err = b.flush()
	}
	old, oldSess, oldSpool := s.capture, b.sess, b.spool
	if err == nil {
		err = storage.StartPart(ctx, sess, storage.PartStart{Recording: s.cfg.Recording, Number: n,
			Previous: old.Path(), Retained: s.retained.Messages()}, ts)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrWriter, err)
	}
	select {
	case <-seam.oldDone: // the old spool holds nothing more to commit
	case <-p.spoolerExit:
		// Stopping: the spooler handled everything that was handed to it
		// (nothing comes after the seam), or it failed.
		if p.pendingLen() > 0 {
			return fmt.Errorf("%w: the spooler stopped during a rotation", ErrWriter)
		}
	}
	b.sess, b.spool, b.base = sess, spool, prepOff
	p.setPart(capture, sess, spool)
	link := s.link()
	link.Next = name
	s.mu.Lock()
	s.capture, s.n, s.started = capture, n, p.clock.Now()
	s.parts = append(s.parts, PartInfo{Path: name})
	s.mu.Unlock()
	// Ending the old part rebuilds its topic index (seconds for a big
	// part): in the background, while recording goes on in the next one.
	s.closing.Add(1)
	go func() {
		defer s.closing.Done()
		if err := oldSpool.Close(); err != nil {
			p.event(storage.EventStopped, "delete spool: "+err.Error())
		}
		if err := storage.EndPart(context.Background(), old, oldSess, link, ts, p.dropped.Load()); err != nil {
			p.event(storage.EventStopped, fmt.Sprintf("finish part %s: %v", filepath.Base(old.Path()), err))
			return
		}
		s.mu.Lock()
		s.finished = append(s.finished, old.Path())
		s.mu.Unlock()
		s.prune()
	}()
	return nil
}

// lockIntake stops intake, taking and committing meanwhile what is being
// queued (an offer waiting for room must get it).
func (b *batcher) lockIntake() error {
	locked := make(chan struct{})
	go func() {
		b.p.handling.Lock()
		close(locked)
	}()
	var err error
	for {
		select {
		case <-locked:
			if err != nil {
				b.p.handling.Unlock()
			}
			return err
		case <-b.p.ready:
			if err == nil {
				err = b.take()
			}
			if err == nil && b.p.pressed.Swap(false) {
				err = b.flush()
			}
		}
	}
}

// prune deletes the oldest finished parts beyond Keep and MaxTotal (the
// goroutines ending parts call it, one at a time).
func (s *splitter) prune() {
	s.pruneMu.Lock()
	defer s.pruneMu.Unlock()
	s.mu.Lock()
	current := s.capture
	s.mu.Unlock()
	over := func() bool {
		s.mu.Lock()
		finished := append([]string(nil), s.finished...)
		s.mu.Unlock()
		if s.cfg.Keep > 0 && len(finished)+1 > s.cfg.Keep {
			return true
		}
		if s.cfg.MaxTotal <= 0 || len(finished) == 0 {
			return false
		}
		total, _ := current.Size(context.Background())
		for _, f := range finished {
			if fi, err := os.Stat(f); err == nil {
				total += fi.Size()
			}
		}
		return total > s.cfg.MaxTotal
	}
	for over() {
		s.mu.Lock()
		if len(s.finished) == 0 {
			s.mu.Unlock()
			return
		}
		victim := s.finished[0]
		s.finished = s.finished[1:]
		s.mu.Unlock()
		err := storage.RemoveCapture(victim)
		if err != nil {
			// Said in the part being written; it is not tried again.
			s.event(storage.EventRetention, fmt.Sprintf("could not delete part %s: %v", filepath.Base(victim), err))
		} else {
			s.event(storage.EventRetention, "deleted part "+filepath.Base(victim))
		}
		s.mu.Lock()
		for i := range s.parts {
			if s.parts[i].Path == victim {
				s.parts[i].Deleted = err == nil
			}
		}
		s.mu.Unlock()
	}
}
