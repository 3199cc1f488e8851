#!/usr/bin/env bash
# Whole-system recording benchmark, in two parts.
#
# 1. Default broker (the headline): mosquitto as installed (nothing in its
#    configuration but the listener: 20 in flight and 1000 queued per
#    client), mqtape and `mosquitto_sub -F %j` subscribed side by side to the
#    same traffic. Loads: 50 devices publishing JSON telemetry at 10,000
#    msg/s in total (QoS 1 and QoS 2), one device flooding at full speed
#    (QoS 1, QoS 2), and 50 devices flooding (faster than any subscriber:
#    the broker drops for both). Per round: messages each subscriber lost,
#    the broker's $SYS dropped counter (read 11 s after the load: mosquitto
#    refreshes it every sys_interval, 10 s by default), CPU per message and
#    RSS of each. The promise: mqtape loses nothing mosquitto_sub gets.
#
# 2. Tuned broker (max_queued_messages 10^7, no in-flight limit: the
#    broker's raw limit): N messages from 2 flooding publishers, 64 B / 1 KiB,
#    QoS 0 / 1; the two tools one after the other in every round; the
#    summary gives the median of the per-round ratios. BASELINE=path/to/an/
#    older/mqtape adds it as a third tool in every round (a regression check
#    in the same run).
#
#   bench/record/run.sh [N] [R]    (default N=200000, R=3; needs mosquitto, mosquitto-clients, sqlite3, GNU time)
#   PARTS=default|tuned            (default both)
#
# Receive rate (part 2) = N / (time from starting the publishers to the
# subscriber receiving its last message): mosquitto_sub exits as soon as it
# has written its N-th line; for mqtape it is the receive time of its last
# message, read from the capture. "exit msg/s" is N / (start to the
# process's exit), for both. Everything is bounded: each run is killed
# after 120 s (reported as a short count).
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
PARTS=${PARTS:-default tuned}
now() { date +%s.%N; }

if [[ $PARTS == *default* ]]; then
  PORT=$(free_port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$PORT" > "$OUT/default.conf"
  mosquitto -c "$OUT/default.conf" 2>/dev/null & DBROKER=$!
  trap 'kill $DBROKER 2>/dev/null || true' EXIT
  sleep 0.3
  ddropped() { mosquitto_sub -p "$PORT" -t '$SYS/broker/publish/messages/dropped' -C 1 -W 3 2>/dev/null || echo "?"; }
  echo "== mosquitto with its default settings: mqtape and mosquitto_sub side by side"
  printf "%-26s %-5s %8s %9s %9s %10s %12s %12s %9s %9s\n" load round sent "sub lost" "mqt lost" "broker drop" "sub µs/msg" "mqt µs/msg" "sub MB" "mqt MB"
  : > "$OUT/drows"
  # name devices rate qos n
  while read -r name devices rate qos n; do
    for round in $(seq "$R"); do
      rm -f "$OUT"/d.db*
      d0=$(ddropped)
      /usr/bin/time -f "%U %S %M" -o "$OUT/dtime.sub" timeout 120 mosquitto_sub -p "$PORT" -t 'dev/#' -q "$qos" -F %j > "$OUT/dsub.jsonl" & S=$!
      /usr/bin/time -f "%U %S %M" -o "$OUT/dtime.mqt" timeout 120 "$OUT/mqtape" record -b "mqtt://127.0.0.1:$PORT" -t 'dev/#' -q "$qos" --quiet -o "$OUT/d.db" & M=$!
      sleep 1
      "$OUT/flood" -addr "127.0.0.1:$PORT" -devices "$devices" -rate "$rate" -n "$n" -qos "$qos" -window 10 -topic dev >/dev/null
      sleep 11 # the last messages arrive, and mosquitto refreshes $SYS
      # Interrupt the subscribers themselves: GNU time ignores SIGINT, and
      # timeout passes a signal on twice (to the command and to its process
      # group) — a second SIGINT kills mqtape like a second Ctrl-C.
      pkill -INT -P "$(pgrep -P $M)"; wait $M || true
      pkill -INT -P "$(pgrep -P $S)"; wait $S || true
      d1=$(ddropped)
      gs=$(wc -l < "$OUT/dsub.jsonl")
      gm=$(sqlite3 "$OUT/d.db" "SELECT count(*) FROM messages")
      read -r su ss srss < <(tail -1 "$OUT/dtime.sub")
      read -r mu ms mrss < <(tail -1 "$OUT/dtime.mqt")
      awk -v name="$name" -v r="$round" -v n="$n" -v gs="$gs" -v gm="$gm" -v d0="$d0" -v d1="$d1" -v su="$su" -v ss="$ss" -v srss="$srss" \
          -v mu="$mu" -v ms="$ms" -v mrss="$mrss" 'BEGIN {
        printf "%-26s %-5s %8d %9d %9d %10s %12.2f %12.2f %9.1f %9.1f\n", name, r, n, n - gs, n - gm, d1 - d0,
          (su + ss) * 1e6 / (gs ? gs : 1), (mu + ms) * 1e6 / (gm ? gm : 1), srss / 1024, mrss / 1024 }' | tee -a "$OUT/drows"
    done
  done <<'LOADS'
