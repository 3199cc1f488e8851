package cli

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/storage"
	"github.com/mqtape/mqtape/timespec"
	"github.com/mqtape/mqtape/topic"
)

// connFlags are the broker connection flags shared by record and play.
type connFlags struct {
	broker         string
	clientID       string
	username       string
	passwordFile   string
	keepalive      time.Duration
	connectTimeout time.Duration
	cafile         string
	cert           string
	key            string
	insecure       bool
	protocol       string
	askPassword    bool
	// asRecorded: -V defaults to the capture's version (play); the verb
	// resolves it before calling options.
	asRecorded bool
	// prompt reads the password for --ask-password (nil: from the
	// terminal, without echo); tests replace it.
	prompt func(prompt string) (string, error)
}

func (c *connFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&c.broker, "broker", "b", "", "broker URL: mqtt://, mqtts://, ws://, wss://host[:port] (default $MQTAPE_BROKER or "+mqtt.DefaultBroker+")")
	fs.StringVar(&c.clientID, "client-id", "", "MQTT client id (default: unique per run)")
	fs.StringVarP(&c.username, "username", "u", "", "username (password from $MQTAPE_PASSWORD or --password-file)")
	fs.StringVar(&c.passwordFile, "password-file", "", "read the password from this file (first line)")
	fs.BoolVar(&c.askPassword, "ask-password", false, "prompt for the password on the terminal (not echoed)")
	fs.DurationVar(&c.keepalive, "keepalive", 60*time.Second, "MQTT keepalive interval")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 10*time.Second, "give up connecting after this long")
	fs.StringVar(&c.cafile, "cafile", "", "PEM CA certificates to verify the broker (default: system roots)")
	fs.StringVar(&c.cert, "cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&c.key, "key", "", "PEM private key of --cert")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify the broker's TLS certificate (testing only)")
	if c.asRecorded {
		fs.StringVarP(&c.protocol, "protocol-version", "V", "", "MQTT version: 311 (3.1.1) or 5 (default: the version the capture was recorded with)")
	} else {
		fs.StringVarP(&c.protocol, "protocol-version", "V", "311", "MQTT version: 311 (3.1.1) or 5")
	}
}

// version returns the MQTT protocol level -V asks for: 4 (3.1.1), 5, or 0
// when not given (asRecorded).
func (c *connFlags) version() (int, error) {
	switch c.protocol {
	case "":
		if c.asRecorded {
			return 0, nil
		}
		return 4, nil
	case "311", "3.1.1", "4":
		return 4, nil
	case "5", "50", "5.0":
		return 5, nil
	}
	return 0, usagef("--protocol-version %q: use 311 or 5", c.protocol)
}

// options resolves the flags and environment into client options. The
// password comes only from MQTAPE_PASSWORD or --password-file.
func (c *connFlags) options(cio *cliIO, prefix string) (mqtt.Options, error) {
	raw := c.broker
	if raw == "" {
		raw = cio.getenv("MQTAPE_BROKER")
	}
	if raw == "" {
		raw = mqtt.DefaultBroker
	}
	b, err := mqtt.ParseBroker(raw)
	if err != nil {
		return mqtt.Options{}, err
	}
	if c.keepalive < time.Second && c.keepalive != 0 {
		return mqtt.Options{}, usagef("--keepalive %s: must be at least 1s", c.keepalive)
	}
	if c.connectTimeout <= 0 {
		return mqtt.Options{}, usagef("--connect-timeout must be positive")
	}
	o := mqtt.Options{Broker: b, ClientID: c.clientID, Username: c.username, KeepAlive: c.keepalive,
		ConnectTimeout: c.connectTimeout, CleanSession: true,
		TLS: mqtt.TLSOptions{CAFile: c.cafile, CertFile: c.cert, KeyFile: c.key, Insecure: c.insecure}}
	if o.ProtocolVersion, err = c.version(); err != nil {
		return mqtt.Options{}, err
	}
	if o.ProtocolVersion == 0 {
		o.ProtocolVersion = 4
	}
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1e6)
	}
	if len(o.ClientID) > 23 && c.clientID == "" {
		o.ClientID = o.ClientID[:23] // the MQTT 3.1.1 minimum every broker accepts
	}
	switch {
	case c.askPassword && c.passwordFile != "":
		return mqtt.Options{}, usagef("--ask-password and --password-file: choose one")
	case c.askPassword:
		prompt := c.prompt
		if prompt == nil {
			prompt = readPasswordTTY
		}
		user := o.Username
		if user == "" {
			user = b.Username
		}
		who := b.String()
		if user != "" {
			who = user + " at " + who
		}
		pw, err := prompt(fmt.Sprintf("Password for %s: ", who))
		if err != nil {
			return mqtt.Options{}, err
		}
		o.Password = pw
	case c.passwordFile != "":
		data, err := os.ReadFile(c.passwordFile)
		if err != nil {
			return mqtt.Options{}, usagef("--password-file: %v", err)
		}
		o.Password, _, _ = strings.Cut(string(data), "\n")
		o.Password = strings.TrimSuffix(o.Password, "\r")
	case cio.getenv("MQTAPE_PASSWORD") != "":
		o.Password = cio.getenv("MQTAPE_PASSWORD")
	}
	return o, nil
}

