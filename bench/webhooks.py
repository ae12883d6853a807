#!/usr/bin/env python3
"""What a webhook costs a write, and how fast the outbox delivers (issue 15). Run by
`bench/run webhooks [DURATION]` after the build; prints the numbers and writes
docs/performance-webhooks.md. Python standard library only; reuses bench.py's helpers.

Measured on one Lucent server (SQLite), with a local receiver (asyncio, answers 200 at once):
  - bench.py's create scenario (e: authenticated creates of a post, wrk 2 threads, 32
    connections), alternated, each on a fresh database: without a webhook; with one webhook
    matching every create whose receiver never answers (after its first 256 messages the worker
    waits on them: the cost of writing the message with the write); and with one webhook
    delivered live to the receiver on the same cores (the server's CPU per create then includes
    sending it);
  - delivery throughput: a backlog of N messages in the outbox (copies of one real message,
    written while the server was stopped) drained to the receiver after a start.
"""

import asyncio
import datetime as dt
import json
import os
import shutil
import sqlite3
import sys
import threading
import time
import uuid

import bench as b

N_BACKLOG = int(os.environ.get("BENCH_BACKLOG", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
OUT = os.environ.get("BENCH_WEBHOOKS_OUT", os.path.join(b.ROOT, "docs", "performance-webhooks.md"))
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Receiver:
    """A minimal keep-alive HTTP/1.1 receiver on a thread of its own: counts requests to /hook
    and keeps the time of each; a silent one reads requests and never answers."""

    def __init__(self, silent=False):
        self.silent = silent
        self.port = b.free_port()
        self.times = []
        self.lock = threading.Lock()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready):
        loop = asyncio.new_event_loop()

        async def handle(reader, writer):
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    if length:
                        await reader.readexactly(length)
                    with self.lock:
                        self.times.append(time.perf_counter())
                    if not self.silent:
                        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", self.port))
        ready.set()
        loop.run_until_complete(server.serve_forever())

    def count(self):
        with self.lock:
            return len(self.times)

    def wait(self, count, limit=120):
        t0 = time.perf_counter()
        while self.count() < count:
            if time.perf_counter() - t0 > limit:
                raise RuntimeError(f"the receiver got {self.count()} of {count} messages")
            time.sleep(0.02)


def webhook(port):
    return (f'\n[[webhooks]]\nurl = "http://127.0.0.1:{port}/hook"\nevents = ["posts.create"]\n'
            f'secret = "{SECRET}"\n')


class Hooked(b.Lucent):
    def __init__(self, name, extra):
        super().__init__()
        self.dir = os.path.join(b.WORK, f"webhooks-{name}")
        self.db_path = os.path.join(self.dir, "lucent.db")
        self.config = os.path.join(self.dir, "lucent.toml")
        self.extra = extra

    def prepare(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.write_config(self.extra)

    def write_config(self, extra):
        with open(self.config, "w") as f:
            f.write(b.LUCENT_CONFIG + extra)


def create_run(name, extra, receiver, duration):
    """bench.py's scenario e on a fresh server; with a live webhook (`receiver`), also waits
    until every create was delivered."""
    srv = Hooked(name, extra)
    srv.prepare()
    srv.start()
    try:
        uid, token, _ = srv.register("bench@example.com")
        body = json.dumps({"title": "Bench {n}", "body": b.BODY_TEXT, "status": "draft", "views": 1,
                           "author": uid})
        before = receiver.count() if receiver else 0
        b.wrk(srv, b.WARMUP, srv.posts, method="POST", body=body, auth=token)
        b.settle(srv)
        r = b.wrk(srv, duration, srv.posts, method="POST", body=body, auth=token)
        if receiver:
            created = len(srv.db_ids())
            t0 = time.perf_counter()
            receiver.wait(before + created)
            r["drain_s"] = time.perf_counter() - t0
            r["delivered"] = receiver.count() - before
        b.log(f"{name}: {r['ok_rps']:.0f} creates/s, p50 {r['p50_us'] / 1000:.2f} ms, "
              f"p99 {r['p99_us'] / 1000:.2f} ms, CPU {r['cpu_ms_per_req']:.3f} ms/create"
              + (f", all {r['delivered']} delivered {r['drain_s']:.2f} s after the run" if receiver else ""))
        return r
    finally:
        srv.stop()


def backlog_run(receiver):
    """N messages waiting in the outbox when the server starts; the rate they reach the receiver."""
    down = b.free_port()  # nothing listens: the first message's attempt fails and it stays
    srv = Hooked("backlog", webhook(down))
    srv.prepare()
    srv.start()
    try:
        uid, token, _ = srv.register("bench@example.com")
        srv.create_post({"title": "Template", "body": b.BODY_TEXT, "author": uid}, token)
        time.sleep(1)
    finally:
        srv.stop()
    db = sqlite3.connect(srv.db_path)
    row = db.execute("SELECT kind, target, event, payload, created_at FROM _lucent_outbox").fetchone()
    assert row, "the message of the template post is not in the outbox"
    kind, target, event, payload, created = row
    target = target.replace(str(down), str(receiver.port))
    db.execute("DELETE FROM _lucent_outbox")
    db.executemany(
        "INSERT INTO _lucent_outbox (id, kind, target, event, payload, state, attempts, next_at, "
        "created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
        ((str(uuid.uuid4()), kind, target, event, payload, created, created)
         for _ in range(N_BACKLOG)))
    db.commit()
    db.close()
    srv.write_config(webhook(receiver.port))
    before = receiver.count()
    srv.start()
    try:
        receiver.wait(before + N_BACKLOG)
        times = receiver.times[before:before + N_BACKLOG]
        took = times[-1] - times[0]
        rate = (N_BACKLOG - 1) / took
        cpu = b.proc_cpu_ticks(srv.proc.pid) / b.CLK_TCK
        b.log(f"backlog: {N_BACKLOG} messages delivered in {took:.2f} s: {rate:,.0f}/s "
              f"(server CPU {cpu:.1f} s in all, start included)")
        return {"n": N_BACKLOG, "seconds": took, "rate": rate, "cpu_s": cpu}
    finally:
        srv.stop()


NAMES = {"plain": "no webhook", "written": "one webhook, written only", "live": "one webhook, delivered live"}


def main(duration):
    receiver, silent = Receiver(), Receiver(silent=True)
    runs = {name: [] for name in NAMES}
    for n in range(ROUNDS):
        order = list(NAMES) if n % 2 == 0 else list(NAMES)[::-1]
        for name in order:
            extra = {"plain": "", "written": webhook(silent.port), "live": webhook(receiver.port)}[name]
            runs[name].append(create_run(name, extra, receiver if name == "live" else None, duration))
    drain = backlog_run(receiver)

    def mean(name, key):
        return sum(r[key] for r in runs[name]) / len(runs[name])

    plain = mean("plain", "ok_rps")
    cpu_plain = mean("plain", "cpu_ms_per_req")
    lines = [
        "# Performance: what a webhook costs",
        "",
        "Measured by `bench/run webhooks` (`bench/webhooks.py`): Lucent on SQLite, bench.py's "
        f"create scenario (authenticated creates, wrk 2 threads, 32 connections, {duration} after a "
        f"{b.WARMUP} warm-up, a fresh database each run), alternated, {ROUNDS} run(s) each: without a "
        "webhook; with one webhook matching every create whose receiver never answers (after its "
        "first 256 messages the worker waits on them: what writing the message with the write "
        "costs); and with one webhook delivered live to a local asyncio receiver answering 200, on "
        "the same 2 cores (the server's CPU then includes sending every message).",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {b.machine()}; "
        f"load average before: {os.getloadavg()[0]:.1f} (other work shares the machine)",
        f"- Lucent: {Hooked('plain', '').version()}",
        "",
        "| run | creates/s | p50 / p99 ms | server CPU ms per create | delivered |",
        "|---|---:|---|---:|---|",
    ]
    for name in NAMES:
        for i, r in enumerate(runs[name]):
            delivered = (f"all {r['delivered']:,}, the last {r['drain_s']:.2f} s after the run"
                         if name == "live" else "")
            lines.append(f"| {NAMES[name]} #{i + 1} "
                         f"| {r['ok_rps']:,.0f} | {b.fmt_ms(r['p50_us'])} / {b.fmt_ms(r['p99_us'])} "
                         f"| {r['cpu_ms_per_req']:.3f} | {delivered} |")
    lines.append("")
    for name in ("written", "live"):
        rps, cpu = mean(name, "ok_rps"), mean(name, "cpu_ms_per_req")
        lines.append(f"- {NAMES[name]}: {rps / plain:.2f}× the creates per second "
                     f"({(1 - rps / plain) * 100:+.1f}% cost), {cpu / cpu_plain:.2f}× the server CPU "
                     "per create.")
    lines += [
        "",
        f"Delivery: {drain['n']:,} messages waiting in the outbox at start reached the receiver in "
        f"{drain['seconds']:.2f} s: {drain['rate']:,.0f} deliveries/s.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if OUT != "-":
        with open(OUT, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main(b.DURATION if len(sys.argv) < 2 else sys.argv[1])
