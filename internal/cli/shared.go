package cli

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mqtape/mqtape/internal/humanize"
	"github.com/mqtape/mqtape/internal/termsafe"
	"github.com/mqtape/mqtape/mqtt"
	"github.com/mqtape/mqtape/mqttclient"
	"github.com/mqtape/mqtape/replay"
	"github.com/mqtape/mqtape/storage"
)

// Helpers more than one verb uses.

// confirmRemote asks on the terminal before replaying into a broker that
// is not on this machine: replaying into production by mistake is the worst
// accident mqtape can cause. Without a terminal to ask on it refuses (exit
// 2); --yes skips the question.
func confirmRemote(ctx context.Context, b mqtt.Broker, what string, tty bool, in io.Reader, out io.Writer) error {
	if !tty {
		return usagef("%s is not a loopback broker: replaying into it needs confirmation, and there is no terminal to ask on; pass --yes to confirm", b)
	}
	fmt.Fprintf(out, "%s is not a loopback broker: publish %s to it? [y/N] ", b, what)
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(in).ReadString('\n')
		answer <- strings.ToLower(strings.TrimSpace(line))
	}()
	select {
	case a := <-answer:
		if a == "y" || a == "yes" {
			return nil
		}
		return usagef("not confirmed: nothing was sent to %s (pass --yes to skip the question)", b)
	case <-ctx.Done():
		fmt.Fprintln(out)
		return errInterrupted
	}
}

// checkSelection refuses a --session the capture does not have and topic
// rewrites that would produce an invalid topic name, before connecting.
func checkSelection(ctx context.Context, c *storage.Capture, o *playOptions) error {
	if o.query.Session != 0 {
		sessions, err := c.Sessions(ctx)
		if err != nil {
			return err
		}
		found := false
		for _, s := range sessions {
			found = found || s.ID == o.query.Session
		}
		if !found {
			return usagef("--session %d: %s has %s (see mqtape info)", o.query.Session, o.file,
				humanize.Count(int64(len(sessions)), "session", "sessions"))
		}
	}
	p, err := replay.New(c, noPublisher{}, o.config())
	if err != nil {
		return usageError{err}
	}
	topics, err := c.Topics(ctx)
	if err != nil {
		return err
	}
	for _, t := range topics {
		if o.query.Match != nil && !o.query.Match(t.Name) {
			continue
		}
		if _, err := p.Topic(t.Name); err != nil {
			return usageError{err}
		}
	}
	return nil
}

// connect connects to the broker; a refused login says what was missing
// (see explainRefusal).
func connect(ctx context.Context, o mqtt.Options, h mqtt.Handlers) (mqtt.Client, error) {
	c, err := mqttclient.Connect(ctx, o, h)
	return c, explainRefusal(err, o)
}

// explainRefusal adds to a refused login (CONNACK: bad username or
// password, not authorised) what mqtape did not send: no password (a
// username without MQTAPE_PASSWORD, --password-file or --ask-password), or
// no credentials at all. Other refusals (a rejected client id, a broker
// unavailable or busy) are not about credentials and keep their words.
func explainRefusal(err error, o mqtt.Options) error {
	var refused *mqtt.RefusedError
	if !errors.As(err, &refused) || o.Password != "" {
		return err
	}
	switch refused.Code {
	case 4, 5, 0x86, 0x87: // 3.1.1: bad username or password, not authorised; MQTT 5: the same two
	default:
		return err
	}
	if user := cmp.Or(o.Username, o.Broker.Username); user != "" {
		return fmt.Errorf("%w: no password given for %q: set MQTAPE_PASSWORD, --password-file or --ask-password", err, user)
	}
	return fmt.Errorf("%w: no username or password given: use -u USER with MQTAPE_PASSWORD, --password-file or --ask-password", err)
}

// writeJSON writes v as indented JSON with the characters a terminal would
// act on escaped (see termsafe.NewJSONWriter).
func writeJSON(w io.Writer, v any) error {
	jw := termsafe.NewJSONWriter(w)
	enc := json.NewEncoder(jw)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return jw.Flush()
}

// openInputs opens the captures named by args (files, directories of
// captures, globs) read as one capture in time order: the parts of a split
// recording, or several recordings, as merge reads them (storage.OpenSet).
//
// inPlace reads the parts of one split recording where they are
// (storage.MergeOptions.InPlace): for the verbs that only read through the
// capture's read methods. cut passes false: it copies from one capture.
func openInputs(ctx context.Context, cio *cliIO, args []string, inPlace bool) (*storage.Capture, error) {
	files, err := storage.ExpandInputs(args)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	c, err := storage.OpenSet(ctx, files, storage.MergeOptions{Version: version, Host: host, InPlace: inPlace})
	if err != nil && ctx.Err() != nil {
		return nil, errInterrupted
	}
	if err == nil && len(files) > 1 {
		fmt.Fprintf(cio.stderr, "reading %d captures as one (%s … %s)\n", len(files), files[0], files[len(files)-1])
	}
	return c, err
}
