"""Summarises `go test -json` output for make and CI.

Reads the JSON event stream on stdin and prints, per package, a line in go test's
own format (`ok  <pkg> <time>` / `FAIL <pkg>`) followed by its test counts; the full
output of every failed test; the reason of every skipped test; build errors as they
come. Ends with one line `LABEL: N passed, N failed, N skipped`. Exits 1 when a test
or package failed or a build broke, else 0. A package that fails outside any test
(build error, panic in init or TestMain, timeout) counts as one failed test.

usage: go test -json ./... 2>&1 | python3 scripts/gotest.py LABEL
"""
import json
import sys
from collections import defaultdict


def main():
    label = sys.argv[1] if len(sys.argv) > 1 else "go test"
    out = defaultdict(list)  # (pkg, test) -> output lines
    counts = defaultdict(lambda: {"pass": 0, "fail": 0, "skip": 0})
    totals = {"pass": 0, "fail": 0, "skip": 0}
    bad = False
    w = sys.stdout
    for raw in sys.stdin:
        line = raw.rstrip("\n")
        if not line.startswith("{"):
            # build errors and anything printed outside the JSON stream
            print(line, file=w, flush=True)
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            print(line, file=w, flush=True)
            continue
        action = ev.get("Action")
        pkg = ev.get("Package", "")
        test = ev.get("Test")
        if action == "build-output":
            print(ev.get("Output", "").rstrip("\n"), file=w, flush=True)
            continue
        if action == "build-fail":
            bad = True
            continue
        if action == "output":
            out[(pkg, test)].append(ev.get("Output", ""))
            continue
        if action not in ("pass", "fail", "skip"):
            continue
        if test:
            counts[pkg][action] += 1
            totals[action] += 1
            if action == "fail":
                bad = True
                print("--- FAIL: %s (%s)" % (test, pkg), file=w)
                w.write("".join(out.get((pkg, test), [])))
            elif action == "skip":
                reason = [
                    l.strip()
                    for l in out.get((pkg, test), [])
                    if l.strip() and not l.lstrip().startswith(("=== ", "--- SKIP"))
                ]
                print("    SKIP %s %s: %s" % (pkg, test, reason[-1] if reason else ""), file=w)
            out.pop((pkg, test), None)
            w.flush()
            continue
        # package level result
        c = counts[pkg]
        elapsed = ev.get("Elapsed", 0.0)
        pkg_out = "".join(out.pop((pkg, None), []))
        if action == "fail":
            bad = True
            if c["fail"] == 0:
                # failed outside a test (panic in init, TestMain, timeout, build):
                # counted as one failure so the closing line never says 0 failed
                w.write(pkg_out)
                totals["fail"] += 1
            print("FAIL\t%s\t%.3fs\t(%d passed, %d failed, %d skipped)" % (pkg, elapsed, c["pass"], c["fail"], c["skip"]), file=w)
        elif action == "skip" or (c["pass"] + c["fail"] + c["skip"]) == 0:
            print("?   \t%s\t[no test files or no tests run]" % pkg, file=w)
        else:
            print("ok  \t%s\t%.3fs\t(%d passed, %d skipped)" % (pkg, elapsed, c["pass"], c["skip"]), file=w)
        w.flush()
    print("%s: %d passed, %d failed, %d skipped" % (label, totals["pass"], totals["fail"], totals["skip"]), file=w)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
