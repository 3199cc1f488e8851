#!/usr/bin/env bash
# Whole-system replay benchmark on a local mosquitto (free loopback port).
#
#   bench/replay/run.sh [N]    (N: messages for the --speed max runs, default 200000)
#   ONLY_MAX=1 bench/replay/run.sh [N]   (only part 2)
#
# 1. Timing fidelity, end to end: a precise publisher (replaybench pub, sleep
#    then spin) sends a schedule; `mqtape record` records it; `mqtape play`
#    replays the capture while an independent subscriber, mosquitto_sub -F
#    '%U %t %p', timestamps every arrival. Gap error = arrival gap − gap in
#    the original schedule (e2e: record + replay) or in the capture (replay
#    alone); drift = the same for first→last. Schedules: 10 s irregular
#    (bursts, 1 ms … 1 s gaps) and steady 1k/2k/5k msg/s for 5 s. Each row
#    follows a "publisher alone" row: the same schedule straight from the
#    precise publisher to mosquitto_sub, the noise floor of the run.
# 2. --speed max: `mqtape play --speed max` vs a minimal paho publisher loop
#    (window of 1000 tokens) in the same run, QoS 0 and 1, 64 B payloads;
#    rate = messages / (first publish → last token complete), three rounds
#    each, alternating; best of each reported.
# Everything is bounded: each step is killed after 90 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}
OUT=bench/out/replay
mkdir -p "$OUT"
export PATH="$PATH:/usr/sbin"
go build -o "$OUT/mqtape" .
go build -o "$OUT/replaybench" ./bench/replay
RB="$OUT/replaybench"

source bench/lib.sh
start_mosquitto "$OUT" "max_inflight_messages 0"
trap 'kill $BROKER 2>/dev/null || true' EXIT
URL="mqtt://127.0.0.1:$PORT"
PAHO="tcp://127.0.0.1:$PORT"

echo "machine: $(nproc) cores, $(go version | cut -d' ' -f3), $(mosquitto -h 2>/dev/null | head -1)"
echo
echo "Timing fidelity, ms. Gap error = |arrival gap − reference gap| over all consecutive arrivals (p50/p99/max);"
echo "drift = (last − first arrival) − (last − first reference). e2e: reference = the original schedule (record + replay);"
echo "replay: reference = the recorded capture (replay alone). 'precise publisher alone' = the same schedule sent by"
echo "replaybench pub straight to mosquitto_sub, no mqtape: the noise floor of this machine in this run."
echo "| run                            | recv/sent     | e2e p50 | e2e p99 | e2e max | e2e drift | replay p50 | replay p99 | replay max | replay drift | player late p99 |"
echo "|--------------------------------|---------------|---------|---------|---------|-----------|------------|------------|------------|--------------|-----------------|"

sched_args() { # kind [rate dur]
  local a=(-kind "$1"); [ $# -gt 1 ] && a+=(-rate "$2" -dur "$3"); echo "${a[@]}"
}

baseline() { # label qos kind [rate dur]
  local label=$1 qos=$2; shift 2
  local args; read -r -a args <<< "$(sched_args "$@")"
  local n; n=$("$RB" count "${args[@]}")
  timeout 90 mosquitto_sub -p "$PORT" -t 'bench/#' -q "$qos" -F '%U %t %p' -C "$n" -W 90 > "$OUT/sub.txt" & local sub=$!
  sleep 0.5
  timeout 90 "$RB" pub -broker "$PAHO" -qos "$qos" "${args[@]}" 2>/dev/null
  wait $sub || true
  printf "%s %15s |\n" "$("$RB" analyze -label "$label" -sub "$OUT/sub.txt" "${args[@]}")" "-"
}

timing() { # label qos kind [rate dur]
  local label=$1 qos=$2; shift 2
  local args; read -r -a args <<< "$(sched_args "$@")"
  local n; n=$("$RB" count "${args[@]}")
  rm -f "$OUT"/cap.db*
  timeout 90 "$OUT/mqtape" record -b "$URL" -t 'bench/#' -q 2 --count "$n" --quiet -o "$OUT/cap.db" & local rec=$!
  sleep 0.5
  timeout 90 "$RB" pub -broker "$PAHO" -qos "$qos" "${args[@]}" 2>/dev/null
  wait $rec
  timeout 90 mosquitto_sub -p "$PORT" -t 'bench/#' -q "$qos" -F '%U %t %p' -C "$n" -W 90 > "$OUT/sub.txt" & local sub=$!
  sleep 0.5
  timeout 90 "$OUT/mqtape" play "$OUT/cap.db" -b "$URL" --json --quiet > "$OUT/report.json" || true
  wait $sub || true
  local row; row=$("$RB" analyze -label "$label" -sub "$OUT/sub.txt" -capture "$OUT/cap.db" "${args[@]}")
  local late; late=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.3f" % r["lateness_ms"]["p99"])' "$OUT/report.json")
  printf "%s %15s |\n" "$row" "$late"
}

if [ -z "${ONLY_MAX:-}" ]; then # ONLY_MAX=1 skips the timing part
for q in 0 1; do
  baseline "irregular 10s QoS $q, publisher alone" $q irregular
  timing "irregular 10s QoS $q, mqtape" $q irregular
done
for r in 1000 2000 5000; do
  baseline "steady ${r}/s QoS 0, publisher alone" 0 steady $r 5s
  timing "steady ${r}/s QoS 0, mqtape" 0 steady $r 5s
done
baseline "steady 5000/s QoS 1, publisher alone" 1 steady 5000 5s
timing "steady 5000/s QoS 1, mqtape" 1 steady 5000 5s
fi

echo
echo "--speed max vs a minimal paho loop ($N messages of 64 B, no subscriber; msg/s)"
echo "| QoS | paho loop | mqtape play --speed max | ratio |"
echo "|-----|-----------|-------------------------|-------|"
for qos in 0 1; do
  rm -f "$OUT"/max.db*
  "$RB" gen -n "$N" -size 64 -qos "$qos" -o "$OUT/max.db"
  best_p=0; best_m=0
  for round in 1 2 3; do
    read -r n el failed < <(timeout 90 "$RB" paholoop -broker "$PAHO" -n "$N" -qos "$qos" -size 64)
    p=$(python3 -c "print(int($n / $el))")
    timeout 90 "$OUT/mqtape" play "$OUT/max.db" -b "$URL" --speed max --json --quiet > "$OUT/max.json"
    m=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["published"] == int(sys.argv[2]) and r["ack_failures"] == 0, r; print(int(r["published"] / r["elapsed_s"]))' "$OUT/max.json" "$N")
    echo "  round $round QoS $qos: paho $p msg/s, mqtape $m msg/s" >&2
    [ "$p" -gt "$best_p" ] && best_p=$p
    [ "$m" -gt "$best_m" ] && best_m=$m
  done
  python3 -c "print('| %d   | %9d | %23d | %5.2f |' % ($qos, $best_p, $best_m, $best_m / $best_p))"
done
