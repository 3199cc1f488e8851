package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mqtape/mqtape/broker"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/recorder"
	"github.com/mqtape/mqtape/storage"
)

const serveUsage = `serve [flags] -o FILE

Run an embedded MQTT broker (3.1.1 and 5) that devices connect to directly,
and record every PUBLISH it routes — with the publisher's client id and the
retain flag as published, which no subscriber can see — plus client
connects, disconnects (and whether the will was sent), subscribes and
unsubscribes. Ctrl-C flushes and stops.

A PUBACK (QoS 1) or PUBREC (QoS 2) from serve means the message is in the
capture's spool: it survives serve being killed (the next serve or record
into the file adds it to the capture). A connection must send CONNECT within
--connect-timeout; its first packet may not exceed 64 KiB (before
authentication), later ones --max-packet-size (told to MQTT 5 clients).
If accepting fails (out of file descriptors), serve says so once and
keeps retrying with a backoff.

--passwd takes a password file: lines "user:hash", where hash comes from
mosquitto_passwd ($7$ PBKDF2-SHA512, or the older $6$) or is bcrypt ($2a$,
$2b$, $2y$). Without it anyone may connect: keep the default loopback
address then.`

const serveExamples = `  mqtape serve -o capture.db                                  # mqtt://127.0.0.1:1883
  mqtape serve --listen 0.0.0.0:1883 --passwd users.txt -o site.db
  mqtape serve --listen 127.0.0.1:8883 --cert server.pem --key server.key -o tls.db
  mqtape serve --ws 127.0.0.1:9001 -o browser.db              # plus MQTT over websockets
  mqtape serve -o fixture.db & mqtape play old.db --broker mqtt://127.0.0.1:1883
  mqtape serve --connect-timeout 3s --max-packet-size 256KiB -o devices.db
  mqtape serve --compress -o week.db                          # payloads zstd-compressed
`

type serveOptions struct {
	listen   []string
	ws       []string
	passwd   string
	cert     string
	key      string
	cafile   string
	duration time.Duration
	count    int64
	quiet    bool
	compress bool
	output   string
	queued   int

	connectTimeout time.Duration
	maxPacket      string
	maxPacketSize  uint32 // parsed from maxPacket
}

func parseServe(args []string, cio *cliIO) (serveOptions, error) {
	var o serveOptions
	fs := newFlagSet("serve", serveUsage, serveExamples, cio)
	fs.StringVarP(&o.output, "output", "o", "", "capture file to write (required)")
	fs.StringArrayVar(&o.listen, "listen", nil, "TCP address to accept MQTT on (repeatable; default 127.0.0.1:1883)")
	fs.StringArrayVar(&o.ws, "ws", nil, "address for an MQTT-over-websocket listener (repeatable)")
	fs.StringVar(&o.passwd, "passwd", "", "password file (mosquitto_passwd or user:bcrypt lines)")
	fs.StringVar(&o.cert, "cert", "", "PEM server certificate: TCP listeners speak TLS")
	fs.StringVar(&o.key, "key", "", "PEM private key of --cert")
	fs.StringVar(&o.cafile, "cafile", "", "PEM CA: require client certificates signed by it (mutual TLS)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long")
	fs.Int64Var(&o.count, "count", 0, "stop after this many messages")
	fs.BoolVar(&o.quiet, "quiet", false, "no live status line or summary")
	registerCompress(fs, &o.compress)
	fs.IntVar(&o.queued, "max-queued", 8192, "messages queued for one slow client before the broker drops (each drop is recorded); reserved up front, 8 bytes a slot per client")
	fs.DurationVar(&o.connectTimeout, "connect-timeout", broker.DefaultConnectTimeout, "close connections that have not sent CONNECT after this long")
	fs.StringVar(&o.maxPacket, "max-packet-size", "16MiB", "largest packet a client may send (bytes, or with KiB/MiB); told to MQTT 5 clients")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	size, err := parseByteSize(o.maxPacket)
	switch {
	case err != nil:
		return o, usagef("--max-packet-size %q: %v", o.maxPacket, err)
	case size < 2 || size > mqtt.MaxRemainingLength+5:
		return o, usagef("--max-packet-size %q: must be between 2 bytes and 256 MiB (MQTT's limit)", o.maxPacket)
	case o.connectTimeout <= 0:
		return o, usagef("--connect-timeout %v: must be positive", o.connectTimeout)
	}
	o.maxPacketSize = uint32(size)
	switch {
	case fs.NArg() > 0:
		return o, usagef("unexpected argument %q (the capture file goes after -o)", fs.Arg(0))
	case o.queued < 1 || o.queued > 1<<30:
		return o, usagef("--max-queued %d: must be between 1 and 2^30", o.queued)
	case o.output == "":
		return o, usagef("missing -o FILE")
	case (o.cert == "") != (o.key == ""):
		return o, usagef("--cert and --key go together")
	case o.cafile != "" && o.cert == "":
		return o, usagef("--cafile (client certificates) needs --cert and --key")
	case o.duration < 0 || o.count < 0:
		return o, usagef("--duration and --count must not be negative")
	}
	if len(o.listen) == 0 {
		o.listen = []string{"127.0.0.1:1883"}
	}
	for _, a := range append(append([]string(nil), o.listen...), o.ws...) {
		_, port, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			return o, usagef("--listen/--ws %q: want HOST:PORT, e.g. 127.0.0.1:1883", a)
		}
	}
	return o, nil
}

