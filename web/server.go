// Package web is mqtape web: a read-only view of a capture in a browser.
// It serves a small page (embedded, no build step, no CDN) and the JSON API
// the page uses and scripts can too:
//
//	GET /api/info                           the capture's summary (mqtape info --json)
//	GET /api/messages?q=&after=&before=&limit=  messages as mqtape export writes them, and a cursor
//	GET /api/topics                         every topic and its message count
//	GET /api/events?q=&after=               new messages, as server-sent events (follow a recording)
//	GET /api/narrow?q=&topic=               q with its topic terms replaced by topic (the topic tree)
//	GET /api/unsafe                         the characters the page shows visibly (termsafe.Unsafe)
//
// Every other method is refused; the server only reads the capture.
package web

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"iter"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/mqtape/mqtape/decode"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/storage"
)

// Source is what the server reads: a capture opened read-only
// (*storage.Capture), or several read as one.
type Source interface {
	Messages(ctx context.Context, q storage.Query) iter.Seq2[storage.Message, error]
	Topics(ctx context.Context) ([]storage.Topic, error)
	SeqBounds(ctx context.Context) (lo, hi int64, err error)
	TopicCounts(ctx context.Context, from, through int64) (map[int64]int64, error)
}

// DecodeFunc decodes one message (export.Resolver's Decode).
type DecodeFunc func(ctx context.Context, m *storage.Message) (decode.Result, error)

// Options configure a Server.
type Options struct {
	Source Source
	// Name names the capture (its file, or the files read as one) in the
	// page's header and /api/topics.
	Name string
	// Info is the body of /api/info (mqtape info --json).
	Info func(ctx context.Context) (any, error)
	// Decode decodes payloads for the decoded field, the payload preview
	// and the filter's .PATH and metric: terms; nil: payloads as recorded.
	Decode DecodeFunc
	// Token, when set, must come with every request: ?token=T (the page
	// then keeps it in a cookie), a "Authorization: Bearer T" header or
	// the cookie. Without a token the server answers only requests that
	// name a loopback host (no DNS rebinding).
	Token string
	// Poll is how often /api/events looks for new messages (default 250 ms).
	Poll time.Duration
	// ScanBudget is how long one /api/messages request reads the capture
	// for a filter that reads payloads (payload text, payload~REGEX, .PATH
	// terms) before it answers with what it found and a cursor to go on
	// from ("partial": true), so that the page shows the first matches of
	// a search through millions of messages while it goes on; default
	// 100 ms.
	ScanBudget time.Duration
	// Location is the time zone of clock times in filters (default UTC).
	Location *time.Location
}

//go:embed static
var static embed.FS

// Server serves a capture.
type Server struct {
	o      Options
	mux    *http.ServeMux
	assets http.Handler
}

// Limits of /api/messages: the default and the largest page.
const (
	DefaultLimit = 200
	MaxLimit     = 1000
)

const tokenCookie = "mqtape_token"

// csp allows the page's own script, style and data only: no inline
// script or style, no framing, no other origin.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// New returns a server of o.Source.
func New(o Options) *Server {
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.ScanBudget <= 0 {
		o.ScanBudget = 100 * time.Millisecond
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	s := &Server{o: o, mux: http.NewServeMux(), assets: http.FileServerFS(sub)}
	s.mux.HandleFunc("/api/info", s.info)
	s.mux.HandleFunc("/api/messages", s.messages)
	s.mux.HandleFunc("/api/topics", s.topics)
	s.mux.HandleFunc("/api/events", s.events)
	s.mux.HandleFunc("/api/narrow", s.narrow)
	s.mux.HandleFunc("/api/unsafe", s.unsafe)
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errors.New("no such API: "+r.URL.Path))
	})
	s.mux.Handle("/", s.assets)
	return s
}

// ServeHTTP refuses what is not a GET or HEAD, and requests without the
// token, then serves the page or the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer") // the URL may hold the token
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, errors.New("mqtape web is read-only: "+r.Method+" is not allowed"))
		return
	}
	if code, err := s.authorize(w, r); err != nil {
		writeError(w, code, err)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorize checks the token (or, without one, that the request names a
// loopback host). A right ?token= sets the cookie the page's requests
// carry from then on.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (int, error) {
	if s.o.Token == "" {
		if !loopbackHost(r.Host) {
			return http.StatusForbidden, errors.New("this server answers only requests to a loopback address")
		}
		return 0, nil
	}
	var given string
	if t := r.URL.Query().Get("token"); t != "" {
		given = t
	} else if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		given = a
	} else if c, err := r.Cookie(tokenCookie); err == nil {
		given = c.Value
	}
	switch {
	case given == "":
		w.Header().Set("WWW-Authenticate", `Bearer realm="mqtape web"`)
		return http.StatusUnauthorized, errors.New("token required: open the URL mqtape web printed (?token=…)")
	case subtle.ConstantTimeCompare([]byte(given), []byte(s.o.Token)) != 1:
		return http.StatusForbidden, errors.New("wrong token")
	}
	if r.URL.Query().Has("token") {
		http.SetCookie(w, &http.Cookie{Name: tokenCookie, Value: s.o.Token, Path: "/", HttpOnly: true,
			SameSite: http.SameSiteStrictMode})
	}
	return 0, nil
}

// loopbackHost reports whether a Host header names this machine's
// loopback interface (an IP literal or localhost).
func loopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// writeError answers {"error": "..."}.
func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	// As info --json and export write JSON: the characters a terminal
	// acts on escaped as \uXXXX (for curl), the same values.
	jw := termsafe.NewJSONWriter(w)
	json.NewEncoder(jw).Encode(v)
	jw.Flush()
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	if s.o.Info == nil {
		writeError(w, http.StatusNotFound, errors.New("no summary of this capture"))
		return
	}
	v, err := s.o.Info(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
