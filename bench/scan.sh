#!/usr/bin/env bash
# bench/scan.sh: end-to-end speed of `tokenwatch scan` on a generated 1 GiB
# clean-heavy log (one credential per ~1,000 lines, plus hard negatives), run by
# `make bench`.
#
# Prints: MB/s (wall), MB per CPU-second (per core, robust to a busy machine)
# and peak RSS of `tokenwatch scan --format json`; the same file through a
# bytes.Index("eyJ") pass and `grep -c eyJ` as baselines (ratios); and the
# recall/precision of the scan against the corpus labels.
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

mbps() { awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) s = 0.001; printf "%.0f", b / 1e6 / s }'; }

# children_cpu sets CHILD_CPU to the user+sys seconds of this shell's
# waited-for children (`times` must run in this shell, not a subshell).
children_cpu() {
	times >"$DIR/times.txt"
	CHILD_CPU=$(awk 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
		print t
	}' "$DIR/times.txt")
}

# measure OUT CMD...: runs CMD with stdout to OUT and sets WALL (s), CPU
# (user+sys s), RSS_KB (peak) and RC. GNU time when present; else bash's time
# keyword and VmHWM polled from /proc.
measure() {
	local out=$1
	shift
	RC=0
	if [[ -x /usr/bin/time ]]; then
		/usr/bin/time -f '%e %U %S %M' -o "$DIR/time.txt" "$@" >"$out" || RC=$?
		local u s
		# GNU time writes "Command exited with non-zero status N" first
		# when the command fails (scan exits 1 on findings): use the last line.
		read -r WALL u s RSS_KB < <(tail -n 1 "$DIR/time.txt")
		CPU=$(awk -v a="$u" -v b="$s" 'BEGIN { print a + b }')
	else
		local t0 t1 pid v c0
		RSS_KB=0
		children_cpu
		c0=$CHILD_CPU
		t0=$(date +%s.%N)
		"$@" >"$out" &
		pid=$!
		while kill -0 "$pid" 2>/dev/null; do
			v=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			[[ -n "$v" && "$v" -gt "$RSS_KB" ]] && RSS_KB=$v
			sleep 0.05
		done
		wait "$pid" || RC=$?
		t1=$(date +%s.%N)
		WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
		children_cpu
		CPU=$(awk -v a="$c0" -v b="$CHILD_CPU" 'BEGIN { print b - a }')
	fi
}

echo "== tokenwatch scan --format json (jobs: ${JOBS/#0/all CPUs}, $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
OUT="$DIR/findings.jsonl"
measure "$OUT" "$BIN" scan --format json --jobs "$JOBS" --fingerprint-key "$KEY" "$FILE"
if [[ $RC -gt 1 ]]; then
	echo "tokenwatch scan failed with exit $RC" >&2
	exit 1
fi
SCAN_MBPS=$(mbps "$SIZE" "$WALL")
SCAN_CPU_MBPS=$(mbps "$SIZE" "$CPU")
SCAN_RSS=$((RSS_KB / 1024))
echo "scan: ${WALL}s wall, ${CPU}s CPU, $SCAN_MBPS MB/s, $SCAN_CPU_MBPS MB per CPU-second, peak RSS $SCAN_RSS MiB, $(wc -l <"$OUT") findings"

echo "== baseline: bytes.Index(\"eyJ\") pass over the same file (1 goroutine)"
measure "$DIR/indexpass.txt" "$TOOL" indexpass "$FILE"
cat "$DIR/indexpass.txt"
IDX_MBPS=$(mbps "$SIZE" "$WALL")
IDX_CPU_MBPS=$(mbps "$SIZE" "$CPU")

echo "== baseline: grep -c eyJ"
measure "$DIR/grep.txt" env LC_ALL=C grep -c eyJ "$FILE"
GREP_MBPS=$(mbps "$SIZE" "$WALL")
GREP_CPU_MBPS=$(mbps "$SIZE" "$CPU")
echo "grep: ${WALL}s, $GREP_MBPS MB/s ($(cat "$DIR/grep.txt") lines)"

echo "== quality of this scan against the corpus labels"
"$TOOL" eval -v 3 -findings "$OUT" "$CORPUS" || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) b = 1; printf "%.2f", a / b }'; }
echo
echo "== summary ($(nproc) CPUs, $(uname -m), load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  MB/s = file bytes / wall time; MB/CPU-s = file bytes / (user+sys) time, i.e. per core"
printf '  %-34s %7s MB/s %7s MB/CPU-s  peak RSS %s MiB\n' "tokenwatch scan --format json" "$SCAN_MBPS" "$SCAN_CPU_MBPS" "$SCAN_RSS"
printf '  %-34s %7s MB/s %7s MB/CPU-s  scan/index per core: %s\n' 'bytes.Index("eyJ"), 1 goroutine' "$IDX_MBPS" "$IDX_CPU_MBPS" "$(ratio "$SCAN_CPU_MBPS" "$IDX_CPU_MBPS")"
printf '  %-34s %7s MB/s %7s MB/CPU-s  scan/grep per core:  %s\n' "grep -c eyJ" "$GREP_MBPS" "$GREP_CPU_MBPS" "$(ratio "$SCAN_CPU_MBPS" "$GREP_CPU_MBPS")"
