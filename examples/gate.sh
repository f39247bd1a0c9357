#!/usr/bin/env sh
# Image-acceptance gate: checks every *.vhdx / *.avhdx below IMAGE_DIR against a policy
# and writes SARIF for code scanning (each image an artifact with its verdict and SHA-256
# digests). Exits with vhdx-check's code: 0 every image accepted, 1 an image rejected,
# 2 the tool could not do its job (unreadable image, bad policy, SARIF_FILE cannot be
# written). SARIF_FILE is replaced only once the whole report is written (--output).
#
#   examples/gate.sh IMAGE_DIR [POLICY] [SARIF_FILE]
#
# VHDX_CHECK names the binary (default: vhdx-check on PATH).
set -u

dir=${1:?usage: gate.sh IMAGE_DIR [POLICY] [SARIF_FILE]}
policy=${2:-examples/policy.toml}
sarif=${3:-vhdx-check.sarif}
bin=${VHDX_CHECK:-vhdx-check}

"$bin" check --policy "$policy" --format sarif --hash sha256 --output "$sarif" "$dir"
status=$?
# A verdict without its record is no verdict.
if [ "$status" -le 1 ] && [ ! -s "$sarif" ]; then
    echo "gate: no SARIF report in $sarif" >&2
    status=2
fi
case $status in
    0) echo "gate: every image accepted" >&2 ;;
    1) echo "gate: rejected; findings in $sarif" >&2 ;;
    *) echo "gate: vhdx-check could not do its job (exit $status); see the message above" >&2 ;;
esac
exit "$status"
