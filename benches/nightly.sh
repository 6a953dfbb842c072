#!/usr/bin/env bash
# The nightly job at scale: generates a warehouse of N customers (default 1,000,000,
# 12 monthly snapshots, seed 1) once into target/bench-data/wh-N, then times
# `arq nightly` on it with /usr/bin/time -v (wall time and peak memory).
#
#   bash benches/nightly.sh [CUSTOMERS]
#
# Release build; the warehouse is kept between runs (delete it to regenerate). Each run is
# a first night: the output folder, and with it the invoice settlement table, is new
# (`arq settle` and the nightly's `settle` stage; later nights find the table up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
customers="${1:-1000000}"
warehouse="target/bench-data/wh-$customers"
out="target/bench-data/nightly-$customers"
cargo build --release --quiet
if [ ! -d "$warehouse" ]; then
    target/release/arq generate --out "$warehouse" --customers "$customers" --months 12 --seed 1 --quiet
fi
rm -rf "$out"
/usr/bin/time -v target/release/arq --warehouse "$warehouse" nightly --quiet --out "$out" 2> "$out.time"
grep -E "Elapsed|Maximum resident|Percent of CPU" "$out.time"
python3 -c "import json,sys; m=json.load(open(sys.argv[1])); print('stages (ms):', m['timings_ms'])" "$out"/*/manifest.json
