// MQTT 5 publisher for mqtape's interop test: connects to the URL given as
// argv[2] with MQTT.js, publishes argv[3] messages at QoS 1 and as many at
// QoS 2 with user properties, content type, response topic, correlation
// data and message expiry, waiting for each acknowledgement (MQTT.js checks
// its reason code and fails on an invalid one), and prints one JSON line per
// acknowledged message, then {"done":true}. Exits 1 on any error.
'use strict';
const mqtt = require('mqtt');

const url = process.argv[2];
const n = Number(process.argv[3] || 5);
const client = mqtt.connect(url, { protocolVersion: 5, clientId: 'mqttjs-v5', reconnectPeriod: 0, connectTimeout: 5000 });

function fail(err) {
  console.error('mqttjs: ' + (err && err.message ? err.message : err));
  process.exit(1);
}
client.on('error', fail);
client.on('close', () => { if (!finished) fail('connection closed before all acknowledgements'); });
let finished = false;

client.on('connect', async (connack) => {
  console.log(JSON.stringify({ connack: connack.properties || {} }));
  try {
    for (const qos of [1, 2]) {
      for (let i = 0; i < n; i++) {
        const topic = `js/q${qos}/${i}`;
        const properties = {
          userProperties: { k: 'v', idx: String(i) },
          contentType: 'application/json',
          responseTopic: `js/reply/${i}`,
          correlationData: Buffer.from(`corr-${qos}-${i}`),
          messageExpiryInterval: 3600,
        };
        const pkt = await client.publishAsync(topic, JSON.stringify({ qos, i }), { qos, properties });
        console.log(JSON.stringify({ topic, qos, reasonCode: (pkt && pkt.reasonCode) || 0 }));
      }
    }
  } catch (err) {
    fail(err);
  }
  finished = true;
  await client.endAsync();
  console.log(JSON.stringify({ done: true }));
});
