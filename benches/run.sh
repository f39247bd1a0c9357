#!/bin/sh
# Benchmarks vhdx-check against qemu-img (see BENCHMARKS.md). Images go to a temporary
# directory on tmpfs (the populated 64 TiB image is a 64 TiB sparse file: ext4 stops at
# 16 TiB) and are removed afterwards unless KEEP=1. Needs qemu-img, qemu-io, python3.
#   benches/run.sh [RUNS [SMALL_RUNS]]        (BASELINE=OLD_BINARY adds before/after rows)
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
dir=$(mktemp -d "${BENCH_TMP:-/dev/shm}/vhdx-bench.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$dir"' EXIT
python3 benches/make_images.py "$dir"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -r)"
echo "qemu-img: $(qemu-img --version | head -1)"
echo "busy: $(ps -eo pcpu=,comm= | awk '$1 > 20 {print $2 " " $1 "%"}' | tr '\n' ' ')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/bench.py target/release/vhdx-check "$dir" "${1:-5}" "${2:-50}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
