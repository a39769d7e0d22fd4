#!/usr/bin/env bash
# Runs the bulk-dump benchmark (bench/bridge_bench: 1 GiB per dump, 3 repetitions) and draws its
# medians as docs/bulk-dump.png with gnuplot; prints the table it plotted.
# Usage: scripts/plot-bulk-dump.sh [BUILD_DIR]   (default build; KDCOM_BENCH_DUMP_MIB=64 for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --plot
dir=${1:-build}
KDCOM_BUILD_TARGETS=bridge_bench scripts/build.sh "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$dir/bench/bridge_bench" --benchmark_repetitions=3 --benchmark_out="$work/runs.csv" --benchmark_out_format=csv \
  --benchmark_color=false | sed -n '/^benchmark  *baseline/,$p'  # the ratios to the raw exchange
# name,iterations,real_time,cpu_time,time_unit,bytes_per_second,...: keep the medians, in MB/s.
awk -F, '/_median"?,/ {
  name = $1; gsub(/"/, "", name); sub(/\/iterations:1\/real_time_median/, "", name); sub(/^BM_/, "", name)
  printf "%s %.1f\n", name, $6 / 1e6 }' "$work/runs.csv" >"$work/medians.dat"
echo; cat "$work/medians.dat"
gnuplot <<PLOT
set terminal pngcairo size 900,480 font ",11"
set output "docs/bulk-dump.png"
set title "Bulk dump in 3944-byte reads, ${KDCOM_BENCH_DUMP_MIB:-1024} MiB (median of 3; higher is better)"
set ylabel "MB/s"
set style fill solid 0.8
set boxwidth 0.6
set grid ytics
set yrange [0:*]
set xtics rotate by -20
unset key
plot "$work/medians.dat" using 0:2:xtic(1) with boxes lc rgb "#3a6ea5", \
     "" using 0:2:(sprintf("%.0f", \$2)) with labels offset 0,0.8
PLOT
echo "wrote docs/bulk-dump.png"
