package mqtt

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrBadURL is wrapped by every broker URL error.
var ErrBadURL = errors.New("invalid broker URL")

// DefaultBroker is used when neither --broker nor MQTAPE_BROKER is set.
const DefaultBroker = "mqtt://127.0.0.1:1883"

// Broker is a parsed broker address.
type Broker struct {
	Scheme   string // tcp, ssl, ws or wss (paho's names)
	Host     string // host:port
	Path     string // websocket path
	Username string // from the URL's user info, if any
}

// TLS reports whether the connection is encrypted.
func (b Broker) TLS() bool { return b.Scheme == "ssl" || b.Scheme == "wss" }

// DialURL returns the URL in the form the client libraries dial
// (tcp://, ssl://, ws://, wss://), without user info.
func (b Broker) DialURL() string {
	return b.Scheme + "://" + b.Host + b.Path
}

// String returns the broker as a user-facing URL without credentials.
func (b Broker) String() string {
	s := map[string]string{"tcp": "mqtt", "ssl": "mqtts", "ws": "ws", "wss": "wss"}[b.Scheme]
	return s + "://" + b.Host + b.Path
}

// ParseBroker parses mqtt://, tcp:// (port 1883), mqtts://, ssl://, tls://
// (8883), ws:// (80) and wss:// (443) URLs, or a bare host[:port] (mqtt).
// A password in the URL is refused: it would show in the process list.
func ParseBroker(s string) (Broker, error) {
	if s == "" {
		return Broker{}, fmt.Errorf("%w: empty", ErrBadURL)
	}
	if !strings.Contains(s, "://") {
		s = "mqtt://" + s
	}
	// Errors quote the URL without its password, parsed or not.
	raw, redacted := s, redactPassword(s)
	s = redacted
	u, err := url.Parse(raw)
	if err != nil {
		if redacted != raw { // the parser's reason may quote a piece of the password
			return Broker{}, fmt.Errorf("%w %q: cannot be parsed", ErrBadURL, s)
		}
		return Broker{}, fmt.Errorf("%w %q: %v", ErrBadURL, s, errors.Unwrap(err))
	}
	var b Broker
	var port string
	switch strings.ToLower(u.Scheme) {
	case "mqtt", "tcp":
		b.Scheme, port = "tcp", "1883"
	case "mqtts", "ssl", "tls":
		b.Scheme, port = "ssl", "8883"
	case "ws":
		b.Scheme, port = "ws", "80"
	case "wss":
		b.Scheme, port = "wss", "443"
	default:
		return Broker{}, fmt.Errorf("%w %q: unknown scheme %q (use mqtt, mqtts, ws or wss)", ErrBadURL, s, u.Scheme)
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			return Broker{}, fmt.Errorf("%w: a password in the URL shows in the process list; use MQTAPE_PASSWORD or --password-file", ErrBadURL)
		}
		b.Username = u.User.Username()
	}
	host := u.Hostname()
	if host == "" {
		return Broker{}, fmt.Errorf("%w %q: no host", ErrBadURL, s)
	}
	if p := u.Port(); p != "" {
		port = p
	}
	var n int
	if _, err := fmt.Sscanf(port, "%d", &n); err != nil || n < 1 || n > 65535 || fmt.Sprint(n) != port {
		return Broker{}, fmt.Errorf("%w %q: bad port %q", ErrBadURL, s, port)
	}
	b.Host = net.JoinHostPort(host, port)
	if b.Scheme == "ws" || b.Scheme == "wss" {
		b.Path = u.Path
		if b.Path == "" {
			b.Path = "/mqtt"
		}
	} else if u.Path != "" && u.Path != "/" {
		return Broker{}, fmt.Errorf("%w %q: a path is only meaningful for ws:// and wss://", ErrBadURL, s)
	}
	return b, nil
}

// redactPassword returns the URL s with what may be a password (between
// the first ':' after the scheme and the last '@') replaced by "xxxxx". It
// works on text url.Parse refuses, and errs on the side of hiding: a
// password may hold '/', '?', '#' or '@'.
func redactPassword(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	at := strings.LastIndex(rest, "@")
	if !ok || at < 0 {
		return s
	}
	user, _, hasPw := strings.Cut(rest[:at], ":")
	if !hasPw {
		return s
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// IsLoopback reports whether the broker's host is a loopback address or
// "localhost".
func (b Broker) IsLoopback() bool {
	host, _, _ := net.SplitHostPort(b.Host)
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
