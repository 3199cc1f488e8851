#!/usr/bin/env bash
# Peak RSS of each verb on a capture holding one payload of SIZE_MIB
# (default 100) random bytes, beside 2 small messages (issue 15: memory
# for one payload of size P must stay ≤ 3P + 100 MB).
#   bench/hugepayload/run.sh [SIZE_MIB]
# MQTAPE=/path/to/mqtape measures that build instead (e.g. an older one).
set -euo pipefail
cd "$(dirname "$0")/../.."
size=${1:-100}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
m=${MQTAPE:-}
if [ -z "$m" ]; then
  go build -o "$dir/mqtape" .
  m="$dir/mqtape"
fi
{
  echo '{"topic":"small/a","ts_ns":1700000000000000000,"payload":"a"}'
  printf '{"topic":"big","ts_ns":1700000000100000000,"payload_b64":"'
  head -c $((size << 20)) /dev/urandom | base64 -w0
  echo '"}'
  echo '{"topic":"small/b","ts_ns":1700000000200000000,"payload":"b"}'
} > "$dir/in.jsonl"
"$m" import "$dir/in.jsonl" -o "$dir/huge.db" --quiet
"$m" import "$dir/in.jsonl" -o "$dir/other.db" --quiet
# The same capture with other random bytes in the big payload: diff then
# reads both payloads again for its report.
{
  sed -n 1p "$dir/in.jsonl"
  printf '{"topic":"big","ts_ns":1700000000100000000,"payload_b64":"'
  head -c $((size << 20)) /dev/urandom | base64 -w0
  echo '"}'
  sed -n 3p "$dir/in.jsonl"
} > "$dir/changed.jsonl"
"$m" import "$dir/changed.jsonl" -o "$dir/changed.db" --quiet
rm "$dir/changed.jsonl"
"$m" export "$dir/huge.db" > "$dir/export.jsonl"
p=$((size * 1048576))
echo "payload P = $size MiB; limit 3P + 100 MB = $(( (3 * p + 100000000) / 1000000 )) MB"
rss() { # label, command...
  local label=$1; shift
  /usr/bin/time -f "%M" -o "$dir/rss" "$@" > /dev/null 2> "$dir/err" || true
  printf '%-28s %6d MB\n' "$label" $(( $(tail -1 "$dir/rss") / 1000 ))
}
rss "export (JSON lines)" "$m" export "$dir/huge.db"
rss "export --format csv" "$m" export --format csv "$dir/huge.db"
rss "play --dry-run" "$m" play --dry-run "$dir/huge.db"
rss "diff (two such captures)" "$m" diff "$dir/huge.db" "$dir/other.db"
rss "diff (big payloads differ)" "$m" diff "$dir/huge.db" "$dir/changed.db"
rss "import (its export)" "$m" import "$dir/export.jsonl" -o "$dir/imported.db" --quiet
rss "cut" "$m" cut "$dir/huge.db" -o "$dir/cut.db"
rss "merge (two such captures)" "$m" merge "$dir/huge.db" "$dir/other.db" -o "$dir/merged.db"
rss "recover" "$m" recover "$dir/huge.db" -o "$dir/recovered.db"
# The outputs hold what the input held: their exports match the input's.
for f in cut recovered; do
  cmp -s <("$m" export "$dir/$f.db" | sha256sum) <(sha256sum < "$dir/export.jsonl") ||
    echo "$f: export differs from the input's" >&2
done
