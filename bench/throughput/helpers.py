#!/usr/bin/python3
"""Helpers for bench/throughput/run.sh (Debian's /usr/bin/python3, py-amqp from Celery).

  helpers.py tap-declare URL CAMPAIGN QUEUE   bind QUEUE to `specline` / `<c>.sim`: a copy of
                                              every sim.task explore publishes (issued_at)
  helpers.py tap-drain URL QUEUE OUT          write "sample_id issued_at" lines, delete QUEUE
  helpers.py analyze DB TABLE TAPFILE         rate and latency of a campaign (one line, k=v)
  helpers.py rss OUT PID...                   sample VmRSS of PIDs (and, with --tree, their
                                              children) every 0.1 s until killed or all gone;
                                              writes "name max_kb" lines to OUT
  helpers.py rss-series OUT SECONDS --kids P  every SECONDS, "t name rss_kb" of P's children
  helpers.py rss-summary OUT                  per process name: RSS after 10%, at 50%, at the
                                              end, min and max of the samples
  helpers.py per100k DB TABLE K               seconds per K stored points, in stored order
  helpers.py report RESULTS SLOTS             the summary table
  helpers.py rss1 PID...                      now, one per line "name rss_kb pss_kb"
"""
import json
import os
import signal
import sqlite3
import sys
import time
import urllib.parse


def conn(url):
    import amqp
    u = urllib.parse.urlparse(url)
    vhost = urllib.parse.unquote(u.path[1:]) if len(u.path) > 1 else "/"
    c = amqp.Connection(host="%s:%d" % (u.hostname, u.port or 5672), userid=u.username or "guest",
                        password=u.password or "guest", virtual_host=vhost)
    c.connect()
    return c


def tap_declare(url, campaign, queue):
    c = conn(url)
    ch = c.channel()
    ch.exchange_declare("specline", "topic", durable=True, auto_delete=False)
    ch.queue_declare(queue, durable=False, auto_delete=False)
    ch.queue_bind(queue, "specline", campaign + ".sim")
    c.close()


def tap_drain(url, queue, out):
    c = conn(url)
    ch = c.channel()
    n = 0
    with open(out, "w") as f:
        while True:
            m = ch.basic_get(queue, no_ack=True)
            if m is None:
                break
            try:
                d = json.loads(m.body)
                # a bundle (simulator.bundle) carries several sim.tasks
                for t in d["items"] if d.get("kind") == "bundle" else [d]:
                    f.write("%s %.6f\n" % (t["sample_id"], float(t["issued_at"])))
                    n += 1
            except (ValueError, KeyError, TypeError):
                pass
    ch.queue_delete(queue)
    c.close()
    print(n)


def pct(v, p):
    """nearest-rank percentile of a sorted list"""
    if not v:
        return float("nan")
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 1)) - 1))
    return v[k]


def analyze(db, table, tapfile):
    issued = {}
    if tapfile and os.path.exists(tapfile):
        for line in open(tapfile):
            sid, t = line.split()
            t = float(t)
            if sid not in issued or t < issued[sid]:
                issued[sid] = t  # the first issue of a sample (re-issues would be later)
    con = sqlite3.connect(db)
    rows = con.execute('select sample_id, produced_at, stored_at, status from "%s"' % table).fetchall()
    con.close()
    n = len(rows)
    prod = sorted(r[1] for r in rows)
    stor = sorted(r[2] for r in rows)
    ok = sum(1 for r in rows if r[3] == "complete")
    out = {"n": n, "complete": ok}
    if n > 1:
        out["rate"] = (n - 1) / (prod[-1] - prod[0])  # first to last produced_at
        out["rate_stored"] = (n - 1) / (stor[-1] - stor[0])
    lat = sorted(r[2] - issued[r[0]] for r in rows if r[0] in issued)
    p2s = sorted(r[2] - r[1] for r in rows)
    i2p = sorted(r[1] - issued[r[0]] for r in rows if r[0] in issued)
    out["n_lat"] = len(lat)
    if issued:
        out["first_issue_to_last_store_rate"] = n / (stor[-1] - min(issued.values()))
    for name, v in (("lat", lat), ("i2p", i2p), ("p2s", p2s)):
        out[name + "_p50_ms"] = 1e3 * pct(v, 0.5)
        out[name + "_p99_ms"] = 1e3 * pct(v, 0.99)
    print(" ".join("%s=%s" % (k, ("%.3f" % v) if isinstance(v, float) else v) for k, v in out.items()))


