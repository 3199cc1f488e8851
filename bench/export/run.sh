#!/usr/bin/env bash
# Export speed (msgs/s), size per message and peak RSS of each export
# format against the SQLite capture itself (issue 20), on two captures made
# from bench/inspect/gen's synthetic traffic of N messages (default 1M):
#   mixed      all of it: JSON telemetry on ~200 topics, status text,
#              binary frames, a few 1 MiB firmware blobs, $SYS counters
#   telemetry  only the JSON telemetry topics (mqtape cut -t …)
# Runs each export RUNS times (default 1) and keeps the fastest.
#   bench/export/run.sh [N] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
runs=${2:-1}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/mqtape" .
go build -o "$dir/gen" ./bench/inspect/gen
m="$dir/mqtape"
"$dir/gen" -n "$n" -o "$dir/mixed.db" > /dev/null
"$m" cut --quiet "$dir/mixed.db" -o "$dir/telemetry.db" \
  -t 'plant/+/line/+/temp' -t 'plant/+/line/+/pressure' -t 'plant/+/line/+/vibration'

# measure LABEL OUT CMD...: best wall time, its peak RSS, the output's size
measure() {
  local label=$1 out=$2; shift 2
  local best="" rss=0
  for _ in $(seq "$runs"); do
    rm -f "$out"
    /usr/bin/time -f "%e %M" -o "$dir/time" "$@" > /dev/null 2> /dev/null
    read -r secs kb < <(tail -1 "$dir/time")
    if [ -z "$best" ] || awk -v a="$secs" -v b="$best" 'BEGIN{exit !(a<b)}'; then best=$secs rss=$kb; fi
  done
  printf '%s %s %s %s\n' "$label" "$best" "$rss" "$(stat -c %s "$out")"
}

echo "| capture | format | size | bytes/msg | vs SQLite | export msgs/s | peak RSS |"
echo "|---|---|---:|---:|---:|---:|---:|"
for c in telemetry mixed; do
  db="$dir/$c.db"
  msgs=$("$m" info --json "$db" | sed -n 's/^    "messages": \([0-9]*\),$/\1/p' | head -1)
  dbsize=$(stat -c %s "$db")
  printf '| %s (%s msgs) | SQLite capture | %s MB | %s | 100 %% | | |\n' "$c" "$msgs" \
    "$(awk -v s="$dbsize" 'BEGIN{printf "%.1f", s/1e6}')" "$((dbsize / msgs))"
  {
    measure JSON_lines "$dir/out.jsonl" "$m" export -o "$dir/out.jsonl" "$db"
    measure Parquet "$dir/out.parquet" "$m" export --format parquet -o "$dir/out.parquet" "$db"
    measure MCAP "$dir/out.mcap" "$m" export --format mcap -o "$dir/out.mcap" "$db"
  } | while read -r label secs kb size; do
    awk -v c="$c" -v f="${label/_/ }" -v s="$size" -v db="$dbsize" -v n="$msgs" -v t="$secs" -v kb="$kb" \
      'BEGIN{printf "| %s | %s | %.1f MB | %d | %.0f %% | %d | %d MB |\n", c, f, s/1e6, s/n, 100*s/db, n/t, kb/1000}'
  done
done
