"""Line-oriented JSON front end to one chDB session, for Go tests (internal/testenv).

Started once per test session so the Go side pays chDB's import cost (about 2 s) once,
not per statement. Protocol, one JSON object per line each way:

  <- {"ready": true, "version": "26.9.2.1"}          (once, after chDB loaded)
  -> {"op": "exec",  "sql": "CREATE ...; INSERT ..."}
  <- {"ok": true}
  -> {"op": "query", "sql": "SELECT ..."}
  <- {"ok": true, "columns": ["a", "b"], "types": ["UInt32", "String"], "rows": [[1, "x"]]}
  <- {"ok": false, "error": "Code: 47. DB::Exception: ..."}   (for either op)

"exec" runs one or more ';'-separated statements and discards their output; "query" runs
one statement with FORMAT JSONCompact. The session's data lives in a temporary directory
(or --path DIR), removed on exit. EOF on stdin ends the process.

Nothing chDB itself prints may reach the protocol stream: fd 1 is re-pointed at stderr
and the protocol uses a private duplicate of the original stdout.

usage: python chdb_server.py [--path DIR]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", help="session data directory (default: a new temporary one)")
    args = ap.parse_args()

    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj):
        proto.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        proto.flush()

    own_dir = args.path is None
    path = args.path or tempfile.mkdtemp(prefix="tokenwatch-chdb-")
    try:
        from chdb import session as chs  # imported here: it is the slow part

        sess = chs.Session(path)
        version = sess.query("SELECT version()", "TabSeparated").bytes().decode().strip()
        send({"ready": True, "version": version})
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                req = json.loads(line)
                op, sql = req["op"], req["sql"]
            except (ValueError, KeyError, TypeError) as e:
                send({"ok": False, "error": "bad request: %s" % e})
                continue
            try:
                if op == "exec":
                    sess.query(sql, "TabSeparated")
                    send({"ok": True})
                elif op == "query":
                    res = sess.query(sql, "JSONCompact")
                    raw = res.bytes()
                    if not raw.strip():
                        send({"ok": True, "columns": [], "types": [], "rows": []})
                        continue
                    doc = json.loads(raw.decode("utf-8", errors="replace"))
                    meta = doc.get("meta", [])
                    send(
                        {
                            "ok": True,
                            "columns": [m["name"] for m in meta],
                            "types": [m["type"] for m in meta],
                            "rows": doc.get("data", []),
                        }
                    )
                else:
                    send({"ok": False, "error": "unknown op %r (want exec or query)" % op})
            except Exception as e:  # chdb raises its own ChdbError / RuntimeError
                send({"ok": False, "error": str(e).strip()})
        sess.close()
    finally:
        if own_dir:
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
