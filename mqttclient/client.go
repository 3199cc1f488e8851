package mqttclient

import (
	"context"
	"fmt"

	"github.com/mqtape/mqtape/mqtt"
)

// Connect dials the broker and waits for its CONNACK. A refusal returns a
// *RefusedError; failing to reach the broker within ConnectTimeout returns
// an error wrapping ErrUnreachable.
func Connect(ctx context.Context, o mqtt.Options, h mqtt.Handlers) (mqtt.Client, error) {
	switch o.ProtocolVersion {
	case 0, 4:
		return connectPaho(ctx, o, h)
	case 5:
		return connectPaho5(ctx, o, h)
	}
	return nil, fmt.Errorf("%w: MQTT protocol version %d (use 5 or 311)", mqtt.ErrBadURL, o.ProtocolVersion)
}