50dev-10k/s-qos1 50 10000 1 20050
50dev-10k/s-qos2 50 10000 2 20050
1dev-flood-qos1 1 0 1 50000
1dev-flood-qos2 1 0 2 30000
50dev-flood-qos1 50 0 1 50000
LOADS
  kill $DBROKER 2>/dev/null || true
  echo
  [[ $PARTS == *tuned* ]] || exit 0
fi

# No in-flight limit (INFLIGHT=20 for mosquitto's default): the broker
# streams QoS 1 messages without waiting for acknowledgements, as it did
# with max_queued_messages 0 (see bench/lib.sh).
start_mosquitto "$OUT" "max_inflight_messages ${INFLIGHT:-0}" "sys_interval 1"
trap 'kill $BROKER 2>/dev/null || true' EXIT

dropped() { mosquitto_sub -p "$PORT" -t '$SYS/broker/publish/messages/dropped' -C 1 -W 3 2>/dev/null || echo "?"; }

publish() { # size qos: 2 publishers (raw-TCP flooders, so the publisher is not the bottleneck)
  "$OUT/flood" -addr "127.0.0.1:$PORT" -n "$HALF" -size "$1" -qos "$2" -window 1000 -topic bench/a &
  "$OUT/flood" -addr "127.0.0.1:$PORT" -n "$HALF" -size "$1" -qos "$2" -window 1000 -topic bench/b &
  wait
}

TOOLS="mosquitto_sub mqtape"
[ -n "${BASELINE:-}" ] && TOOLS="$TOOLS baseline"
echo "== mosquitto tuned (max_queued_messages ${MAXQ:-10000000}, max_inflight_messages ${INFLIGHT:-0}): one after the other"

printf "%-6s %-4s %-5s %-13s %10s %10s %9s %10s %8s %8s %10s\n" payload qos round tool received "msg/s" "cpu s" "cpu µs/msg" "rss MB" dropped "exit msg/s"
: > "$OUT/rows"
for size in 64 1024; do
  for qos in 0 1; do
    for round in $(seq "$R"); do
      for tool in $TOOLS; do
        rm -f "$OUT"/cap.db* "$OUT/sub.jsonl"
        d0=$(dropped)
        if [ "$tool" != mosquitto_sub ]; then
          bin=$OUT/mqtape
          [ "$tool" = baseline ] && bin=$BASELINE
          /usr/bin/time -f "%U %S %M" -o "$OUT/time" timeout 120 "$bin" record -b "mqtt://127.0.0.1:$PORT" \
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
        if [ "$tool" != mosquitto_sub ]; then
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

# Summary: per load and tool, the median over rounds of tool / mosquitto_sub.
echo
printf "%-6s %-4s %-9s %14s %16s %12s %10s\n" payload qos tool "rate ratio" "cpu/msg ratio" "max RSS MB" "all N?"
awk -v n="$N" '
  function median(list,   a, k, i, j, t) { k = split(list, a, " "); for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
  { key = $1 " " $2 " " $3
    if ($4 == "mosquitto_sub") { srate[key] = $6; scpu[key] = $8; if ($5 != n) { short[$1 " " $2 " mqtape"] = "no"; short[$1 " " $2 " baseline"] = "no" } }
    else { l = $1 " " $2 " " $4; rr[l] = rr[l] " " $6 / srate[key]; cr[l] = cr[l] " " $8 / scpu[key]
           if ($9 > rss[l]) rss[l] = $9; if ($5 != n) short[l] = "no"; if (!(l in seen)) { seen[l] = 1; order[++m] = l } } }
  END { for (i = 1; i <= m; i++) { l = order[i]; split(l, p, " ")
          printf "%-6s %-4s %-9s %14.2f %16.2f %12.1f %10s\n", p[1], p[2], p[3], median(rr[l]), median(cr[l]), rss[l], (l in short) ? "NO" : "yes" } }' "$OUT/rows"
