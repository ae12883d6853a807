"""What auth, API keys and access rules cost Lucent (issues 3, 4 and 5), against baselines on the
same server, data and load. Run by `bench/run costs` after the build; writes
docs/performance-costs.md. Python standard library only; reuses bench.py's helpers.

Measured, each with wrk (2 threads, 32 connections) after a warm-up:
  - GET one document anonymously, with a JWT, with an API key (the same route and row);
  - a list whose read rule is compiled into SQL, against the same rows listed from a collection
    with no rule through an equivalent `filter`, and against the whole list with no rule;
  - logins/s while 64 clients flood the login route, and the p50/p99 of /api/health meanwhile.
"""

import concurrent.futures as cf
import datetime as dt
import os
import subprocess
import sys
import urllib.parse

import bench as b

N = int(os.environ.get("BENCH_POSTS", "5000"))
OUT = os.environ.get("BENCH_COSTS_OUT", os.path.join(b.ROOT, "docs", "performance-costs.md"))

CONFIG = """
[server]
max_limit = 100
[auth]
jwt_secret = "bench-only-secret-0123456789abcdef0123456789abcdef"
jwt_expiry = "2h"
[auth.password]
reject_common = false

[collections.users]
auth = { max_login_attempts = 1000000 }

[collections.posts.fields]
title  = { type = "string", required = true }
status = { type = "select", options = ["draft", "published"], default = "draft", index = true }
views  = { type = "integer", default = 0, index = true }
[collections.posts.access]
read   = "doc.status == 'published'"
create = "user != null"

[collections.open.fields]
title  = { type = "string", required = true }
status = { type = "select", options = ["draft", "published"], default = "draft", index = true }
views  = { type = "integer", default = 0, index = true }
[collections.open.access]
read   = "true"
create = "user != null"
"""


