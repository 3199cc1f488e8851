package mqttclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/mqtape/mqtape/mqtt"
)

// unreachable says why no MQTT connection to b could be made, in mqtape's
// words: the cause (refused, no such host, timed out, TLS, not an MQTT
// server), without the library's text ("network Error : dial tcp …"). It
// wraps mqtt.ErrUnreachable.
func unreachable(b mqtt.Broker, err error) error {
	return fmt.Errorf("%w: %s: %s", mqtt.ErrUnreachable, b, dialCause(err))
}

// errTLSClosed: the server closed the connection during the TLS handshake
// (a plain MQTT listener reads the ClientHello as a bad packet and hangs up).
var errTLSClosed = errors.New("closed during the TLS handshake")

func dialCause(err error) string {
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var tlsRecord tls.RecordHeaderError
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("cannot resolve host %q (%s)", dns.Name, strings.TrimPrefix(dns.Err, "lookup "))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: is a broker listening on that port?"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "no answer in time (see --connect-timeout)"
	case errors.As(err, &unknownCA):
		return "TLS: the broker's certificate is signed by an unknown authority (give its CA with --cafile)"
	case errors.As(err, &hostname):
		return "TLS: " + hostname.Error()
	case errors.As(err, &invalid):
		return "TLS: invalid certificate: " + invalid.Error()
	case errors.As(err, &tlsRecord):
		return "TLS handshake failed: the server does not speak TLS on that port (use mqtt:// for plain MQTT)"
	case errors.Is(err, errTLSClosed):
		return "TLS handshake failed: the server hung up; is that port a TLS listener? (use mqtt:// for plain MQTT)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "the broker closed the connection before accepting it"
	case strings.Contains(err.Error(), "non-CONNACK"), strings.Contains(err.Error(), "nil CONNACK"):
		return "the server did not answer CONNECT with CONNACK: is it an MQTT broker?"
	}
	return innermost(err).Error()
}

// lost says why an established connection dropped, in mqtape's words.
func lost(err error) error {
	switch {
	case err == nil:
		return errors.New("the connection closed")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return errors.New("the broker closed the connection")
	case errors.Is(err, syscall.ECONNRESET):
		return errors.New("the connection was reset")
	case isTimeout(err), strings.Contains(err.Error(), "pingresp not received"):
		return errors.New("no answer from the broker within the keepalive interval")
	}
	return innermost(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// innermost drops the wrappers paho puts around a cause (its "network
// Error" sentinel, "dial tcp …" operation text) and returns the cause.
func innermost(err error) error {
	for {
		var next error
		switch e := err.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				if x != packets.ErrorNetworkError {
					next = x
				}
			}
		case *net.OpError:
			next = e.Err
		case *os.SyscallError:
			next = e.Err
		}
		if next == nil {
			return err
		}
		err = next
	}
}
