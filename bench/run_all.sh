#!/bin/sh
# The figures of the README's "Benchmarks" section: every run prints a Rich table and, last, one JSON
# line, which is kept in bench/results/<name>.json. Needs `make install` (or `make test`) first;
# PostgreSQL runs need TUANGOU_BENCH_POSTGRES_URL or TUANGOU_TEST_POSTGRES_URL (an admin URL: each run
# creates and drops its own database).
set -u
cd "$(dirname "$0")/.."
T=.venv/bin/tuangou
OUT=bench/results
mkdir -p "$OUT"
run() {
  name=$1; shift
  echo "== $name: tuangou bench $*"
  "$T" bench "$@" | tee "$OUT/$name.out"
  tail -n 1 "$OUT/$name.out" > "$OUT/$name.json"
  rm -f "$OUT/$name.out"
}
run sqlite-1p-sellout     flash-sale --db sqlite --processes 1 --buyers 64 --cap 1000 --seconds 40
run sqlite-1p-steady      flash-sale --db sqlite --processes 1 --buyers 64 --cap 1000000 --seconds 15
run sqlite-2p-chaos       flash-sale --db sqlite --processes 2 --buyers 64 --cap 600 --seconds 40 --chaos
run pg-2p-sellout         flash-sale --db postgresql --processes 2 --buyers 64 --cap 1000 --seconds 40
run pg-2p-steady          flash-sale --db postgresql --processes 2 --buyers 64 --cap 1000000 --seconds 15
run pg-2p-for-update      flash-sale --db postgresql --processes 2 --buyers 64 --cap 1000000 --seconds 15 --reserve for_update
run pg-2p-chaos           flash-sale --db postgresql --processes 2 --buyers 64 --cap 600 --seconds 40 --chaos
run governance            governance --merchants 10000 --deals 100000 --sizes 1000,10000,100000
run governance-pg         governance --db postgresql --merchants 10000 --deals 100000
# the KPI job within one tick at 100k deals / 1M orders (the whole order history waiting behind its cursor)
run governance-1m-sqlite  governance --merchants 10000 --deals 100000 --orders 1000000
run governance-1m-pg      governance --db postgresql --merchants 10000 --deals 100000 --orders 1000000
