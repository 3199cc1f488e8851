package recorder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
)

// workers are a recording's writer and spooler goroutines.
type workers struct {
	p           *pipeline
	spool       *storage.Spool
	stopSpooler context.CancelFunc
	stopWriter  context.CancelFunc
	spoolerDone chan error
	writerDone  chan error
	// failed is closed when either stops on its own (an error).
	failed chan struct{}
}

// startWorkers opens the session's spool and starts the writer and the
// spooler of p; flush (may be nil) sends the acknowledgements made so far.
//
// split (may be nil) rotates the recording into parts; the parts after the
// first are opened and closed by the writer (see splitter).
func startWorkers(ctx context.Context, p *pipeline, capture *storage.Capture, sess *storage.Session, flush ackFlusher, split *splitter) (*workers, error) {
	spool, err := capture.OpenSpool(sess)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWriter, err)
	}
	p.setPart(capture, sess, spool)
	p.spoolerExit = make(chan struct{})
	bg := context.WithoutCancel(ctx)
	wk := &workers{p: p, spool: spool, spoolerDone: make(chan error, 1), writerDone: make(chan error, 1),
		failed: make(chan struct{})}
	var spoolCtx, writerCtx context.Context
	spoolCtx, wk.stopSpooler = context.WithCancel(bg)
	writerCtx, wk.stopWriter = context.WithCancel(bg)
	failed := make(chan struct{}, 2)
	go func() {
		err := p.spooler(spoolCtx, spool, flush)
		close(p.spoolerExit)
		if err != nil {
			failed <- struct{}{}
		}
		wk.spoolerDone <- err
	}()
	go func() {
		err := p.writer(writerCtx, sess, spool, split)
		if err != nil {
			failed <- struct{}{}
		}
		wk.writerDone <- err
	}()
	go func() {
		select {
		case <-failed:
			close(wk.failed)
		case <-writerCtx.Done():
		}
	}()
	return wk, nil
}

// stop drains and stops both, after intake has stopped: the spooler
// acknowledges what is pending, the writer commits what is queued. Once
// everything is committed the spool is deleted; if the writer failed it
// stays for the next recording to recover.
func (wk *workers) stop() error {
	wk.stopSpooler()
	serr := <-wk.spoolerDone
	wk.stopWriter()
	werr := <-wk.writerDone
	spool := wk.p.currentPart().spool // the last part's, after rotations
	if werr == nil {
		if err := spool.Close(); err != nil {
			wk.p.event(storage.EventStopped, "delete spool: "+err.Error())
		}
	} else {
		spool.Release()
	}
	return errors.Join(werr, serr)
}

// sysDroppedAtStop reads the broker's dropped-messages counter once more
// (subscribing again makes the broker resend its retained value) and
// records what it says, so that a recording shorter than the broker's
// $SYS interval still reports drops. Brokers without the counter are left
// alone.
func (r *Recorder) sysDroppedAtStop(ctx context.Context, client Subscriber) {
	r.mu.Lock()
	has := r.sysBase >= 0
	r.mu.Unlock()
	if !has {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	seen := r.sysSeen.Load()
	if _, err := client.Subscribe(ctx, []mqtt.Subscription{{Filter: sysDropped, QoS: 0}}); err == nil {
		for r.sysSeen.Load() == seen && ctx.Err() == nil {
			select {
			case <-r.sysUpdate:
			case <-ctx.Done():
			}
		}
	}
	when := "read again at the stop"
	if r.sysSeen.Load() == seen {
		when = "not read again at the stop: its last value while recording"
	}
	r.event(storage.EventBrokerDropped, fmt.Sprintf("at stop the broker reports %s dropped since recording started (%s; %s, as of the broker's last update: brokers refresh $SYS every few seconds, mosquitto every sys_interval, 10 s by default)", humanize.Count(r.brokerDropped.Load(), "message", "messages"), sysDropped, when))
}