// selectFlags choose messages from a capture: shared by export and play.
type selectFlags struct {
	topics   []string
	exclude  []string
	from, to string
	session  int64
}

func (s *selectFlags) register(fs *pflag.FlagSet, exclude bool) {
	fs.StringArrayVarP(&s.topics, "topic", "t", nil, "only topics matching this MQTT filter (repeatable; + and # wildcards)")
	if exclude {
		fs.StringArrayVarP(&s.exclude, "exclude", "x", nil, "leave out topics matching this MQTT filter (repeatable)")
	}
	fs.StringVar(&s.from, "from", "", "start at this offset into each session (90s, 1m30s) or RFC 3339 time")
	fs.StringVar(&s.to, "to", "", "stop before this offset (90s, 1m30s) or RFC 3339 time")
	fs.Int64Var(&s.session, "session", 0, "only this recording session (see mqtape info)")
}

// query validates the selection and turns it into a storage query.
func (s *selectFlags) query() (storage.Query, error) {
	var q storage.Query
	if err := topic.ValidateAll(s.topics); err != nil {
		return q, err
	}
	if err := topic.ValidateAll(s.exclude); err != nil {
		return q, err
	}
	if s.session < 0 {
		return q, usagef("--session %d: sessions are numbered from 1", s.session)
	}
	q.Session = s.session
	if len(s.topics) > 0 || len(s.exclude) > 0 {
		inc, exc := topic.Set(s.topics), s.exclude
		q.Match = func(name string) bool {
			if !inc.Match(name) {
				return false
			}
			for _, f := range exc {
				if topic.Match(f, name) {
					return false
				}
			}
			return true
		}
	}
	for _, b := range []struct {
		flag, val string
		off, abs  **int64
	}{{"--from", s.from, &q.FromOffset, &q.FromTime}, {"--to", s.to, &q.ToOffset, &q.ToTime}} {
		if b.val == "" {
			continue
		}
		p, err := timespec.Parse(b.val)
		if err != nil {
			return q, fmt.Errorf("%s: %w", b.flag, err)
		}
		if p.Absolute {
			v := p.Time.UnixNano()
			*b.abs = &v
		} else {
			v := int64(p.Offset)
			*b.off = &v
		}
	}
	reversed := (q.FromOffset != nil && q.ToOffset != nil && *q.FromOffset >= *q.ToOffset) ||
		(q.FromTime != nil && q.ToTime != nil && *q.FromTime >= *q.ToTime)
	if reversed {
		return q, usagef("--from %s is not before --to %s: the range [from, to) is empty", s.from, s.to)
	}
	return q, nil
}

// readPasswordTTY prompts on the controlling terminal and reads a line
// without echo. Ctrl-C at the prompt restores the terminal and interrupts.
func readPasswordTTY(prompt string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", usagef("--ask-password needs a terminal to ask on (%v); use $MQTAPE_PASSWORD or --password-file", err)
	}
	defer tty.Close()
	fd := int(tty.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return "", usagef("--ask-password needs a terminal to ask on (%v); use $MQTAPE_PASSWORD or --password-file", err)
	}
	if err := echoOff(fd); err != nil {
		return "", usagef("--ask-password: turn the terminal's echo off: %v", err)
	}
	defer term.Restore(fd, state)
	fmt.Fprint(tty, prompt)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sig)
	type result struct {
		pw  []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		pw, err := term.ReadPassword(fd)
		done <- result{pw, err}
	}()
	select {
	case r := <-done:
		fmt.Fprintln(tty)
		if r.err != nil {
			return "", fmt.Errorf("--ask-password: read the terminal: %w", r.err)
		}
		return strings.TrimSuffix(string(r.pw), "\r"), nil
	case <-sig:
		_ = term.Restore(fd, state)
		fmt.Fprintln(tty)
		return "", errInterrupted
	}
}

// registerCompress defines --compress, the one flag of every verb that
// writes captures with payloads compressed (record, serve, cut, merge).
func registerCompress(fs *pflag.FlagSet, on *bool) {
	fs.BoolVar(on, "compress", false, "store payloads zstd-compressed with a dictionary the capture trains on its first "+
		"1000 payloads (or 256 KiB of them); every verb reads them, info shows the ratio")
}
