#!/usr/bin/env bash
# Makes the packet-capture fixtures of importer's tests: real MQTT 3.1.1 and
# 5 traffic between mosquitto_pub and a mosquitto broker on loopback,
# captured by tshark. Needs root (capturing lo), mosquitto, mosquitto-clients
# and tshark:
#   apt-get install -y mosquitto mosquitto-clients tshark
# Run from this directory: ./make-pcaps.sh
set -euo pipefail
cd "$(dirname "$0")"
PORT=${PORT:-18830}
work=$(mktemp -d)
trap 'kill $broker $shark 2>/dev/null || true; rm -rf "$work"' EXIT

printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" > "$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" 2>"$work/broker.log" &
broker=$!
tshark -q -i lo -f "tcp port $PORT" -w "$work/mqtt.pcapng" 2>"$work/tshark.log" &
shark=$!
sleep 2

pub() { mosquitto_pub -p "$PORT" "$@"; }
# MQTT 3.1.1: client ids, QoS 0/1/2, retained, an empty retained message.
pub -i thermo-1 -t home/kitchen/temp -q 1 -m '{"t":21.5,"unit":"C"}'
pub -i door-2 -t home/door/state -q 2 -r -m open
pub -i door-2 -t home/door/state -q 0 -r -n
# Binary payload with NUL bytes, and a 100 kB payload split across segments.
printf 'PLC\x00\x01\x02\xff\xfe\x00' > "$work/bin.dat"
pub -i plc-7 -t plant/line1/frame -q 1 -f "$work/bin.dat"
head -c 100000 /dev/zero | tr '\0' 'x' > "$work/big.dat"
pub -i cam-3 -t cam/3/snapshot -q 0 -f "$work/big.dat"
# Many small messages in one connection: several PUBLISH per TCP segment.
seq 1 50 | sed 's/.*/{"n":&}/' | pub -i burst-9 -t burst/n -q 0 -l
# MQTT 5: properties and a topic alias (the second message has no topic).
pub -V 5 -i v5-dev -t v5/alias/topic -q 1 -m first -D publish topic-alias 3 -D publish user-property k v
pub -V 5 -i v5-dev2 -t v5/props -q 0 -m 'with props' -D publish content-type text/plain -D publish message-expiry-interval 60
sleep 1
kill $shark; wait $shark 2>/dev/null || true
cp "$work/mqtt.pcapng" mqtt.pcapng
tshark -r mqtt.pcapng -F pcap -w mqtt.pcap
echo "wrote mqtt.pcapng and mqtt.pcap:"
tshark -r mqtt.pcapng -d tcp.port==$PORT,mqtt -Y 'mqtt.msgtype==3' -T fields -e mqtt.clientid -e mqtt.topic -e mqtt.qos -e mqtt.retain 2>/dev/null | head -5