def vmrss(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            name, kb = "?", None
            for line in f:
                if line.startswith("Name:"):
                    name = line.split()[1]
                elif line.startswith("VmRSS:"):
                    kb = int(line.split()[1])
            return name, kb
    except OSError:
        return None, None


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def rss(out, args):
    """Max VmRSS per process name over time; with --tree P also the max of the summed RSS of
    P and its descendants ("tree" line); with --kids P the processes are the children of P
    (re-read each time: workers started by `specline run`)."""
    tree = kids = None
    pids = []
    it = iter(args)
    for a in it:
        if a == "--tree":
            tree = int(next(it))
        elif a == "--kids":
            kids = int(next(it))
        else:
            pids.append(int(a))
    best = {}
    best_tree = 0
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__(0, True))
    while not stop[0]:
        cur = list(pids)
        if kids:
            cur += children(kids)
        if tree:
            todo, allp = [tree], []
            while todo:
                p = todo.pop()
                allp.append(p)
                todo += children(p)
            cur += allp
        alive = 0
        total = 0
        seen = set()
        for p in cur:
            if p in seen:
                continue
            seen.add(p)
            name, kb = vmrss(p)
            if kb is None:
                continue
            alive += 1
            if tree:
                total += kb
            best[name] = max(best.get(name, 0), kb)
        best_tree = max(best_tree, total)
        if alive == 0 and not kids:
            break
        if kids and not os.path.exists("/proc/%d" % kids):
            break
        time.sleep(0.1)
    with open(out, "w") as f:
        for k, v in sorted(best.items()):
            f.write("%s %d\n" % (k, v))
        if tree:
            f.write("tree %d\n" % best_tree)


def rss_series(out, every, args):
    """VmRSS of the children of --kids P every `every` seconds until P is gone"""
    kids = int(args[args.index("--kids") + 1])
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *a: stop.__setitem__(0, True))
    t0 = time.time()
    with open(out, "w") as f:
        while not stop[0] and os.path.exists("/proc/%d" % kids):
            for p in children(kids):
                name, kb = vmrss(p)
                if kb is not None:
                    f.write("%.1f %s %d\n" % (time.time() - t0, name, kb))
            f.flush()
            time.sleep(every)


