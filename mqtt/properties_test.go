package mqtt

import (
	"reflect"
	"testing"
)

func TestPropertiesOfMessage(t *testing.T) {
	if (*Properties)(nil).OfMessage() != nil || (&Properties{SubscriptionIDs: []int{3}}).OfMessage() != nil {
		t.Error("properties with nothing but subscription ids are not the message's")
	}
	p := &Properties{ContentType: "text/plain", SubscriptionIDs: []int{1, 2}}
	got := p.OfMessage()
	if !reflect.DeepEqual(got, &Properties{ContentType: "text/plain"}) || len(p.SubscriptionIDs) != 2 {
		t.Errorf("OfMessage = %+v (original %+v)", got, p)
	}
}
