#!/usr/bin/env bash
# record --compress against record, one after the other in every round, on
# the same traffic: N QoS 1 messages from 10 raw-TCP devices
# (bench/record/flood) through a local mosquitto that drops nothing
# (bench/lib.sh). Loads:
#   telemetry  ~120-byte JSON readings that vary, unpadded (flood -telemetry)
#   120B       loadgen's JSON telemetry padded with 'x' to 120 bytes (flood -size 120)
#   64B        the same padded to 64 bytes (flood -size 64)
#   1KiB       the same padded to 1 KiB (flood -size 1024): mostly padding
# Per run: the capture's file size (the .db alone: the recorder checkpoints
# it at its stop), the payload bytes stored / as published (from the
# capture), and the recorder's CPU (user + system, GNU time) per message.
# The summary gives, per load, the median over the rounds of the compressed
# file size / plain file size and of the CPU per message of each.
#
#   bench/compress/run.sh [N] [R]    (default N=100000, R=3; needs mosquitto, sqlite3, GNU time)
#
# Where the bytes of a capture go (per column, index, page), without a broker:
# go run ./bench/compress/sizes -n N.
#
# Every run is bounded: a recorder not done 120 s after its start is killed
# (its row then shows a short count).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
R=${2:-3}
OUT=bench/out/compress
mkdir -p "$OUT"
export PATH="$PATH:/usr/sbin"
go build -o "$OUT/mqtape" .
go build -o "$OUT/flood" ./bench/record/flood
source bench/lib.sh
start_mosquitto "$OUT"
trap 'kill $BROKER 2>/dev/null || true' EXIT

printf "%-10s %-5s %-9s %9s %10s %12s %14s %10s\n" load round mode messages "file MB" "payload MB" "stored/payload" "CPU µs/msg"
: > "$OUT/rows"
while read -r load flags; do
  for round in $(seq "$R"); do
    for mode in plain compress; do
      db="$OUT/$load-$mode.db"
      rm -f "$db" "$db"-*
      extra=()
      [[ $mode == compress ]] && extra=(--compress)
      /usr/bin/time -f "%U %S" -o "$OUT/time" timeout 120 "$OUT/mqtape" record -b "mqtt://127.0.0.1:$PORT" -t 'dev/#' \
        --count "$N" --quiet "${extra[@]}" -o "$db" & M=$!
      # The recorder has subscribed once its session's subscribed event is in.
      for _ in $(seq 100); do
        [[ -f $db ]] && [[ $(sqlite3 "$db" "SELECT count(*) FROM events WHERE kind='subscribed'" 2>/dev/null || echo 0) -gt 0 ]] && break
        sleep 0.05
      done
      # shellcheck disable=SC2086
      "$OUT/flood" -addr "127.0.0.1:$PORT" -devices 10 -n "$N" -qos 1 -window 10 -topic dev $flags > /dev/null
      wait $M || true
      read -r u s < <(tail -1 "$OUT/time")
      read -r n payload stored < <(sqlite3 -separator ' ' "$db" \
        "SELECT count(*), sum(coalesce(payload_size, length(payload))), sum(length(payload)) FROM messages")
      size=$(stat -c %s "$db")
      awk -v load="$load" -v r="$round" -v mode="$mode" -v n="$n" -v size="$size" -v p="$payload" -v st="$stored" -v u="$u" -v s="$s" 'BEGIN {
        printf "%-10s %-5s %-9s %9d %10.2f %12.2f %14.3f %10.2f\n", load, r, mode, n, size / 1e6, p / 1e6, st / p, (u + s) * 1e6 / n }' |
        tee -a "$OUT/rows"
    done
  done
done <<EOF
telemetry -telemetry
120B -size 120
64B -size 64
1KiB -size 1024
EOF

echo
echo "== median over $R rounds: compressed file / plain file, CPU µs/msg plain → compressed"
awk '
  { key = $1 " " $2; if ($3 == "plain") { pf[key] = $5; pc[key] = $8 } else { cf[key] = $5; cc[key] = $8; loads[$1] = 1; rounds[$1] = rounds[$1] " " $2 } }
  function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t } return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  END {
    for (l in loads) {
      n = split(rounds[l], rs, " "); delete ratio; delete a; delete b
      for (i = 1; i <= n; i++) { k = l " " rs[i]; ratio[i] = cf[k] / pf[k]; a[i] = pc[k]; b[i] = cc[k] }
      printf "%-10s file %.0f%% of plain   CPU %.2f → %.2f µs/msg\n", l, 100 * median(ratio, n), median(a, n), median(b, n)
    }
  }' "$OUT/rows"