def rss_summary(out):
    by = {}
    for line in open(out):
        t, name, kb = line.split()
        by.setdefault(name, []).append((float(t), int(kb)))
    for name, v in sorted(by.items()):
        kbs = [k for _, k in v]
        n = len(kbs)
        print("   RSS %-15s samples=%d after 10%%=%d kB at 50%%=%d kB end=%d kB min=%d max=%d kB: %s, <= 8 MB: %s"
              % (name, n, kbs[n // 10], kbs[n // 2], kbs[-1], min(kbs), max(kbs),
                 "flat" if kbs[-1] - kbs[n // 10] <= 1024 else "GROWS", "yes" if max(kbs) <= 8192 else "NO"))


def per100k(db, table, k):
    k = int(k)
    con = sqlite3.connect(db)
    stor = sorted(r[0] for r in con.execute('select stored_at from "%s"' % table))
    con.close()
    n = len(stor)
    times = []
    for i in range(k, n + 1, k):
        times.append(stor[i - 1] - stor[i - k] if i > k else stor[i - 1] - stor[0])
    print("   stored %d; seconds per %d: %s" % (n, k, " ".join("%.1f" % t for t in times)))
    if n > 1:
        print("   overall %.0f tasks/s (first to last stored)" % ((n - 1) / (stor[-1] - stor[0])))


def report(resfile, slots):
    """the table: one row per system, ratios to Celery and to the raw quorum ceiling"""
    rows = []
    for line in open(resfile):
        f = line.rstrip("\n").split("|")
        if len(f) >= 7:
            rows.append(f)
    by = {r[0]: r for r in rows}

    def num(x):
        try:
            return float(x)
        except ValueError:
            return None

    cn = num(by.get("celery-noop", ["", "", "-"])[2])
    cs = num(by.get("celery-spawn", ["", "", "-"])[2])
    rq = num(by.get("rt-quorum-%s" % slots, ["", "", "-"])[2])
    rq100 = num(by.get("rt-quorum-100", ["", "", "-"])[2])
    hdr = ("system", "tasks/s", "p50 ms", "p99 ms", "worker RSS", "x Celery noop/spawn",
           "%% raw quorum p%s/p100" % slots, "target met?")
    out = []
    for k, name, rate, p50, p99, rss, note in (r[:7] for r in rows):
        rate_f = num(rate)
        rss_f = num(rss)
        xc = pr = tgt = ""
        if k.startswith("line-") and rate_f:
            xc = "%s / %s" % ("%.1fx" % (rate_f / cn) if cn else "-", "%.1fx" % (rate_f / cs) if cs else "-")
            pr = "%s / %s" % ("%.0f%%" % (100 * rate_f / rq) if rq else "-",
                              "%.0f%%" % (100 * rate_f / rq100) if rq100 else "-")
            t = []
            if k.startswith("line-persistent"):
                if cn:
                    t.append("10x Celery noop: %s" % ("yes" if rate_f >= 10 * cn else "NO"))
                if rq:
                    t.append("60%% raw p%s: %s" % (slots, "yes" if rate_f >= 0.6 * rq else "NO"))
            elif cs:
                t.append("1.5x Celery spawn: %s" % ("yes" if rate_f >= 1.5 * cs else "NO"))
            tgt = "; ".join(t)
        if (k.startswith("idle-") or k.startswith("sim-load") or k.startswith("line-")) and rss_f:
            m = "RSS<=8MB: %s" % ("yes" if rss_f <= 8192 else "NO")
            tgt = (tgt + "; " + m) if tgt else m
        rs = ("%.1f MB" % (rss_f / 1024)) if rss_f else "-"
        fmt = lambda v: ("%.1f" % num(v)) if num(v) is not None else (v or "-")
        out.append((name, fmt(rate), fmt(p50), fmt(p99), rs, xc, pr, tgt, note))
    hdr = hdr + ("note",)
    w = [max(len(str(r[i])) for r in out + [hdr]) for i in range(len(hdr))]
    print(" | ".join(h.ljust(w[i]) for i, h in enumerate(hdr)))
    print("-+-".join("-" * w[i] for i in range(len(hdr))))
    for r in out:
        print(" | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))


def main():
    a = sys.argv[1:]
    if not a:
        print(__doc__)
        return 2
    cmd = a[0]
    if cmd == "tap-declare":
        tap_declare(*a[1:4])
    elif cmd == "tap-drain":
        tap_drain(*a[1:4])
    elif cmd == "analyze":
        analyze(*a[1:4])
    elif cmd == "report":
        report(a[1], a[2])
    elif cmd == "rss-series":
        rss_series(a[1], float(a[2]), a[3:])
    elif cmd == "rss-summary":
        rss_summary(a[1])
    elif cmd == "per100k":
        per100k(*a[1:4])
    elif cmd == "rss":
        rss(a[1], a[2:])
    elif cmd == "rss1":
        for p in a[1:]:
            name, kb = vmrss(int(p))
            pss = None
            try:
                for line in open("/proc/%d/smaps_rollup" % int(p)):
                    if line.startswith("Pss:"):
                        pss = int(line.split()[1])
            except OSError:
                pass
            print(name, kb, pss)
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
