#!/usr/bin/env bash
# Routing cost of `mqtape serve` against the same embedded broker that
# records nothing, in the same run: N messages from 2 raw-TCP publishers to
# one mosquitto_sub subscriber, 64 B and 1 KiB, QoS 0 and 1, best of R runs.
# Both brokers queue up to 2N messages for a client (--max-queued), so
# neither drops to the subscriber (with mochi's default 8192, a flood overruns
# mosquitto_sub and the broker drops, which serve records). Not more: mochi
# allocates that queue up front for every client (8 bytes a slot), and the
# garbage collector scans it on every cycle — with 10^7 slots, 80 MB a
# client, collection took a quarter of either broker's CPU.
#
#   bench/serve/run.sh [N] [R]      (default N=200000, R=3; needs mosquitto-clients)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}; R=${2:-3}; HALF=$((N / 2))
OUT=bench/out/serve; mkdir -p "$OUT"
go build -o "$OUT/mqtape" . && go build -o "$OUT/plainbroker" ./bench/serve/plainbroker && go build -o "$OUT/flood" ./bench/record/flood
source bench/lib.sh
now() { date +%s.%N; }

wait_port() { # port: until something accepts on it (10 s at most)
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1
}

attempt() { # mode size qos → msg/s, or nothing if the run went wrong (port taken, subscriber refused)
  local P; P=$(free_port); rm -f "$OUT/cap.db"*
  if [ "$1" = serve ]; then "$OUT/mqtape" serve --listen "127.0.0.1:$P" --max-queued "$((2 * N))" -o "$OUT/cap.db" --quiet & B=$!
  else "$OUT/plainbroker" -listen "127.0.0.1:$P" -max-queued "$((2 * N))" & B=$!; fi
  wait_port "$P" || { kill $B 2>/dev/null; wait $B 2>/dev/null; return; }
  sleep 0.2
  timeout 120 mosquitto_sub -p "$P" -t 'bench/#' -q "$3" -C "$N" > /dev/null & S=$!
  sleep 0.3
  local t0; t0=$(now)
  "$OUT/flood" -addr "127.0.0.1:$P" -n "$HALF" -size "$2" -qos "$3" -topic bench/a > /dev/null &
  "$OUT/flood" -addr "127.0.0.1:$P" -n "$HALF" -size "$2" -qos "$3" -topic bench/b > /dev/null &
  local ok=1; wait $S || ok=0; local t1; t1=$(now)
  wait_floods
  kill -INT $B; wait $B 2>/dev/null || true
  if [ "$1" = serve ]; then
    local got; got=$(sqlite3 "$OUT/cap.db" "SELECT count(*) FROM messages")
    [ "$got" = "$N" ] || echo "serve recorded $got of $N" >&2
  fi
  [ $ok = 1 ] && awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}

wait_floods() { for j in $(jobs -p); do [ "$j" = "$B" ] || wait "$j" 2>/dev/null || true; done; }

one() { # mode size qos → msg/s (a run that went wrong is run again, 3 tries)
  local r
  for _ in 1 2 3; do r=$(attempt "$@"); [ -n "$r" ] && { echo "$r"; return; }; echo "($1 run failed, again)" >&2; done
  echo 0
}

printf "%-6s %-4s %12s %12s %7s\n" payload qos "mochi msg/s" "serve msg/s" ratio
for size in 64 1024; do for qos in 0 1; do
  best_p=0; best_s=0
  for _ in $(seq "$R"); do
    p=$(one plain "$size" "$qos"); s=$(one serve "$size" "$qos")
    [ "$p" -gt "$best_p" ] && best_p=$p; [ "$s" -gt "$best_s" ] && best_s=$s
  done
  awk -v z="$size" -v q="$qos" -v p="$best_p" -v s="$best_s" 'BEGIN { printf "%-6s %-4s %12d %12d %7.2f\n", z, q, p, s, s / p }'
done; done
