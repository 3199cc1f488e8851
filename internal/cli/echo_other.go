//go:build !linux

package cli

// echoOff is a no-op here: term.ReadPassword turns echo off when it starts
// reading.
func echoOff(int) error { return nil }
