#!/usr/bin/python3
"""Celery client for the baseline: sends N tasks of one kind keeping at most W in flight,
records send time (before apply_async) and result arrival (rpc:// result message received,
seen through the result consumer's on_message hook), prints one line of k=v.
usage: celery_bench.py noop|spawn N W"""
import sys
import time
from collections import deque

from celery.states import READY_STATES

import celery_tasks


def main():
    kind, n, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    task = celery_tasks.noop if kind == "noop" else celery_tasks.spawn
    # warm-up: connections, the reply queue, the worker's first task
    for _ in range(3):
        task.apply_async().get(timeout=60)
    sent, arrived = {}, {}

    def on_message(meta):
        if meta.get("status") in READY_STATES and meta["task_id"] not in arrived:
            arrived[meta["task_id"]] = time.monotonic()

    pending = deque()
    i = 0
    t_start = time.monotonic()
    while i < n or pending:
        while i < n and len(pending) < w:
            t = time.monotonic()
            r = task.apply_async()
            sent[r.id] = t
            pending.append(r)
            i += 1
        r = pending[0]
        if r.id not in arrived:
            r.get(timeout=120, on_message=on_message, propagate=True)
            arrived.setdefault(r.id, time.monotonic())
        while pending and pending[0].id in arrived:
            pending.popleft()
    lat = sorted(arrived[k] - sent[k] for k in sent)
    first, last = min(sent.values()), max(arrived.values())

    def pct(p):
        return lat[max(0, min(len(lat) - 1, int(-(-p * len(lat) // 1)) - 1))]

    print("celery kind=%s n=%d window=%d rate=%.1f p50_ms=%.3f p99_ms=%.3f wall_s=%.2f" %
          (kind, n, w, n / (last - first), 1e3 * pct(0.5), 1e3 * pct(0.99), time.monotonic() - t_start))


if __name__ == "__main__":
    main()
