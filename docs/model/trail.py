#!/usr/bin/env python3
"""Print a SPIN error trail of admission.pml one step per line.

Usage (in the directory where pan wrote admission.pml.trail):
    spin -t -p [the same -D options] admission.pml | python3 trail.py admission.pml

Each step shows the thread that took it, the source line it started at
(the first line of the d_step, i.e. which C operation it models) and the
ledger after it, as check() prints it.
"""
import re
import sys

src = open(sys.argv[1]).read().splitlines() if len(sys.argv) > 1 else []
step_re = re.compile(r"^\s*(\d+):\s+proc\s+(\d+)\s+\((\w+):\d+\)\s+\S+:(\d+)\s")
cur = None  # (depth, proc, name, line)
msc = None
out = []


def flush():
    if cur is None:
        return
    depth, proc, name, line = cur
    text = src[line - 1].strip() if 0 < line <= len(src) else ""
    who = f"{name}{proc - 1}" if name == "runner" else name
    out.append(f"{depth:>4} {who:<9} l.{line:<4} {text[:62]}"
               + (f"\n       -> {msc}" if msc else ""))


for raw in sys.stdin:
    m = step_re.match(raw)
    if not m and "MSC:" in raw:
        msc = raw.split("MSC:", 1)[1].strip()
        # drop the parts a smaller configuration does not have
        parts = [p.strip() for p in msc.split("|")]
        keep = [p for p in parts
                if not re.fullmatch(r"(r\d 0 h0 l0 s0 b0 w0/0|helper l0 w0/0|"
                                    r"stopped 0/0 0/0 0/0)", p)]
        msc = " | ".join(keep)
        continue
    if m:
        depth, proc, name, line = int(m[1]), int(m[2]), m[3], int(m[4])
        if cur is None or depth != cur[0]:
            flush()
            cur, msc = (depth, proc, name, line), None
    elif raw.startswith("spin: trail ends") or "assertion violated" in raw \
            or "invalid end state" in raw:
        flush()
        cur, msc = None, None
        out.append(raw.rstrip())
flush()
print("\n".join(out))
