#!/usr/bin/env bash
# A command's resident memory over time: where in a run the peak is (issue 17).
#
#   bash benches/rss.sh LOG COMMAND [ARGS...]
#
# Runs COMMAND and writes to LOG, every 0.5 s, the seconds since it started and its
# VmRSS in KiB (from /proc/PID/status; the process itself, not its children). The exit
# status is COMMAND's. For example, the steady night at 1 M:
#   bash benches/rss.sh target/rss.log target/release/arq -w W nightly --quiet --out D
#   awk '{ printf "%d s %.2f GiB\n", $1, $2 / 1048576 }' target/rss.log
set -uo pipefail
log=$1
shift
"$@" &
pid=$!
start=$(date +%s.%N)
: > "$log"
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
    [ -n "$rss" ] && echo "$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start }") $rss" >> "$log"
    sleep 0.5
done
wait "$pid"
