#!/usr/bin/env bash
# Compares the outputs of two vhdx-check binaries on many images: a behaviour-preserving
# change must give byte-identical reports and exit codes on every one.
#
#   fuzz/tools/compare_outputs.sh OLD_BIN NEW_BIN IMAGE_OR_DIR...
#
# Per image: check in text, JSON (default cap and --max-per-rule 100000), SARIF, HTML and
# JSON with --find-parents, info in JSON and text, and map in JSON, each with its exit code. Images come from the arguments (directories are
# searched for *.vhdx / *.avhdx). Images for a run: `cargo run --release --example
# materialize -- DIR COUNT SEED` in fuzz/, plus corpus/images and the shared corpora
# (decompressed). Prints the differing images and a count; exits 1 when any differ.
set -uo pipefail
old=$1 new=$2
shift 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

find "$@" -type f \( -name '*.vhdx' -o -name '*.avhdx' \) | sort >"$work/list"

one() {
  local bin=$1 img=$2
  for args in "check --format text" "check --format json" "check --format json --max-per-rule 100000" \
    "check --format sarif" "check --format html" "check --format json --find-parents" \
    "info --format json" "info --format text" "map --format json"; do
    # shellcheck disable=SC2086
    # The HTML page names the build's commit: that token alone is normalised.
    timeout 120 "$bin" $args "$img" 2>&1 |
      sed 's/vhdx-check [0-9.]* ([0-9a-f]\{7,\}\(, modified\)\?) evidence report/vhdx-check VERSION evidence report/'
    echo "exit=${PIPESTATUS[0]}"
  done
}
export -f one

compare() {
  local img=$1
  if ! cmp -s <(one "$old" "$img") <(one "$new" "$img"); then
    echo "DIFF $img"
  fi
}
export -f compare
export old new

xargs -d '\n' -P "$(nproc)" -I{} bash -c 'compare "$@"' _ {} <"$work/list" | tee "$work/diffs"
total=$(wc -l <"$work/list")
bad=$(grep -c '^DIFF' "$work/diffs")
echo "compared $total images: $bad differ"
[ "$bad" -eq 0 ]
