package mqtt

// Properties are the MQTT 5 PUBLISH properties mqtape records and replays,
// in one form for every part of mqtape: the client adapters convert the
// libraries' types to it, the capture stores it as JSON (the props column)
// and export prints that JSON as "properties". The JSON form has exactly
// these keys, each only when present. Topic aliases are not among them:
// mqtape announces a topic alias maximum of 0, so brokers always send full
// topic names.
type Properties struct {
	ContentType     string         `json:"content_type,omitempty"`
	PayloadFormat   *byte          `json:"payload_format,omitempty"`
	MessageExpiry   *uint32        `json:"message_expiry,omitempty"` // seconds, as recorded
	ResponseTopic   string         `json:"response_topic,omitempty"`
	CorrelationData []byte         `json:"correlation_data_b64,omitempty"` // base64 in JSON
	UserProperties  []UserProperty `json:"user_properties,omitempty"`      // in order, duplicates kept
	SubscriptionIDs []int          `json:"subscription_ids,omitempty"`
}

// UserProperty is one MQTT 5 user property.
type UserProperty struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// IsEmpty reports whether no property is set.
func (p *Properties) IsEmpty() bool {
	return p.ContentType == "" && p.PayloadFormat == nil && p.MessageExpiry == nil && p.ResponseTopic == "" &&
		p.CorrelationData == nil && len(p.UserProperties) == 0 && len(p.SubscriptionIDs) == 0
}

// OfMessage returns the properties that belong to the message itself: a
// copy without the subscription identifiers (they belong to the
// subscription it was received on), or nil when nothing else is set. A
// replay re-sends these; two messages are the same when these are.
func (p *Properties) OfMessage() *Properties {
	if p == nil {
		return nil
	}
	q := *p
	q.SubscriptionIDs = nil
	if q.IsEmpty() {
		return nil
	}
	return &q
}
