package storage

import (
	"time"

	"github.com/mqtape/mqtape/mqtt"
)

// Message is one recorded MQTT PUBLISH.
type Message struct {
	Seq       int64  // arrival order across the file; assigned on write
	Session   int64  // recording session id
	TimeNS    int64  // wall-clock receive time, Unix ns
	OffsetNS  int64  // monotonic ns since the session started
	Topic     string // topic name
	QoS       byte
	Retain    bool // retain flag as received
	FromStore bool // sent from the broker's retained store (MQTT 3.1.1: same as Retain for a subscriber)
	Dup       bool
	PacketID  uint16
	Payload   []byte
	// PayloadOmitted: a read with Query.MaxPayload left the payload out
	// (Payload is nil); Capture.Payload reads it.
	PayloadOmitted bool
	// ClientID is the publisher's client id when the capture was recorded
	// inside the broker (mqtape serve); empty for subscriber recordings.
	// Filled by Messages and Get (format version 2 and later).
	ClientID string
	// Props are the MQTT 5 properties (nil: none). Format version 3.
	Props *mqtt.Properties
}

// Time returns the receive time as a time.Time in UTC.
func (m *Message) Time() time.Time { return time.Unix(0, m.TimeNS).UTC() }

// Offset returns the offset since the session started.
func (m *Message) Offset() time.Duration { return time.Duration(m.OffsetNS) }

// Event kinds written by mqtape. Readers must accept kinds they do not know.
const (
	EventConnected      = "connected"
	EventConnectionLost = "connection_lost"
	EventReconnected    = "reconnected"
	EventSubscribed     = "subscribed"
	EventSubscribeDeny  = "subscription_denied"
	EventQueueOverflow  = "queue_overflow"
	EventBrokerDropped  = "broker_dropped"
	EventStopped        = "stopped"
	EventOffFilter      = "off_filter"
	EventDuplicate      = "duplicate_skipped"
	EventSpoolRecovered = "spool_recovered"
	// Broker-side (mqtape serve) events; Detail is JSON.
	EventClientConnect    = "client_connect"
	EventClientDisconnect = "client_disconnect"
	EventClientSubscribe  = "client_subscribe"
	EventClientUnsub      = "client_unsubscribe"
	EventBrokerDrop       = "broker_drop"
	EventAuthFailed       = "auth_failed"
	EventAcceptError      = "accept_error"
	EventAcceptResumed    = "accept_resumed"
	EventConnectTimeout   = "connect_timeout"
	EventPacketTooLarge   = "packet_too_large"
)

// Event is a notable thing that happened during a session.
type Event struct {
	ID       int64
	Session  int64
	TimeNS   int64
	OffsetNS int64
	Kind     string
	Detail   string
}

// Filter is one subscription of a session and what the broker granted.
type Filter struct {
	Filter  string `json:"filter"`
	QoS     byte   `json:"qos"`
	Granted int    `json:"granted"` // granted QoS, or 128 (0x80) when refused
}

// SessionInfo describes one recording session.
type SessionInfo struct {
	ID           int64
	Source       string // "subscriber", "broker", "import", "cut", "merge"
	Broker       string // URL without credentials
	ClientID     string
	Protocol     int // 4 = MQTT 3.1.1, 5 = MQTT 5
	CleanSession bool
	Filters      []Filter
	StartedNS    int64
	LastNS       int64 // last flush; 0 when nothing flushed
	EndedNS      int64 // 0 while recording or when the recorder crashed
	StopReason   string
	Dropped      int64
	Version      string // mqtape version
	Host         string
}

// Closed reports whether the session was ended cleanly.
func (s *SessionInfo) Closed() bool { return s.EndedNS != 0 }

// EndNS returns the best known end: the clean end, else the last flush, else the start.
func (s *SessionInfo) EndNS() int64 {
	switch {
	case s.EndedNS != 0:
		return s.EndedNS
	case s.LastNS != 0:
		return s.LastNS
	}
	return s.StartedNS
}
