#!/usr/bin/env python3
"""A file-based code, the way many simulation codes are: it reads its input deck heat.in
from the current directory, writes its results to out.dat there, and reports progress on
stdout in the simulator protocol. 1-D heat equation on [0, 1], fixed ends at 0, a uniform
source q, diffusivity kappa; explicit Euler. specline runs each task in a directory of its
own (simulator.workdir), so concurrent runs never overwrite each other's heat.in or out.dat.
"""
import json
import os
import sys

sys.stdin.readline()  # the protocol's input line; this code reads its deck instead
deck = {}
with open("heat.in") as f:
    for line in f:
        if line.strip() and not line.startswith("#"):
            key, value = line.split(None, 1)
            deck[key] = value.strip()
kappa, q = float(deck["kappa"]), float(deck["source"])
steps, n = int(deck["steps"]), int(deck["cells"])
dx = 1.0 / n
dt = 0.4 * dx * dx / kappa  # stable explicit step
sub = 20                    # internal steps per output step
u = [0.0] * (n + 1)
t = 0.0
for step in range(1, steps + 1):
    for _ in range(sub):
        u = [0.0] + [u[i] + dt * (kappa * (u[i - 1] - 2 * u[i] + u[i + 1]) / (dx * dx) + q)
                     for i in range(1, n)] + [0.0]
        t += dt
    print(json.dumps({"step": step, "t": t, "values": {"T_mid": u[n // 2]}}), flush=True)
with open("out.dat", "w") as f:
    f.write("# run %s (SPECLINE_SAMPLE_ID=%s) in %s\n# x T\n"
            % (deck["run"], os.environ.get("SPECLINE_SAMPLE_ID", "-"), os.getcwd()))
    for i in range(0, n + 1, 4):
        f.write("%.3f %.6g\n" % (i * dx, u[i]))
print(json.dumps({"final": {"T_max": max(u), "T_mean": sum(u) / len(u)}}), flush=True)
