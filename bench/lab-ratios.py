#!/usr/bin/env python3
"""Ratio table (markdown) from a lab summary: per scenario and step, BuildKit's and kiln's medians and kiln/BuildKit.
Usage: bench/lab-ratios.py RESULTS.summary.txt [BASE=docker-buildkit] [OTHER=kiln]"""
import sys

path = sys.argv[1]
base = sys.argv[2] if len(sys.argv) > 2 else "docker-buildkit"
other = sys.argv[3] if len(sys.argv) > 3 else "kiln"
rows = {}
order = []
for line in open(path):
    parts = line.split()
    if len(parts) < 4 or parts[0] == "scenario":
        continue
    key = (parts[0], parts[1])
    try:
        median = float(parts[3])
    except ValueError:
        continue
    if key not in rows:
        rows[key] = {}
        order.append(key)
    rows[key][parts[2]] = median
print(f"| scenario / step | BuildKit (s) | {other} (s) | {other} / BuildKit |")
print("|---|---|---|---|")
for key in order:
    r = rows[key]
    b, o = r.get(base), r.get(other)
    ratio = f"{o / b:.2f}" if b and o is not None else "–"
    fmt = lambda v: f"{v:.2f}" if v is not None else "–"
    print(f"| {key[0]} {key[1]} | {fmt(b)} | {fmt(o)} | {ratio} |")