func (o serveOptions) tlsConfig() (*tls.Config, error) {
	if o.cert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(o.cert, o.key)
	if err != nil {
		return nil, usagef("load --cert/--key: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.cafile != "" {
		pem, err := os.ReadFile(o.cafile)
		if err != nil {
			return nil, usagef("--cafile: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--cafile %s: no PEM certificates", o.cafile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func cmdServe(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseServe(args, cio)
	if err != nil {
		return err
	}
	tlsCfg, err := o.tlsConfig()
	if err != nil {
		return err
	}
	var authenticate func(clientID, username string, password []byte) bool
	if o.passwd != "" {
		p, err := broker.LoadPasswords(o.passwd)
		if err != nil {
			return usageError{err}
		}
		authenticate = func(_, username string, password []byte) bool { return p.Check(username, string(password)) }
	}
	// A port already in use fails here, before the capture is touched.
	for _, addr := range append(append([]string(nil), o.listen...), o.ws...) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w (is another broker using the port?)", addr, err)
		}
		ln.Close()
	}
	capture, err := storage.OpenWrite(o.output)
	if err != nil {
		return err
	}
	capture.SetCompression(o.compress)
	defer capture.Close()
	// No soft memory limit here (unlike record): the broker itself queues
	// messages for slow subscribers, and a limit below that makes the
	// garbage collector run without pause.
	host, _ := os.Hostname()
	scheme := "mqtt://"
	if tlsCfg != nil {
		scheme = "mqtts://"
	}
	tap := recorder.NewTap(capture, recorder.Config{Count: o.count, Session: storage.SessionInfo{
		Source: "broker", Broker: scheme + strings.Join(append(append([]string(nil), o.listen...), o.ws...), ","),
		ClientID: "", Protocol: 5, CleanSession: true, Version: version, Host: host}})
	if err := tap.Start(ctx); err != nil {
		return err
	}
	b, err := broker.Start(broker.Options{Listen: o.listen, WS: o.ws, TLS: tlsCfg, Authenticate: authenticate, Observer: tap,
		MaxPending: int32(o.queued), MaxPacketSize: o.maxPacketSize, ConnectTimeout: o.connectTimeout,
		Warn: func(msg string) { fmt.Fprintln(cio.stderr, "serve: "+msg) }})
	if err != nil {
		tap.Stop(ctx, recorder.StopError)
		return fmt.Errorf("%w (is another broker using the port?)", err)
	}
	if !o.quiet {
		auth := "anyone may connect"
		if o.passwd != "" {
			auth = "password file " + o.passwd
		}
		for _, a := range b.Addrs() {
			fmt.Fprintf(cio.stderr, "serving MQTT on %s (%s)\n", a, auth)
		}
		fmt.Fprintf(cio.stderr, "recording every routed message into %s; Ctrl-C to stop\n", o.output)
	}
	stopStatus := newStatusLine(cio, o.quiet).start(recordStatusLine(tap.Stats))
	var timeout <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		timeout = t.C
	}
	reason := recorder.StopInterrupted
	select {
	case <-ctx.Done():
	case <-timeout:
		reason = recorder.StopDuration
	case <-tap.CountReached():
		reason = recorder.StopCount
	case <-tap.Failed():
	}
	b.Close() // disconnects clients; their events are still recorded
	res, err := tap.Stop(context.WithoutCancel(ctx), reason)
	stopStatus()
	if !o.quiet || err != nil {
		printRecordSummary(cio, o.output, res)
	}
	if err != nil && errors.Is(err, recorder.ErrWriter) {
		return fmt.Errorf("%v (everything committed before this is intact in %s)", err, o.output)
	}
	return err
}

// parseByteSize reads a size: bytes, or a number with B, KiB, MiB or GiB
// (K, M, G and KB, MB, GB mean the same powers of 1024).
func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(t[len(num):]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a number of bytes, optionally with KiB or MiB")
	}
	shift := map[string]uint{"": 0, "b": 0, "k": 10, "kb": 10, "kib": 10, "m": 20, "mb": 20, "mib": 20, "g": 30, "gb": 30, "gib": 30}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (want B, KiB, MiB or GiB)", unit)
	}
	if n > (1<<62)>>sh {
		return 0, fmt.Errorf("too large")
	}
	return n << sh, nil
}
