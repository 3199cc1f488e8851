package cli

import (
	"io"
	"math"
	"os"

	"golang.org/x/term"

	"github.com/mqtape/mqtape/replay"
)

// keyAction is what a key pressed during play asks for.
type keyAction int

const (
	keyTogglePause keyAction = iota + 1
	keyStep
	keyFaster
	keySlower
	keyInterrupt
)

// parseKeys turns raw terminal input into actions.
func parseKeys(b []byte) []keyAction {
	var out []keyAction
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == ' ':
			out = append(out, keyTogglePause)
		case c == '+' || c == '=':
			out = append(out, keyFaster)
		case c == '-' || c == '_':
			out = append(out, keySlower)
		case c == 0x03 || c == 'q':
			out = append(out, keyInterrupt)
		case c == 0x1b && i+2 < len(b) && (b[i+1] == '[' || b[i+1] == 'O'):
			if b[i+2] == 'C' {
				out = append(out, keyStep)
			}
			i += 2
		}
	}
	return out
}

// applyKey carries out one action on the player.
func applyKey(p *replay.Player, a keyAction, interrupt func()) {
	switch a {
	case keyTogglePause:
		p.TogglePause()
	case keyStep:
		p.Step()
	case keyFaster, keySlower:
		s := p.Speed()
		if math.IsInf(s, 1) {
			return
		}
		if a == keyFaster {
			s = min(s*2, 1024)
		} else {
			s = max(s/2, 1.0/1024)
		}
		_ = p.SetSpeed(s)
	case keyInterrupt:
		interrupt()
	}
}

// startKeys reads keys from stdin in raw mode while play runs, when stdin
// is a terminal; the returned function restores the terminal. Raw mode
// turns Ctrl-C into a key, which interrupts like the signal would.
func startKeys(stdin io.Reader, p *replay.Player, interrupt func()) (restore func()) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	fd := int(f.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return func() {}
	}
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			for _, a := range parseKeys(buf[:n]) {
				applyKey(p, a, interrupt)
			}
		}
	}()
	return func() { _ = term.Restore(fd, old) }
}
