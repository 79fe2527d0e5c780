#!/usr/bin/env python3
"""paired-ratio.py FILE LABEL_A LABEL_B — the ratio B/A of rates measured in pairs.

FILE holds one line per round: "a b" (rates, e.g. ops/s, of A and B in that round).
Prints the rounds, the ratio of the medians, and the geometric mean of the per-round
ratios with its 95% interval (Student's t on the log ratios): pairing takes out drift in
the machine's speed between rounds, and the log keeps one fast or slow round from
pulling the mean the way it pulls an arithmetic mean of ratios.
"""
import math
import statistics as st
import sys

# Student's t, 0.975 quantile, for 1..30 degrees of freedom; the normal's beyond.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
        2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074,
        2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def main(path, name_a, name_b):
    pairs = [tuple(map(float, line.split()[:2])) for line in open(path) if line.strip()]
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    print(f"  rounds ({name_a} {name_b}): " + ", ".join(f"{x:.0f} {y:.0f}" for x, y in pairs))
    line = f"  ratio {name_b}/{name_a}: {st.median(b) / st.median(a):.3f} (medians)"
    logs = [math.log(y / x) for x, y in pairs]
    if len(logs) > 1:
        dof = len(logs) - 1
        t = T975[dof - 1] if dof <= len(T975) else 1.96
        m = st.mean(logs)
        h = t * st.stdev(logs) / math.sqrt(len(logs))
        line += (f"; per round {math.exp(m):.3f} (95% CI {math.exp(m - h):.3f} .. "
                 f"{math.exp(m + h):.3f}, geometric mean of {len(logs)} rounds)")
    print(line)


if __name__ == "__main__":
    main(*sys.argv[1:4])
