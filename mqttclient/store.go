package mqttclient

import (
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// ackStore is paho's in-memory session store without copies of received
// PUBLISH packets. paho files every received QoS 1/2 PUBLISH under "i.<id>"
// until its acknowledgement is sent, yet never reads one back except to
// discard it after a reconnect (the broker redelivers instead). For a
// recorder that is a map insert, a map delete and two formatted keys per
// message, and a reference that keeps the payload alive longer. Everything
// else — outgoing SUBSCRIBE and PUBLISH packets awaiting their
// acknowledgement, received PUBRELs — is kept exactly as paho.MemoryStore
// keeps it, and resent after a reconnect.
type ackStore struct {
	mu sync.Mutex
	m  map[string]packets.ControlPacket
}

func newAckStore() *ackStore { return &ackStore{m: make(map[string]packets.ControlPacket)} }

func (s *ackStore) Open()  {}
func (s *ackStore) Close() {}

func (s *ackStore) Put(key string, p packets.ControlPacket) {
	if _, ok := p.(*packets.PublishPacket); ok && strings.HasPrefix(key, "i.") {
		return
	}
	s.mu.Lock()
	s.m[key] = p
	s.mu.Unlock()
}

func (s *ackStore) Get(key string) packets.ControlPacket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

func (s *ackStore) All() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Keys(s.m))
}

func (s *ackStore) Del(key string) {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
}

func (s *ackStore) Reset() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}
