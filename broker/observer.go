package broker

import (
	"bytes"
	"encoding/json"
	"sync"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqtape/mqtape/mqtt"
)

// Event kinds an Observer receives. Their detail is a JSON object.
const (
	EventClientConnect    = "client_connect"     // {"client_id","username","clean_session","keepalive","protocol","remote"}
	EventClientDisconnect = "client_disconnect"  // {"client_id","error","will_sent"}
	EventClientSubscribe  = "client_subscribe"   // {"client_id","filters":[{"filter","qos","granted"}]}
	EventClientUnsub      = "client_unsubscribe" // {"client_id","filters":[...]}
	EventBrokerDrop       = "broker_drop"        // {"client_id","topic"}: the broker dropped a message to a slow client
	EventAuthFailed       = "auth_failed"        // {"client_id","username","remote","reason"}: a refused login (never the password)
	EventAcceptError      = "accept_error"       // {"listener","error"}: accepting failed (e.g. out of file descriptors); retried
	EventAcceptResumed    = "accept_resumed"     // {"listener","failures","failing_ms"}: accepting works again
	EventConnectTimeout   = "connect_timeout"    // {"remote","timeout_ms"}: closed, no CONNECT in time
	EventPacketTooLarge   = "packet_too_large"   // {"remote","claimed","limit"}: closed, first packet over 64 KiB
)

// Observer sees what the broker routes. Its methods are called on client
// goroutines (a publisher's read loop) and must not block.
type Observer interface {
	// Published is called for every PUBLISH the broker accepted, before it
	// acknowledges and routes it, and for every will message it sent, with
	// the publisher's client id, the retain flag as published and the
	// publisher's packet id (0 for QoS 0 and wills). payload is the
	// caller's to keep. props are an MQTT 5 publisher's properties (nil
	// for 3.1.1 or none); topic aliases are already resolved into topic.
	Published(clientID, topic string, payload []byte, qos byte, retain bool, packetID uint16, props *mqtt.Properties)
	// Event reports connects, disconnects, (un)subscriptions and drops.
	Event(kind, detail string)
}

// DurableObserver is an Observer that makes QoS 1/2 messages safe (in mqtape
// serve: in the capture's spool) after Published returned. The broker then
// holds every PUBACK and PUBREC until the observer has made safe all the
// QoS 1/2 messages it was handed before the acknowledgement was written, so
// an acknowledged message survives the process being killed.
type DurableObserver interface {
	Observer
	// Handed returns how many QoS 1/2 messages Published took so far.
	Handed() uint64
	// Safe returns how many of them are safe (it never exceeds Handed).
	Safe() uint64
	// NotifySafe sets fn, to be called whenever Safe grew; fn does not block.
	NotifySafe(fn func())
}

// observerHook adapts an Observer to mochi's hook interface.
type observerHook struct {
	mochi.HookBase
	o        Observer
	willSent sync.Map // *mochi.Client → true, between OnWillSent and OnDisconnect
}

func (h *observerHook) ID() string { return "mqtape-observer" }

func (h *observerHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnPublish, mochi.OnWillSent, mochi.OnSessionEstablished, mochi.OnDisconnect,
		mochi.OnSubscribed, mochi.OnUnsubscribed, mochi.OnPublishDropped}, []byte{b})
}

// OnPublish runs in the publisher's read loop after the ACL check and
// before mochi acknowledges and routes the message (OnPublished would come
// after the PUBACK is written). It hands the payload over without a copy:
// mochi reads every packet into a buffer of its own and never writes into
// it afterwards (subscribers and the retained store share it too).
func (h *observerHook) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	h.o.Published(cl.ID, pk.TopicName, pk.Payload, pk.FixedHeader.Qos, pk.FixedHeader.Retain, pk.PacketID, props(cl, pk))
	return pk, nil
}

// props converts an MQTT 5 PUBLISH's properties.
func props(cl *mochi.Client, pk packets.Packet) *mqtt.Properties {
	if cl.Properties.ProtocolVersion < 5 {
		return nil
	}
	pp := pk.Properties
	p := &mqtt.Properties{ContentType: pp.ContentType, ResponseTopic: pp.ResponseTopic,
		CorrelationData: bytes.Clone(pp.CorrelationData)}
	if pp.PayloadFormatFlag {
		f := pp.PayloadFormat
		p.PayloadFormat = &f
	}
	if pp.MessageExpiryInterval > 0 {
		e := pp.MessageExpiryInterval
		p.MessageExpiry = &e
	}
	for _, u := range pp.User {
		p.UserProperties = append(p.UserProperties, mqtt.UserProperty{Key: u.Key, Value: u.Val})
	}
	if p.ContentType == "" && p.ResponseTopic == "" && p.CorrelationData == nil && p.PayloadFormat == nil &&
		p.MessageExpiry == nil && p.UserProperties == nil {
		return nil
	}
	return p
}

