package mqttclient

import (
	"slices"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

func TestAckStoreKeepsAllButReceivedPublishes(t *testing.T) {
	s := newAckStore()
	s.Open()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID = 1, 7
	rel := packets.NewControlPacket(packets.Pubrel).(*packets.PubrelPacket)
	rel.MessageID = 8
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID = 9

	s.Put("i.7", pub) // a received PUBLISH: not kept
	s.Put("i.8", rel) // a received PUBREL: kept (PUBCOMP after a reconnect)
	s.Put("o.7", pub) // an outgoing PUBLISH awaiting PUBACK: kept
	s.Put("o.9", sub)
	if got := s.Get("i.7"); got != nil {
		t.Errorf("received PUBLISH kept: %v", got)
	}
	for _, k := range []string{"i.8", "o.7", "o.9"} {
		if s.Get(k) == nil {
			t.Errorf("%s not kept", k)
		}
	}
	keys := s.All()
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"i.8", "o.7", "o.9"}) {
		t.Errorf("All() = %v", keys)
	}
	s.Del("i.7") // deleting what was never kept is fine
	s.Del("o.7")
	if s.Get("o.7") != nil {
		t.Error("o.7 not deleted")
	}
	s.Reset()
	if len(s.All()) != 0 {
		t.Errorf("after Reset: %v", s.All())
	}
}
