#!/usr/bin/env bash
# Rotation overhead and multi-part reading speed.
#
# 1. Recording: N messages from 2 flooding publishers (QoS 1, SIZE-byte
#    payloads) through a tuned mosquitto (bench/lib.sh: it never drops),
#    recorded by mqtape with and without --split-size SPLIT, alternating in
#    every round. Receive rate = N / (publishers' start → receive time of the
#    last message, read from the capture or its parts); CPU per message from
#    GNU time. The summary gives the median of the per-round ratios.
# 2. Reading: the last split recording's parts exported (JSON lines to
#    /dev/null) as a glob, and the same messages as one file (made with
#    merge), each R times; median seconds.
#
#   bench/split/run.sh [N] [R]      (default N=200000, R=3; SIZE=256, SPLIT=8MiB)
#   needs mosquitto, sqlite3, GNU time. Every run is killed after 120 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}
R=${2:-3}
SIZE=${SIZE:-256}
SPLIT=${SPLIT:-8MiB}
HALF=$((N / 2))
OUT=bench/out/split
mkdir -p "$OUT"
export PATH="$PATH:/usr/sbin"
go build -o "$OUT/mqtape" .
go build -o "$OUT/flood" ./bench/record/flood
source bench/lib.sh
start_mosquitto "$OUT" "max_inflight_messages 0"
trap 'kill $BROKER 2>/dev/null || true' EXIT
now() { date +%s.%N; }

printf "%-6s %-8s %10s %6s %10s %12s\n" round mode received parts "msg/s" "cpu µs/msg"
: > "$OUT/rows"
for round in $(seq "$R"); do
  for mode in single split; do
    rm -rf "$OUT/rec" && mkdir -p "$OUT/rec"
    args=()
    [ "$mode" = split ] && args=(--split-size "$SPLIT")
    /usr/bin/time -f "%U %S" -o "$OUT/time" timeout 120 "$OUT/mqtape" record -b "mqtt://127.0.0.1:$PORT" \
      -t 'bench/#' -q 1 --count "$N" --quiet "${args[@]}" -o "$OUT/rec/run.db" & SUB=$!
    # Publish once the recorder has subscribed (its event is committed).
    for _ in $(seq 100); do
      f=$(ls "$OUT"/rec/*.db 2>/dev/null | head -1 || true)
      [ -n "$f" ] && [ "$(sqlite3 "$f" "SELECT count(*) FROM events WHERE kind='subscribed'" 2>/dev/null || echo 0)" -gt 0 ] && break
      sleep 0.1
    done
    t0=$(now)
    "$OUT/flood" -addr "127.0.0.1:$PORT" -n "$HALF" -size "$SIZE" -qos 1 -window 1000 -topic bench/a >/dev/null & P1=$!
    "$OUT/flood" -addr "127.0.0.1:$PORT" -n "$HALF" -size "$SIZE" -qos 1 -window 1000 -topic bench/b >/dev/null & P2=$!
    wait $SUB || true
    wait $P1 $P2 || true
    got=0 last=0 parts=0
    for f in "$OUT"/rec/*.db; do
      read -r c m < <(sqlite3 -separator ' ' "$f" "SELECT count(*) - (SELECT coalesce(sum(json_extract(detail,'\$.carried')),0) FROM events WHERE kind='split' AND json_extract(detail,'\$.next') IS NULL), coalesce(max(ts_ns),0) FROM messages")
      got=$((got + c)); parts=$((parts + 1)); [ "$m" -gt "$last" ] && last=$m
    done
    read -r u s < "$OUT/time"
    awk -v r="$round" -v mode="$mode" -v got="$got" -v parts="$parts" -v t0="$t0" -v last="$last" -v u="$u" -v s="$s" 'BEGIN {
      printf "%-6s %-8s %10d %6d %10.0f %12.2f\n", r, mode, got, parts, got / (last / 1e9 - t0), (u + s) * 1e6 / got }' | tee -a "$OUT/rows"
  done
done
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f", v[int((NR + 1) / 2)] }'; }
ratios() { awk -v col="$1" '{ v[$1, $2] = $col; r[$1] = 1 } END { for (k in r) print v[k, "split"] / v[k, "single"] }' "$OUT/rows"; }
echo "median split/single: receive rate $(ratios 5 | median), cpu per message $(ratios 6 | median) ($R rounds)"

# Reading: the parts of the last split run as a glob, and as one file.
rm -f "$OUT/one.db"
"$OUT/mqtape" merge --quiet -o "$OUT/one.db" "$OUT"/rec/*.db
parts=$(ls "$OUT"/rec/*.db | wc -l)
for what in one parts; do
  for round in $(seq "$R"); do
    t0=$(now)
    if [ "$what" = one ]; then "$OUT/mqtape" export "$OUT/one.db" > /dev/null
    else "$OUT/mqtape" export "$OUT/rec/run-*.db" > /dev/null 2>&1; fi
    t1=$(now)
    echo "$what $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')"
  done
done > "$OUT/reads"
for what in one parts; do
  m=$(awk -v w="$what" '$1 == w { print $2 }' "$OUT/reads" | median)
  label="1 file"; [ "$what" = parts ] && label="$parts parts"
  awk -v w="$what" -v l="$label" -v m="$m" -v n="$N" 'BEGIN { printf "export %-5s (%s): median %.3f s, %.0f msg/s\n", w, l, m, n / m }'
done
