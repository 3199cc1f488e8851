#!/usr/bin/env bash
# Time and peak RSS of reading a Sparkplug B capture of N (default 100000)
# DDATA messages with aliases only (bench/decode/gen): export without
# decoding, decoded, with a --where on a metric, and play --dry-run
# listing every message decoded.
#   bench/decode/run.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100000}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
go build -o "$dir/mqtape" .
m="$dir/mqtape"
go run ./bench/decode/gen -n "$n" > "$dir/in.jsonl"
"$m" import "$dir/in.jsonl" -o "$dir/sp.db" --quiet
total=$((n + 20))
echo "capture: $n DDATA messages (2 aliased metrics each) + births of 10 edge nodes"
run() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$dir/t" "$@" > "$dir/out" 2> "$dir/err" || { cat "$dir/err"; exit 1; }
  read -r secs kb < <(tail -1 "$dir/t")
  printf '%-44s %6.2f s %8.0f msg/s %5d MB  %s lines\n' "$label" "$secs" "$(echo "$total / $secs" | bc -l)" \
    $((kb / 1000)) "$(wc -l < "$dir/out")"
}
run "export --no-decode" "$m" export --no-decode "$dir/sp.db"
run "export (decoded)" "$m" export "$dir/sp.db"
run "export --where 'metric:Count>=$((n - 10))'" "$m" export --where "metric:Count>=$((n - 10))" "$dir/sp.db"
run "play --dry-run --decode 'spBv1.0/#=sparkplug'" "$m" play --dry-run --decode 'spBv1.0/#=sparkplug' "$dir/sp.db"
