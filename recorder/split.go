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
	finished []string // finished parts still on disk, oldest first
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

// rotate closes the part being written and opens the next. Intake is
// stopped meanwhile (the network goroutine waits, the connection stays
// up): everything received before the seam is committed to the old part,
// everything after goes to the new one, and the spooler acknowledges what
// it holds into the old part's spool before it switches.
func (b *batcher) rotate() error {
	if err := b.lockIntake(); err != nil {
		return err
	}
	err := b.rotateLocked()
	b.p.handling.Unlock()
	if err != nil {
		return err
	}
	b.split.prune()
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

func (b *batcher) rotateLocked() error {
	p, s := b.p, b.split
	if err := b.take(); err != nil {
		return err
	}
	if err := b.flush(); err != nil {
		return err
	}
	ts, off := p.stamp()
	ctx := context.Background()
	now := p.clock.Now()
	name, n := storage.NextPartName(s.cfg.Pattern, s.n+1, time.Unix(0, ts))
	info := s.info()
	info.StartedNS = ts
	old, oldSess, oldSpool := s.capture, b.sess, b.spool
	capture, sess, err := storage.CreatePart(ctx, name, info,
		storage.PartStart{Recording: s.cfg.Recording, Number: n, Previous: old.Path(), Retained: s.retained.Messages()})
	if err != nil {
		return fmt.Errorf("%w: start the next part: %w", ErrWriter, err)
	}
	spool, err := capture.OpenSpool(sess)
	if err != nil {
		capture.Close()
		storage.RemoveCapture(name)
		return fmt.Errorf("%w: start the next part: %w", ErrWriter, err)
	}
	if err := p.swapSpool(spool); err != nil {
		return err
	}
	if err := oldSpool.Close(); err != nil {
		p.event(storage.EventStopped, "delete spool: "+err.Error())
	}
	link := s.link()
	link.Next = name
	if err := storage.EndPart(ctx, old, oldSess, link, ts, p.dropped.Load()); err != nil {
		return fmt.Errorf("%w: finish part %s: %w", ErrWriter, old.Path(), err)
	}
	p.partBase.Store(off)
	b.sess, b.spool = sess, spool
	p.setPart(capture, sess, spool)
	s.mu.Lock()
	s.capture, s.n, s.started = capture, n, now
	s.finished = append(s.finished, old.Path())
	s.parts = append(s.parts, PartInfo{Path: name})
	s.mu.Unlock()
	return nil
}

// prune deletes the oldest finished parts beyond Keep and MaxTotal.
func (s *splitter) prune() {
	over := func() bool {
		if s.cfg.Keep > 0 && len(s.finished)+1 > s.cfg.Keep {
			return true
		}
		if s.cfg.MaxTotal <= 0 {
			return false
		}
		total, _ := s.capture.Size(context.Background())
		for _, f := range s.finished {
			if fi, err := os.Stat(f); err == nil {
				total += fi.Size()
			}
		}
		return total > s.cfg.MaxTotal
	}
	for len(s.finished) > 0 && over() {
		victim := s.finished[0]
		s.finished = s.finished[1:]
		err := storage.RemoveCapture(victim)
		if err == nil {
			s.event(storage.EventRetention, "deleted part "+filepath.Base(victim))
		}
		s.mu.Lock()
		for i := range s.parts {
			if s.parts[i].Path == victim {
				s.parts[i].Deleted = err == nil
			}
		}
		s.mu.Unlock()
		if err != nil {
			// Said in the part being written; it is not tried again.
			s.event(storage.EventRetention, fmt.Sprintf("could not delete part %s: %v", filepath.Base(victim), err))
		}
	}
}
