package cli

import "golang.org/x/sys/unix"

// echoOff turns the terminal's echo off before the password prompt is
// printed (term.ReadPassword turns it off only once it starts reading, so a
// fast typist's first characters would be echoed). The caller restores the
// terminal's state.
func echoOff(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Lflag &^= unix.ECHO
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