func (h *observerHook) OnWillSent(cl *mochi.Client, pk packets.Packet) {
	h.willSent.Store(cl, true)
	h.o.Published(cl.ID, pk.TopicName, bytes.Clone(pk.Payload), pk.FixedHeader.Qos, pk.FixedHeader.Retain, 0, props(cl, pk))
}

func (h *observerHook) event(kind string, v map[string]any) {
	b, _ := json.Marshal(v)
	h.o.Event(kind, string(b))
}

func (h *observerHook) OnSessionEstablished(cl *mochi.Client, pk packets.Packet) {
	h.event(EventClientConnect, map[string]any{"client_id": cl.ID, "username": string(cl.Properties.Username),
		"clean_session": pk.Connect.Clean, "keepalive": pk.Connect.Keepalive,
		"protocol": cl.Properties.ProtocolVersion, "remote": cl.Net.Remote})
}

func (h *observerHook) OnDisconnect(cl *mochi.Client, err error, expire bool) {
	_, sent := h.willSent.LoadAndDelete(cl)
	v := map[string]any{"client_id": cl.ID, "will_sent": sent}
	if err != nil {
		v["error"] = err.Error()
	}
	h.event(EventClientDisconnect, v)
}

func filters(pk packets.Packet, codes []byte) []map[string]any {
	var out []map[string]any
	for i, f := range pk.Filters {
		m := map[string]any{"filter": f.Filter, "qos": f.Qos}
		if i < len(codes) {
			m["granted"] = codes[i]
		}
		out = append(out, m)
	}
	return out
}

func (h *observerHook) OnSubscribed(cl *mochi.Client, pk packets.Packet, codes []byte) {
	h.event(EventClientSubscribe, map[string]any{"client_id": cl.ID, "filters": filters(pk, codes)})
}

// OnUnsubscribed is also called when a client goes away, with the filters
// it had; a client that had none is not reported.
func (h *observerHook) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	if len(pk.Filters) == 0 {
		return
	}
	h.event(EventClientUnsub, map[string]any{"client_id": cl.ID, "filters": filters(pk, nil)})
}

func (h *observerHook) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	h.event(EventBrokerDrop, map[string]any{"client_id": cl.ID, "topic": pk.TopicName})
}

// ackHook corrects what mochi sends: a QoS 1 PUBACK carries the reason
// code 0x01 (mochi takes it from the SUBACK's "granted QoS 1"), which is no
// PUBACK reason code, and MQTT 5 clients refuse it; the CONNACK tells MQTT
// 5 clients the broker's maximum packet size; and an MQTT 3.1.1 client is
// never sent a DISCONNECT (mochi sends one on shutdown, session takeover
// and a refused publish): a server DISCONNECT exists only in MQTT 5, and
// 3.1.1 clients (mosquitto_sub: "A network protocol error occurred") take
// it as a protocol violation. Its connection is closed instead, which is
// how a 3.1.1 server ends a session.
type ackHook struct {
	mochi.HookBase
	maxPacket uint32
}

func (h *ackHook) ID() string { return "mqtape-acks" }

func (h *ackHook) Provides(b byte) bool { return b == mochi.OnPacketEncode }

// validAckCodes are the reason codes MQTT 5 allows per packet type (3.4.2.1,
// 3.5.2.1, 3.6.2.1, 3.7.2.1).
var validAckCodes = map[byte][]byte{
	packets.Puback:  {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
	packets.Pubrec:  {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99},
	packets.Pubrel:  {0x00, 0x92},
	packets.Pubcomp: {0x00, 0x92},
}

func (h *ackHook) OnPacketEncode(cl *mochi.Client, pk packets.Packet) packets.Packet {
	switch t := pk.FixedHeader.Type; t {
	case packets.Puback, packets.Pubrec, packets.Pubrel, packets.Pubcomp:
		if !bytes.Contains(validAckCodes[t], []byte{pk.ReasonCode}) {
			pk.ReasonCode = 0x00 // a success under another packet's name
		}
	case packets.Connack:
		pk.Properties.MaximumPacketSize = h.maxPacket
	case packets.Disconnect:
		if cl.Properties.ProtocolVersion < 5 {
			// Closed before it is written: the write fails, which mochi
			// ignores when it is disconnecting the client anyway.
			cl.Stop(packets.Code{Code: pk.ReasonCode, Reason: pk.Properties.ReasonString})
		}
	}
	return pk
}
