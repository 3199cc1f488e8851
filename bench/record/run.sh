#!/usr/bin/env bash
# Whole-system recording benchmark: floods a local mosquitto with N messages
# from 2 publishers and compares `mqtape record` with `mosquitto_sub -F %j >
# file` (the C client logging the same facts) in the same run, for 64 B /
# 1 KiB payloads at QoS 0 / 1. Each load runs R rounds, the two tools one
# after the other in every round; the summary gives the median of the
# per-round ratios, so one noisy moment on a shared machine moves one round,
# not the result.
#
#   bench/record/run.sh [N] [R]    (default N=200000, R=3; needs mosquitto, mosquitto-clients, GNU time)
#
# Receive rate = N / (time from starting the publishers to the subscriber
# receiving its last message): mosquitto_sub exits as soon as it has written
# its N-th line; for mqtape it is the receive time of its last message, read
# from the capture (that message is committed within the flush interval;
# the topic index build and the checkpoint at exit are not receiving, and
# took 3-15 % of a run). "exit msg/s" is N / (start to the process's exit),
# for both. Loss is checked exactly (both must end with N messages) and
# against mosquitto's $SYS dropped counter. Everything is bounded: each run
# is killed after 120 s (reported as a short count).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}
R=${2:-3}
HALF=$((N / 2))
OUT=bench/out/record
mkdir -p "$OUT"
export PATH="$PATH:/usr/sbin"
go build -o "$OUT/mqtape" .
go build -o "$OUT/flood" ./bench/record/flood

source bench/lib.sh
# No in-flight limit (INFLIGHT=20 for mosquitto's default): the broker
# streams QoS 1 messages without waiting for acknowledgements, as it did
# with max_queued_messages 0 (see bench/lib.sh).
start_mosquitto "$OUT" "max_inflight_messages ${INFLIGHT:-0}" "sys_interval 1"
trap 'kill $BROKER 2>/dev/null || true' EXIT

dropped() { mosquitto_sub -p "$PORT" -t '$SYS/broker/publish/messages/dropped' -C 1 -W 3 2>/dev/null || echo "?"; }

publish() { # size qos: 2 publishers (raw-TCP flooders, so the publisher is not the bottleneck)
  "$OUT/flood" -addr "127.0.0.1:$PORT" -n "$HALF" -size "$1" -qos "$2" -topic bench/a &
  "$OUT/flood" -addr "127.0.0.1:$PORT" -n "$HALF" -size "$1" -qos "$2" -topic bench/b &
  wait
}

now() { date +%s.%N; }

printf "%-6s %-4s %-5s %-13s %10s %10s %9s %10s %8s %8s %10s\n" payload qos round tool received "msg/s" "cpu s" "cpu µs/msg" "rss MB" dropped "exit msg/s"
: > "$OUT/rows"
for size in 64 1024; do
  for qos in 0 1; do
    for round in $(seq "$R"); do
      for tool in mosquitto_sub mqtape; do
        rm -f "$OUT/cap.db" "$OUT/cap.db-wal" "$OUT/cap.db-shm" "$OUT/sub.jsonl"
        d0=$(dropped)
        if [ "$tool" = mqtape ]; then
          /usr/bin/time -f "%U %S %M" -o "$OUT/time" timeout 120 "$OUT/mqtape" record -b "mqtt://127.0.0.1:$PORT" \
            -t 'bench/#' -q "$qos" --count "$N" --quiet -o "$OUT/cap.db" & SUB=$!
        else
          /usr/bin/time -f "%U %S %M" -o "$OUT/time" timeout 120 mosquitto_sub -p "$PORT" -t 'bench/#' -q "$qos" \
            -C "$N" -F %j > "$OUT/sub.jsonl" & SUB=$!
        fi
        sleep 0.5
        t0=$(now)
        publish "$size" "$qos" >/dev/null 2>&1 & PUB=$!
        wait $SUB || true
        t1=$(now)
        wait $PUB || true
        if [ "$tool" = mqtape ]; then
          got=$(sqlite3 "$OUT/cap.db" "SELECT count(*) FROM messages")
          rx=$(sqlite3 "$OUT/cap.db" "SELECT max(ts_ns) FROM messages" | awk '{ printf "%.9f", $1 / 1e9 }')
        else
          got=$(wc -l < "$OUT/sub.jsonl")
          rx=$t1
        fi
        read -r usr sys rss < <(tail -1 "$OUT/time")
        sleep 1.2
        d1=$(dropped)
        awk -v s="$size" -v q="$qos" -v r="$round" -v tool="$tool" -v got="$got" -v t0="$t0" -v t1="$t1" -v rx="$rx" -v u="$usr" -v sy="$sys" \
            -v rss="$rss" -v d0="$d0" -v d1="$d1" 'BEGIN {
          cpu = u + sy
          printf "%-6s %-4s %-5s %-13s %10d %10.0f %9.2f %10.2f %8.1f %8s %10.0f\n", s, q, r, tool, got, got / (rx - t0), cpu, cpu * 1e6 / got, rss / 1024, d1 - d0, got / (t1 - t0) }' \
          | tee -a "$OUT/rows"
      done
    done
  done
done

# Summary: per load, the median over rounds of mqtape / mosquitto_sub.
echo
printf "%-6s %-4s %14s %16s %12s %10s\n" payload qos "rate ratio" "cpu/msg ratio" "max RSS MB" "all N?"
awk -v n="$N" '
  function median(list,   a, k, i, j, t) { k = split(list, a, " "); for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
  { key = $1 " " $2 " " $3
    if ($4 == "mosquitto_sub") { srate[key] = $6; scpu[key] = $8; if ($5 != n) short[$1 " " $2] = "no" }
    else { l = $1 " " $2; rr[l] = rr[l] " " $6 / srate[key]; cr[l] = cr[l] " " $8 / scpu[key]
           if ($9 > rss[l]) rss[l] = $9; if ($5 != n) short[l] = "no"; if (!(l in seen)) { seen[l] = 1; order[++m] = l } } }
  END { for (i = 1; i <= m; i++) { l = order[i]; split(l, p, " ")
          printf "%-6s %-4s %14.2f %16.2f %12.1f %10s\n", p[1], p[2], median(rr[l]), median(cr[l]), rss[l], (l in short) ? "NO" : "yes" } }' "$OUT/rows"
