#!/usr/bin/env python3
"""Regenerate report/assets/land-110m.path, the world outline of the HTML report.

The outline is Natural Earth's 1:110m land polygons (public domain), as packed in
the npm package world-atlas (ISC). This script fetches the package with `npm pack`
into .cache/, decodes its TopoJSON and writes one SVG path in an equirectangular
projection on a 1000 x 500 canvas (x = (lon + 180) / 360 * 1000,
y = (90 - lat) / 180 * 500), coordinates rounded to 0.1.

Usage: python3 scripts/landpath.py   (from the repository root)
"""
import json, os, subprocess, tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, ".cache", "world-atlas")
OUT = os.path.join(ROOT, "report", "assets", "land-110m.path")
VERSION = "2.0.2"


def fetch():
    os.makedirs(CACHE, exist_ok=True)
    tgz = os.path.join(CACHE, f"world-atlas-{VERSION}.tgz")
    if not os.path.exists(tgz):
        subprocess.run(["npm", "pack", f"world-atlas@{VERSION}"], cwd=CACHE, check=True, stdout=subprocess.DEVNULL)
    with tarfile.open(tgz) as t:
        return json.load(t.extractfile("package/land-110m.json"))


def decode_arcs(topo):
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring(arcs, idxs):
    pts = []
    for i in idxs:
        a = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        pts.extend(a if not pts else a[1:])
    return pts


def main():
    topo = fetch()
    arcs = decode_arcs(topo)
    out = []
    for geom in topo["objects"]["land"]["geometries"]:
        polys = geom["arcs"] if geom["type"] == "MultiPolygon" else [geom["arcs"]]
        for poly in polys:
            for r in poly:
                pts = ring(arcs, r)
                cmd = "M"
                last = None
                for lon, lat in pts:
                    p = (round((lon + 180) / 360 * 1000, 1), round((90 - lat) / 180 * 500, 1))
                    if p == last:
                        continue
                    if last is not None and abs(p[0] - last[0]) > 500:
                        cmd = "M"  # the ring crosses the antimeridian: lift the pen
                    out.append(f"{cmd}{p[0]:g} {p[1]:g}")
                    cmd, last = "L", p
                out.append("Z")
    with open(OUT, "w") as f:
        f.write("".join(out) + "\n")
    print(f"wrote {OUT}: {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
