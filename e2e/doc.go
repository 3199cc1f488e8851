// Package e2e holds mqtape's end-to-end tests: they build and run the real
// binary, start real brokers (mosquitto, NATS, mochi, `mqtape serve`) and
// run whole record, play, import and serve flows through cli.Run. Tests of
// parsing and of the command line's internals stay beside their code in
// internal/cli.
package e2e