class Costs(b.Lucent):
    def __init__(self):
        super().__init__()
        self.dir = os.path.join(b.WORK, "costs")
        self.config = os.path.join(self.dir, "lucent.toml")

    def prepare(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        with open(self.config, "w") as f:
            f.write(CONFIG)


def row(name, r, base=None):
    ratio = f"{r['ok_rps'] / base['ok_rps']:.2f}" if base else "1.00"
    return (f"| {name} | {r['ok_rps']:,.0f} | {ratio} | {b.fmt_ms(r['p50_us'])} / {b.fmt_ms(r['p99_us'])} "
            f"| {r['errors']} | {r['cpu_ms_per_req']:.3f} |")


def main(duration):
    srv = Costs()
    srv.prepare()
    srv.start()
    try:
        st, doc = srv.http.request("POST", "/api/users/register",
                                   {"email": "costs@bench.example", "password": b.PASSWORD})
        assert st == 201, (st, doc)
        jwt = "Bearer " + doc["token"]
        st, key = srv.http.request("POST", "/api/users/api-keys", {"name": "bench", "scopes": ["read"]}, jwt)
        assert st == 201, (st, key)
        api_key = "Bearer " + key["apiKey"]["key"]

        def seed(i):
            for collection in ("posts", "open"):
                data = {"title": f"Post {i:05d}", "status": "published" if i % 2 == 0 else "draft",
                        "views": (i * 7919) % 10007}
                st, doc = srv.http.request("POST", f"/api/{collection}", data, jwt)
                assert st == 201, (st, doc)
            return doc["doc"]["id"]

        with cf.ThreadPoolExecutor(16) as pool:
            ids = list(pool.map(seed, range(N)))
        srv.stop()
        srv.start()  # statistics refreshed at start, as after any restart
        ids_file = os.path.join(srv.dir, "ids.txt")
        with open(ids_file, "w") as f:
            f.write("\n".join(ids[0::2]) + "\n")

        def run(path, auth=None, method="GET", body=None, ids=None):
            b.wrk(srv, b.WARMUP, path, method=method, body=body, auth=auth, ids_file=ids)
            b.settle(srv)
            return b.wrk(srv, duration, path, method=method, body=body, auth=auth, ids_file=ids)

        published = urllib.parse.quote("status == 'published'")
        results = {
            "anon": run("/api/open/{id}", ids=ids_file),
            "jwt": run("/api/open/{id}", auth=jwt, ids=ids_file),
            "key": run("/api/open/{id}", auth=api_key, ids=ids_file),
            "rule": run("/api/posts?limit=20"),
            "filter": run(f"/api/open?limit=20&filter={published}"),
            "whole": run("/api/open?limit=20"),
        }

        # A login flood (64 clients) and, at the same time, plain GETs on 4 connections.
        env = dict(os.environ, BENCH_METHOD="POST", BENCH_PATH="/api/users/login", BENCH_AUTH="",
                   BENCH_BODY='{"email": "costs@bench.example", "password": "%s"}' % b.PASSWORD,
                   BENCH_IDS="", BENCH_ACK_DIR="")
        flood = subprocess.Popen(["wrk", "-t", "2", "-c", "64", "-d", duration, "--timeout", "10s",
                                  "-s", b.WRK_LUA, f"http://127.0.0.1:{srv.port}"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        plain = subprocess.run(["wrk", "-t", "1", "-c", "4", "-d", duration, "--latency",
                                f"http://127.0.0.1:{srv.port}/api/health"], capture_output=True, text=True)
        out, _ = flood.communicate()
        flood_result = b.json.loads(b.re.search(r"^BENCH_RESULT (\{.*\})$", out, b.re.M).group(1))
        secs = flood_result["duration_us"] / 1e6
        logins = (flood_result["requests"] - flood_result["non2xx"]) / secs
        refused = flood_result["non2xx"] / secs
        p99 = b.re.search(r"99%\s+(\S+)", plain.stdout)
        p50 = b.re.search(r"50%\s+(\S+)", plain.stdout)
        health = b.re.search(r"Requests/sec:\s+(\S+)", plain.stdout)
        rss = b.proc_mem_kib(srv.proc.pid)
    finally:
        srv.stop()

    lines = [
        "# Performance: what auth, keys and rules cost",
        "",
        "Measured by `bench/run costs` (`bench/costs.py`): one Lucent server, "
        f"{N:,} documents in each of two collections with the same data (`posts` with the read rule "
        "`doc.status == 'published'`, `open` with `read = \"true\"`), wrk with 2 threads and 32 "
        f"connections, {duration} per run after a {b.WARMUP} warm-up.",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {b.machine()}",
        f"- Lucent: {srv.version()}",
        "",
        "| request | req/s | vs baseline | p50 / p99 ms | errors | CPU ms/req |",
        "|---|---:|---:|---|---:|---:|",
        row("GET one document, anonymous (baseline)", results["anon"]),
        row("the same, with a JWT (signature + session check)", results["jwt"], results["anon"]),
        row("the same, with an API key (hash lookup + account)", results["key"], results["anon"]),
        row("list of 20 under no rule, `filter=status == 'published'` (baseline)", results["filter"]),
        row("the same rows, through the compiled read rule", results["rule"], results["filter"]),
        row("list of 20 under no rule and no filter", results["whole"], results["filter"]),
        "",
        f"Login flood: 64 clients posting the right password for {duration}: {logins:,.1f} logins/s "
        f"(argon2id, m = 19 MiB, t = 2, p = 1, one hash per core), {refused:,.1f}/s answered 429 "
        "`rate_limited` at once by the bounded hashing queue instead of waiting. Meanwhile "
        f"`/api/health` on 4 other connections: {float(health.group(1)) if health else 0:,.0f} req/s, "
        f"p50 {p50.group(1) if p50 else '?'}, p99 {p99.group(1) if p99 else '?'}. "
        f"RSS after the flood: {b.fmt_mib(rss['VmRSS'])} (peak {b.fmt_mib(rss['VmHWM'])}).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if OUT != "-":
        with open(OUT, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main(b.DURATION if len(sys.argv) < 2 else sys.argv[1])
