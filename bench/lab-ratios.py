#!/usr/bin/env python3
"""Ratio table (markdown) from a lab summary: per scenario and step, the base builder's median and each other
builder's median with its ratio to the base (same run).
Usage: bench/lab-ratios.py RESULTS.summary.txt [BASE=docker-buildkit] [OTHER...=kiln-inproc kiln-serve]"""
import sys

path = sys.argv[1]
base = sys.argv[2] if len(sys.argv) > 2 else "docker-buildkit"
others = sys.argv[3:] or ["kiln-inproc", "kiln-serve"]
names = {"docker-buildkit": "BuildKit", "kiln-inproc": "kiln in-process", "kiln-serve": "kiln via serve"}
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
bn = names.get(base, base)
head = [f"{bn} (s)"]
for o in others:
    on = names.get(o, o)
    head += [f"{on} (s)", f"{on} / {bn}"]
print("| scenario / step | " + " | ".join(head) + " |")
print("|---" * (1 + len(head)) + "|")
fmt = lambda v: f"{v:.2f}" if v is not None else "–"
for key in order:
    r = rows[key]
    b = r.get(base)
    cells = [fmt(b)]
    for o in others:
        v = r.get(o)
        cells += [fmt(v), f"{v / b:.2f}" if b and v is not None else "–"]
    print(f"| {key[0]} {key[1]} | " + " | ".join(cells) + " |")
