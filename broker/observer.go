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
)

// Observer sees what the broker routes. Its methods are called on client
// goroutines (a publisher's read loop) and must not block.
type Observer interface {
	// Published is called for every PUBLISH the broker accepted and routed,
	// and for every will message it sent, with the publisher's client id
	// and the retain flag as published. payload is the caller's to keep.
	// props are an MQTT 5 publisher's properties (nil for 3.1.1 or none);
	// topic aliases are already resolved into topic.
	Published(clientID, topic string, payload []byte, qos byte, retain bool, props *mqtt.Properties)
	// Event reports connects, disconnects, (un)subscriptions and drops.
	Event(kind, detail string)
}

// observerHook adapts an Observer to mochi's hook interface.
type observerHook struct {
	mochi.HookBase
	o        Observer
	willSent sync.Map // *mochi.Client → true, between OnWillSent and OnDisconnect
}

func (h *observerHook) ID() string { return "mqtape-observer" }

func (h *observerHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mochi.OnPublished, mochi.OnWillSent, mochi.OnSessionEstablished, mochi.OnDisconnect,
		mochi.OnSubscribed, mochi.OnUnsubscribed, mochi.OnPublishDropped}, []byte{b})
}

// OnPublished hands the payload over without a copy: mochi reads every
// packet into a buffer of its own and never writes into it afterwards
// (subscribers and the retained store share it too).
func (h *observerHook) OnPublished(cl *mochi.Client, pk packets.Packet) {
	h.o.Published(cl.ID, pk.TopicName, pk.Payload, pk.FixedHeader.Qos, pk.FixedHeader.Retain, props(cl, pk))
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
	h.o.Published(cl.ID, pk.TopicName, bytes.Clone(pk.Payload), pk.FixedHeader.Qos, pk.FixedHeader.Retain, props(cl, pk))
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

func (h *observerHook) OnUnsubscribed(cl *mochi.Client, pk packets.Packet) {
	h.event(EventClientUnsub, map[string]any{"client_id": cl.ID, "filters": filters(pk, nil)})
}

func (h *observerHook) OnPublishDropped(cl *mochi.Client, pk packets.Packet) {
	h.event(EventBrokerDrop, map[string]any{"client_id": cl.ID, "topic": pk.TopicName})
}
