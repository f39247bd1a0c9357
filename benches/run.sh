#!/bin/sh
# Benchmarks vhdx-check against qemu-img (see BENCHMARKS.md). Images go to a temporary
# directory on tmpfs (the populated 64 TiB image is a 64 TiB sparse file: ext4 stops at
# 16 TiB) and are removed afterwards unless KEEP=1. Needs qemu-img, qemu-io, python3.
#   benches/run.sh [RUNS [SMALL_RUNS]]
# On x86-64 Linux the binary measured is the distributed one (`cargo build-static`), with
# the dynamically linked `cargo build --release` beside it in the same rounds; elsewhere,
# or with BASELINE=OLD_BINARY (before/after rows), the release build.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --quiet
vc=target/release/vhdx-check
if [ -z "${BASELINE:-}" ] && [ "$(uname -sm)" = "Linux x86_64" ] && cargo build-static --quiet; then
    export BASELINE="$vc" BASELINE_LABEL="dynamic build"
    vc=target/x86_64-unknown-linux-gnu/release/vhdx-check
fi
dir=$(mktemp -d "${BENCH_TMP:-/dev/shm}/vhdx-bench.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$dir"' EXIT
python3 benches/make_images.py "$dir"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(uname -r)"
echo "qemu-img: $(qemu-img --version | head -1)"
echo "vhdx-check: $vc ($(file -b "$vc" | cut -d, -f1-2)), commit $(git rev-parse --short HEAD)"
echo "busy: $(ps -eo pcpu=,comm= | awk '$1 > 20 {print $2 " " $1 "%"}' | tr '\n' ' ')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 benches/bench.py "$vc" "$dir" "${1:-5}" "${2:-50}"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
