#!/usr/bin/env bash
# Runs `go test -json ARGS...`, keeps the raw event stream in .cache/test-logs/LABEL.json
# and prints a readable summary (scripts/gotest.py). Exit status is go test's, or 1 when
# the summary saw a failure.
#
#   scripts/gotest.sh LABEL [go test flags] PACKAGES...
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
label="${1:?usage: gotest.sh LABEL [go test args]}"
shift
mkdir -p "$CACHE/test-logs"
raw="$CACHE/test-logs/$label.json"
log "go test $* (raw log: ${raw#"$ROOT"/})"
set +e
${GO:-go} test -json "$@" 2>&1 | tee "$raw" | python3 "$ROOT/scripts/gotest.py" "$label"
st=("${PIPESTATUS[@]}")
set -e
if ((st[0] != 0)); then exit "${st[0]}"; fi
exit "${st[2]}"
