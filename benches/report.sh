#!/usr/bin/env bash
# `arq report` at scale, as it runs in production: over the nightly's history.
#
#   bash benches/report.sh [CUSTOMERS]
#
# Generates a warehouse of N customers (default 1,000,000; 12 monthly snapshots, seed 1)
# once into target/bench-data/wh-N, runs `arq nightly` for every snapshot that has no
# night yet into target/bench-data/nights-N (oldest first, as the job would have run;
# each night's manifest has the time of its own report in `timings_ms.report`), then
# times `arq report --nights` (every section, 12 months) with /usr/bin/time, and prints
# where its time went (ARQ_REPORT_TIMINGS). Release build; the warehouse and the nights
# are kept between runs (delete them to start over). A night at 1 M customers is 1.6 GB,
# mostly the per-person call lists: once written, each night keeps only what later nights
# and reports read (the manifest, carry_over.csv, queues/scores/limits/backtest.parquet,
# portfolio_facts.json, outcomes.parquet, report.html), so that 12 nights fit on the disk.
set -euo pipefail
cd "$(dirname "$0")/.."
customers="${1:-1000000}"
warehouse="target/bench-data/wh-$customers"
nights="target/bench-data/nights-$customers"
arq=target/release/arq
cargo build --release --quiet
if [ ! -d "$warehouse" ]; then
    $arq generate --out "$warehouse" --customers "$customers" --months 12 --seed 1 --quiet
fi
mkdir -p "$nights"
for snapshot in $(ls "$warehouse/customers" | sed -n 's/^snapshot_date=//p' | sort); do
    if [ ! -f "$nights/$snapshot/manifest.json" ]; then
        /usr/bin/time -f "nightly $snapshot: %e s, %M KB" \
            $arq --warehouse "$warehouse" nightly --quiet --as-of "$snapshot" --out "$nights" > /dev/null
        find "$nights/$snapshot" -mindepth 1 \( -type d -o -type f \) \
            ! -name manifest.json ! -name carry_over.csv ! -name queues.parquet \
            ! -name scores.parquet ! -name limits.parquet ! -name backtest.parquet \
            ! -name portfolio_facts.json ! -name outcomes.parquet ! -name report.html \
            -prune -exec rm -rf {} +
    fi
done
python3 - "$nights" <<'EOF'
import json, os, sys
root = sys.argv[1]
for night in sorted(os.listdir(root)):
    path = os.path.join(root, night, "manifest.json")
    if os.path.exists(path):
        t = json.load(open(path))["timings_ms"]
        print(f"night {night}: total {t['total'] / 1000:.1f} s, its report {t.get('report', 0) / 1000:.1f} s")
EOF
ARQ_REPORT_TIMINGS=1 /usr/bin/time -f "arq report --nights: %e s, %M KB" \
    $arq --warehouse "$warehouse" report --nights "$nights" --out "target/bench-data/report-$customers.html"
