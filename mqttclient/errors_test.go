package mqttclient

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqtape/mqtape/mqtt"
)

// TestUnreachableWording: connection failures as paho returns them
// ("network Error : <cause>") are described in mqtape's words.
func TestUnreachableWording(t *testing.T) {
	b, _ := mqtt.ParseBroker("mqtt://127.0.0.1:1883")
	paho := func(err error) error { return fmt.Errorf("%w : %w", packets.ErrorNetworkError, err) }
	op := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	tests := []struct {
		err  error
		want string
	}{
		{paho(op(os.NewSyscallError("connect", syscall.ECONNREFUSED))), "connection refused: is a broker listening on that port?"},
		{paho(op(&net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true})), `cannot resolve host "nope.invalid" (no such host)`},
		{paho(op(os.ErrDeadlineExceeded)), "no answer in time (see --connect-timeout)"},
		{paho(io.EOF), "the broker closed the connection before accepting it"},
		{paho(errors.New("non-CONNACK first packet received")), "is it an MQTT broker?"},
		{paho(op(errors.New("something else"))), "something else"},
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{io.EOF, "the broker closed the connection"},
		{errors.New("pingresp not received, disconnecting"), "no answer from the broker within the keepalive interval"},
		{op(os.NewSyscallError("read", syscall.ECONNRESET)), "the connection was reset"},
		{nil, "the connection closed"},
	} {
		if got := lost(tt.err); got.Error() != tt.want {
			t.Errorf("lost(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	for _, tt := range tests {
		got := unreachable(b, tt.err)
		if !errors.Is(got, mqtt.ErrUnreachable) || !strings.HasSuffix(got.Error(), tt.want) ||
			strings.Contains(got.Error(), "network Error") || strings.Contains(got.Error(), "dial tcp") {
			t.Errorf("%v: got %q, want …%q", tt.err, got, tt.want)
		}
	}
}
