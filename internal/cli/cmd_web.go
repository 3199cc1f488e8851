package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/export"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/web"
)

const webUsage = `web [--listen ADDR] [--token T] [flags] FILE...

Serve a read-only view of a capture to a browser: a message table that pages
through millions of messages, the filter language of inspect's / line, a
topic tree with counts, a detail pane (pretty JSON, decoded values, text,
hex, MQTT 5 properties, the publisher's client id), the message rate and a
plot of a numeric field. ?follow=1 shows new messages of a capture being
recorded (mqtape record -o FILE running) within a second. The filter, the
selected message and follow are in the URL: copy it to show a colleague the
same view. Prints the URL on stdout and serves until Ctrl-C.

FILE is opened read-only and never modified. Several captures — files, a
directory (its *.db files) or a quoted glob such as 'run-*.db' — are read as
one capture in time order, like every reading verb (the parts of a split
recording count every message once); they are read as they are when web
starts, so follow works on one file. To follow a recording, start mqtape web
after the recorder: a file no recorder has open is read as finished.

The page and its JSON API (GET and HEAD only; every other method gets 405):
  /api/info                            the summary, as info --json
  /api/messages?q=&after=&before=&limit=  records as export writes them, and
                                       "next" (the after= of the next page);
                                       limit 1 to 1000 (default 200)
  /api/topics                          every topic and its message count
  /api/events?q=&after=                new messages, as server-sent events

WARNING: captures hold device data (payloads, topics, client ids). By default
the server listens on 127.0.0.1 and answers only requests to a loopback
address. Listening on any other address requires a token: --token T, or one
is generated; every request without it is refused (401/403). The printed URL
carries it (?token=…): share it only with whom may see the data. There is no
TLS: across a network, put it behind a TLS proxy or an SSH tunnel.

Topics and payloads are shown as text, never as HTML; control characters and
bidi overrides show visibly (\x1b, ⟨U+202E⟩).

` + decodeFlagsHelp

const webExamples = `  mqtape web capture.db                          # prints http://127.0.0.1:PORT/
  mqtape web --listen 127.0.0.1:8080 capture.db
  mqtape web --listen 0.0.0.0:8080 capture.db    # prints a URL with a generated ?token=
  mqtape web live.db                             # while mqtape record -o live.db runs; open …/?follow=1
  curl -s 'http://127.0.0.1:8080/api/messages?q=plant/%2B/temp%20qos>=1&limit=10' | jq '.messages[].topic'
  ssh -L 8080:127.0.0.1:8080 rig 'mqtape web --listen 127.0.0.1:8080 /data/capture.db'
`

type webOptions struct {
	listen string
	token  string
	utc    bool
	decode decodeFlags
	file   string
	inputs []string // the captures read as one (openInputs)
}

func parseWeb(args []string, cio *cliIO) (webOptions, error) {
	var o webOptions
	fs := newFlagSet("web", webUsage, webExamples, cio)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "address to listen on, HOST:PORT (port 0: a free one)")
	fs.StringVar(&o.token, "token", "", "require this token on every request (default: none on loopback, generated otherwise)")
	fs.BoolVar(&o.utc, "utc", false, "read clock times in filters as UTC (default: local time)")
	o.decode.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	host, port, err := net.SplitHostPort(o.listen)
	if err != nil {
		return o, usagef("--listen %q: use HOST:PORT, e.g. 127.0.0.1:8080", o.listen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return o, usagef("--listen %q: bad port %q (0 to 65535; 0 picks a free one)", o.listen, port)
	}
	if !loopback(host) && o.token == "" {
		b := make([]byte, 16)
		rand.Read(b)
		o.token = hex.EncodeToString(b)
	}
	o.inputs, o.file, err = captureArgs(fs)
	return o, err
}

// loopback reports whether a listen host is a loopback address (or
// localhost).
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func cmdWeb(ctx context.Context, args []string, cio *cliIO) error {
	o, err := parseWeb(args, cio)
	if err != nil {
		return err
	}
	reg, err := o.decode.registry(ctx)
	if err != nil {
		return err
	}
	c, err := openInputs(ctx, cio, o.inputs, true)
	if err != nil {
		return err
	}
	defer c.Close()
	srv, err := webServer(ctx, c, reg, o, cio)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.listen, err)
	}
	fmt.Fprintln(cio.stdout, webURL(ln.Addr().(*net.TCPAddr), o.token))
	fmt.Fprintf(cio.stderr, "serving %s read-only (Ctrl-C stops)\n", o.file)
	return serveUntilDone(ctx, &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}, ln)
}

// webServer is the server of capture c that o describes, decoding with
// reg and the decoders c carries.
func webServer(ctx context.Context, c *storage.Capture, reg *decode.Registry, o webOptions, cio *cliIO) (*web.Server, error) {
	reg, err := withCapture(ctx, reg, c, cio.stderr)
	if err != nil {
		return nil, err
	}
	loc := time.Local
	if o.utc {
		loc = time.UTC
	}
	return web.New(web.Options{Source: c, Name: c.Path(), Token: o.token, Location: loc,
		Decode: export.NewResolver(c, reg).Decode,
		Info:   func(ctx context.Context) (any, error) { return buildInfo(ctx, c, false) }}), nil
}

// webURL is the address to open: with the token when there is one, and
// this machine's name when listening on every interface.
func webURL(a *net.TCPAddr, token string) string {
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(host, fmt.Sprint(a.Port)), Path: "/"}
	if token != "" {
		u.RawQuery = url.Values{"token": {token}}.Encode()
	}
	return u.String()
}

// serveUntilDone serves on ln until ctx ends (Ctrl-C: a normal stop).
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener) error {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(shut)
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
