#!/usr/bin/env bash
# Trigger snapshots (record --ring): N messages from 2 flooding publishers
# (QoS 1, SIZE-byte payloads) through a tuned mosquitto (bench/lib.sh: it
# never drops) into a recorder in snapshot mode (--ring 10m --ring-size
# RING), then one trigger message. Reports the messages received, what the
# snapshot holds (the ring: the newest that fit in RING, plus the trigger),
# the evictions, max RSS and CPU per message received (GNU time).
#
#   bench/snapshot/run.sh [N]     (default N=200000; SIZE=1024, RING=64MiB)
#   needs mosquitto, mosquitto_pub, sqlite3, GNU time. Killed after 120 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}
SIZE=${SIZE:-1024}
RING=${RING:-64MiB}
HALF=$((N / 2))
OUT=bench/out/snapshot
rm -rf "$OUT" && mkdir -p "$OUT/rec"
export PATH="$PATH:/usr/sbin"
go build -o "$OUT/mqtape" .
go build -o "$OUT/flood" ./bench/record/flood
source bench/lib.sh
start_mosquitto "$OUT" "max_inflight_messages 0"
trap 'kill $BROKER 2>/dev/null || true' EXIT
/usr/bin/time -f "%U %S %M" -o "$OUT/time" timeout 120 "$OUT/mqtape" record -b "mqtt://127.0.0.1:$PORT" \
  -t 'bench/#' -q 1 --ring 10m --ring-size "$RING" --trigger 'bench/trigger' --post 0s -o "$OUT/rec/snap.db" \
  2> "$OUT/stderr" & SUB=$!
for _ in $(seq 100); do grep -q 'Ctrl-C to stop' "$OUT/stderr" 2>/dev/null && break; sleep 0.1; done
sleep 0.5 # the banner comes just before the SUBSCRIBE
"$OUT/flood" -addr "127.0.0.1:$PORT" -n "$HALF" -size "$SIZE" -qos 1 -window 1000 -topic bench/a >/dev/null & P1=$!
"$OUT/flood" -addr "127.0.0.1:$PORT" -n "$HALF" -size "$SIZE" -qos 1 -window 1000 -topic bench/b >/dev/null & P2=$!
wait $P1 $P2
sleep 1 # let the recorder take the last ones
mosquitto_pub -p "$PORT" -t bench/trigger -q 1 -m now
for _ in $(seq 100); do [ -e "$OUT/rec/snap-0001.db" ] && break; sleep 0.1; done
sleep 1
# Ctrl-C to mqtape itself (time → timeout → mqtape).
kill -INT "$(pgrep -P "$(pgrep -P $SUB)")"; wait $SUB || true
read -r u s rss < <(tail -1 "$OUT/time")
kept=$(sqlite3 "$OUT/rec/snap-0001.db" "SELECT count(*) FROM messages")
evicted=$(sqlite3 "$OUT/rec/snap-0001.db" "SELECT json_extract(detail,'\$.evicted') FROM events WHERE kind='snapshot'")
awk -v n="$N" -v kept="$kept" -v ev="$evicted" -v u="$u" -v s="$s" -v rss="$rss" -v size="$SIZE" -v ring="$RING" 'BEGIN {
  printf "payload %d B, --ring-size %s: %d sent, snapshot holds %d (trigger included), evicted %d, max RSS %.0f MB, CPU %.1f µs/msg\n",
    size, ring, n, kept, ev, rss/1024, (u+s)*1e6/n }'
"$OUT/mqtape" check "$OUT/rec/snap-0001.db" >/dev/null && echo "check: ok"
