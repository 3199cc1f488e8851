#!/usr/bin/env bash
# Soak: two minutes of mixed load recorded from a local mosquitto. Publishers
# send mixed QoS 0/1/2 and payload sizes (64 B to 64 KiB) at a steady rate
# while the recorder's RSS is sampled every 5 s; at the end every published
# message must be in the capture exactly once, and mqtape check must pass.
#
#   bench/soak/run.sh [PUBLISHERS] [RATE_PER_PUBLISHER] [SECONDS]   (default 4 500 110)
#
# Needs mosquitto. Not run in CI. Bounded: everything is killed after
# SECONDS + 60 s. Output in bench/out/soak/ (rss.csv, sent.json, report.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
PUBS=${1:-4}
RATE=${2:-500}
SECS=${3:-110}
OUT=bench/out/soak
mkdir -p "$OUT"
rm -f "$OUT"/soak.db "$OUT"/soak.db-wal "$OUT"/soak.db-shm "$OUT"/rss.csv "$OUT"/sent.json
export PATH="$PATH:/usr/sbin"
go build -o "$OUT/mqtape" .
go build -o "$OUT/soak" ./bench/soak

source bench/lib.sh
start_mosquitto "$OUT" "max_inflight_messages 20" "sys_interval 1"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
pids+=("$BROKER")

LIMIT=$((SECS + 60))
# --duration bounds the recorder itself (the RSS sampler needs its own pid).
"$OUT/mqtape" record -b "mqtt://127.0.0.1:$PORT" -t 'soak/#' --quiet --duration "${LIMIT}s" -o "$OUT/soak.db" 2> "$OUT/record.err" &
REC=$!
pids+=($REC)
sleep 1

# RSS sampler: every 5 s while the recorder lives.
(
  echo "elapsed_s,rss_kib"
  t0=$(date +%s)
  while kill -0 "$REC" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$REC/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(( $(date +%s) - t0 )),$rss"
    sleep 5
  done
) > "$OUT/rss.csv" &
pids+=($!)

start=$(date +%s.%N)
timeout "$LIMIT" "$OUT/soak" pub -broker "mqtt://127.0.0.1:$PORT" -publishers "$PUBS" -rate "$RATE" \
  -duration "${SECS}s" -out "$OUT/sent.json"
published=$(date +%s.%N)
sleep 3 # let the recorder commit the tail
kill -INT "$REC"
wait "$REC" || { echo "record failed:"; cat "$OUT/record.err"; exit 1; }
sleep 0.2

{
  echo "soak: $PUBS publishers x $RATE msg/s for ${SECS}s, mixed QoS 0/1/2 (2:2:1), payloads 64 B-64 KiB"
  awk -v s="$start" -v e="$published" 'BEGIN { printf "publishing took %.1f s\n", e - s }'
  "$OUT/soak" verify -capture "$OUT/soak.db" -sent "$OUT/sent.json"
  "$OUT/mqtape" check "$OUT/soak.db" | tail -1
  ls -l "$OUT/soak.db" | awk '{ printf "capture: %.1f MB\n", $5 / 1e6 }'
  awk -F, 'NR > 1 { n++; v[n] = $2; if ($2 > max) max = $2; if (min == "" || $2 < min) min = $2 }
    END {
      if (n == 0) { print "no RSS samples"; exit }
      first = (n >= 3) ? v[3] : v[1]
      printf "recorder RSS: %d samples every 5 s; min %.1f MB, max %.1f MB, at 10 s %.1f MB, last %.1f MB\n",
        n, min / 1024, max / 1024, first / 1024, v[n] / 1024 }' "$OUT/rss.csv"
  echo "rss samples (s,KiB): $(tail -n +2 "$OUT/rss.csv" | tr '\n' ' ')"
} | tee "$OUT/report.txt"
