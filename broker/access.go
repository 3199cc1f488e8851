package broker

import (
	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// accessHook adapts Options.Authenticate and Options.Allow to mochi's hook
// interface; a nil function allows.
type accessHook struct {
	mochi.HookBase
	authenticate func(clientID, username string, password []byte) bool
	allow        func(clientID, topic string, write bool) bool
	b            *Broker // records refused logins
}

func (h *accessHook) ID() string { return "mqtape-access" }

func (h *accessHook) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck
}

func (h *accessHook) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	if h.authenticate == nil || h.authenticate(cl.ID, string(pk.Connect.Username), pk.Connect.Password) {
		return true
	}
	h.b.event(EventAuthFailed, map[string]any{"client_id": cl.ID, "username": string(pk.Connect.Username),
		"remote": cl.Net.Remote, "reason": "bad username or password"})
	return false
}

func (h *accessHook) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	return h.allow == nil || h.allow(cl.ID, topic, write)
}
