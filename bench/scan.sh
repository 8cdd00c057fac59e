#!/usr/bin/env bash
# bench/scan.sh: end-to-end speed of `tokenwatch scan` on a generated 1 GiB
# clean-heavy log (one credential per ~1,000 lines, plus hard negatives), run by
# `make bench`.
#
# Prints: MB/s and peak RSS of `tokenwatch scan --format json`, the same file
# through a bytes.Index("eyJ") pass and `grep -c eyJ` as baselines (ratios), and
# the recall/precision of the scan against the corpus labels.
#
# Environment:
#   BENCH_BYTES  corpus size in bytes (default 1073741824 = 1 GiB)
#   BENCH_SEED   corpus seed (default 1)
#   BENCH_JOBS   tokenwatch scan --jobs (default: all CPUs)
#   BENCH_DIR    work directory (default .cache/bench, git-ignored)
# The corpus is generated once per (size, seed) and reused.
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BYTES=${BENCH_BYTES:-1073741824}
SEED=${BENCH_SEED:-1}
JOBS=${BENCH_JOBS:-0}
DIR=${BENCH_DIR:-.cache/bench}
CORPUS="$DIR/scan-$BYTES-$SEED"
BIN="$DIR/tokenwatch"
TOOL="$DIR/corpus"
# A fixed demo key: fingerprints are reproducible and no key file is created.
KEY="tokenwatch-bench-key"

mkdir -p "$DIR"
echo "== build"
"$GO" build -trimpath -o "$BIN" ./cmd/tokenwatch
"$GO" build -trimpath -o "$TOOL" ./bench/corpus

if [[ ! -s "$CORPUS/meta.json" ]]; then
	echo "== generate $BYTES bytes (seed $SEED) into $CORPUS"
	rm -rf "$CORPUS"
	"$TOOL" gen -mode bench -bytes "$BYTES" -seed "$SEED" -o "$CORPUS"
fi
FILE="$CORPUS/corpus.log"
SIZE=$(stat -c %s "$FILE")
echo "corpus: $FILE ($SIZE bytes, $(grep -c '' "$CORPUS/labels.jsonl") labelled credentials)"
# Warm the page cache so every pass reads from memory.
cat "$FILE" >/dev/null

now() { date +%s.%N; }
mbps() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.0f", b / 1e6 / s }'; }

echo "== tokenwatch scan --format json (jobs: ${JOBS/#0/all CPUs}, $(nproc) CPUs)"
OUT="$DIR/findings.jsonl"
TIMEF="$DIR/time.txt"
rc=0
if [[ -x /usr/bin/time ]]; then
	t0=$(now)
	/usr/bin/time -v -o "$TIMEF" "$BIN" scan --format json --jobs "$JOBS" --fingerprint-key "$KEY" "$FILE" >"$OUT" || rc=$?
	t1=$(now)
	RSS_KB=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$TIMEF")
else
	# No GNU time: poll VmHWM (peak RSS) from /proc while the scan runs.
	t0=$(now)
	"$BIN" scan --format json --jobs "$JOBS" --fingerprint-key "$KEY" "$FILE" >"$OUT" &
	pid=$!
	RSS_KB=0
	while kill -0 "$pid" 2>/dev/null; do
		v=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
		[[ -n "$v" && "$v" -gt "$RSS_KB" ]] && RSS_KB=$v
		sleep 0.05
	done
	wait "$pid" || rc=$?
	t1=$(now)
fi
if [[ $rc -gt 1 ]]; then
	echo "tokenwatch scan failed with exit $rc" >&2
	exit 1
fi
SCAN_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
SCAN_MBPS=$(mbps "$SIZE" "$SCAN_S")
echo "scan: ${SCAN_S}s, $SCAN_MBPS MB/s, peak RSS $((RSS_KB / 1024)) MiB, $(wc -l <"$OUT") findings"

echo "== baseline: bytes.Index(\"eyJ\") pass over the same file (1 goroutine)"
IDX_LINE=$("$TOOL" indexpass "$FILE")
echo "$IDX_LINE"
IDX_MBPS=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "MB/s") print $(i-1) }' <<<"$IDX_LINE")

echo "== baseline: grep -c eyJ"
t0=$(now)
GREP_COUNT=$(LC_ALL=C grep -c eyJ "$FILE" || true)
t1=$(now)
GREP_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
GREP_MBPS=$(mbps "$SIZE" "$GREP_S")
echo "grep: ${GREP_S}s, $GREP_MBPS MB/s ($GREP_COUNT lines)"

echo "== quality of this scan against the corpus labels"
"$TOOL" eval -v 3 -findings "$OUT" "$CORPUS" || true

echo
echo "== summary ($(nproc) CPUs, $(uname -m))"
printf '  tokenwatch scan --format json   %6s MB/s   peak RSS %s MiB\n' "$SCAN_MBPS" "$((RSS_KB / 1024))"
printf '  bytes.Index("eyJ"), 1 core      %6s MB/s   scan/index ratio %s\n' "$IDX_MBPS" "$(awk -v a="$SCAN_MBPS" -v b="$IDX_MBPS" 'BEGIN { printf "%.2f", a / b }')"
printf '  grep -c eyJ                     %6s MB/s   scan/grep ratio  %s\n' "$GREP_MBPS" "$(awk -v a="$SCAN_MBPS" -v b="$GREP_MBPS" 'BEGIN { printf "%.2f", a / b }')"
