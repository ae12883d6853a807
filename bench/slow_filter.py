#!/usr/bin/env python3
"""The slow-filter attack of issue 12 (defect 1), measured: what an attacker's `~` filters over
long stored text cost, and how long another user's `GET /api/users/me` waits meanwhile.

A self-registered attacker stores ROWS notes of ~900 KiB each ('a' repeated, then 'b') and lists
them with CLAUSES `body ~ '<a…ab>'` clauses of PATTERN characters: the worst case of LIKE '%…%',
which compares the pattern at every position of the text and matches only at the end (so no
clause short-circuits the others). ATTACKERS such lists run at once, each in a
loop until the measuring window ends (or, with --disconnect S, each request is abandoned after
S seconds, as a client that gives up). A victim signed in on the same server polls /me every
100 ms, before the attack and during it; the script prints the attacker's answers and the
victim's latencies.

    bench/slow_filter.py [--postgres ADMIN_URL] [--clauses 4] [--pattern 256] [--rows 3]
                         [--attackers 2] [--seconds 15] [--disconnect S]

The Lucent binary: BENCH_LUCENT_BIN, else bench/.work/target/release/lucent (bench/run builds
it), else target/release/lucent. Standard library only; PostgreSQL databases are made and dropped
with `psql`.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-Password-2718"

CONFIG = """
[server]
body_limit = "2MiB"
[auth]
jwt_secret = "bench-only-secret-0123456789abcdef0123456789abcdef"
jwt_expiry = "2h"
[auth.password]
reject_common = false

[collections.users]
auth = true
[collections.users.access]
read = "user != null && doc.id == user.id"

[collections.notes.fields]
body = { type = "text" }
[collections.notes.access]
read = "user != null"
create = "user != null"
"""


def binary():
    for path in (os.environ.get("BENCH_LUCENT_BIN"),
                 os.path.join(ROOT, "bench", ".work", "target", "release", "lucent"),
                 os.path.join(ROOT, "target", "release", "lucent")):
        if path and os.path.exists(path):
            return path
    raise SystemExit("no Lucent binary: set BENCH_LUCENT_BIN or build with cargo build --release")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, token=None, timeout=120):
    """(status, json, seconds); status None when the client gave up after `timeout`."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    started = time.perf_counter()
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        response = conn.getresponse()
        raw = response.read()
        took = time.perf_counter() - started
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw[:200]
        return response.status, doc, took
    except (TimeoutError, socket.timeout):
        return None, None, time.perf_counter() - started
    finally:
        conn.close()


def psql(admin_url, sql):
    subprocess.run(["psql", admin_url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def sign_in(port, email):
    status, doc, _ = request(port, "POST", "/api/users/register",
                             {"email": email, "password": PASSWORD})
    assert status == 201, (status, doc)
    return doc["token"]


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def poll_me(port, token, until, out):
    while time.perf_counter() < until:
        status, _, took = request(port, "GET", "/api/users/me", token=token)
        out.append((status, took))
        time.sleep(0.1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="admin URL; a fresh database is made and dropped")
    parser.add_argument("--clauses", type=int, default=4)
    parser.add_argument("--pattern", type=int, default=256, help="characters per operand")
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--size", type=int, default=900 * 1024, help="characters per note")
    parser.add_argument("--attackers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--disconnect", type=float, help="abandon each attack after S seconds")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="lucent-slow-filter-")
    with open(os.path.join(work, "lucent.toml"), "w") as f:
        f.write(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUCENT_")}
    env["LUCENT_LOG"] = "warn"
    database = None
    if args.postgres:
        database = f"lucent_slow_{uuid.uuid4().hex[:12]}"
        psql(args.postgres, f"CREATE DATABASE {database}")
        env["LUCENT_DATABASE_URL"] = args.postgres.rsplit("/", 1)[0] + "/" + database
    port = free_port()
    log = open(os.path.join(work, "server.log"), "wb")
    server = subprocess.Popen([binary(), "serve", "--config", os.path.join(work, "lucent.toml"),
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        for _ in range(600):
            try:
                if request(port, "GET", "/api/health", timeout=1)[0] == 200:
                    break
            except OSError:
                time.sleep(0.05)
        attacker = sign_in(port, "attacker@bench.example")
        victim = sign_in(port, "victim@bench.example")
        for _ in range(args.rows):
            status, doc, _ = request(port, "POST", "/api/notes", {"body": "a" * (args.size - 1) + "b"},
                                     token=attacker)
            assert status == 201, (status, doc)
        operand = "a" * (args.pattern - 1) + "b"
        filt = " && ".join([f"body ~ '{operand}'"] * args.clauses)
        path = "/api/notes?filter=" + urllib.parse.quote(filt, safe="")

        quiet = []
        poll_me(port, victim, time.perf_counter() + 2, quiet)

        answers = []
        during = []
        until = time.perf_counter() + args.seconds

        def attack():
            while time.perf_counter() < until:
                status, doc, took = request(port, "GET", path, token=attacker,
                                            timeout=args.disconnect or 300)
                code = doc.get("error", {}).get("code") if isinstance(doc, dict) else None
                answers.append((status, code, took))

        threads = [threading.Thread(target=attack) for _ in range(args.attackers)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        poll_me(port, victim, until, during)
        for t in threads:
            t.join()
        after = []
        poll_me(port, victim, time.perf_counter() + 2, after)

        engine = "PostgreSQL" if args.postgres else "SQLite"
        print(f"engine: {engine}; {args.rows} rows of {args.size // 1024} KiB; {args.clauses} "
              f"clauses of {args.pattern} chars; {args.attackers} attackers for {args.seconds:.0f} s"
              + (f", each giving up after {args.disconnect} s" if args.disconnect else ""))
        kinds = {}
        for status, code, took in answers:
            kinds.setdefault((status, code), []).append(took)
        for (status, code), took in sorted(kinds.items(), key=str):
            label = f"{status} {code}" if status else "abandoned by the client"
            print(f"  attacker: {len(took)} x {label}, {statistics.median(took):.2f} s median, "
                  f"{max(took):.2f} s max")
        for name, samples in (("before", quiet), ("during", during), ("after", after)):
            took = [t * 1000 for _, t in samples]
            bad = sorted({str(s) for s, _ in samples if s != 200})
            print(f"  victim GET /me {name:6}: {len(took)} requests, p50 {percentile(took, 50):.1f} ms,"
                  f" p99 {percentile(took, 99):.1f} ms, max {max(took):.1f} ms"
                  + (f", answers other than 200: {', '.join(bad)}" if bad else ""))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        if database:
            psql(args.postgres, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
