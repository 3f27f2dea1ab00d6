"""`make chaos ROUNDS=N OBJECTS=M`: kill -9 never loses or leaves a document.

A real Elasticsearch (ES_URL) and moto for S3 (S3_ENDPOINT, or a moto server started here from the
stand-ins' venv). One connector over one bucket of OBJECTS small text files, each holding known words, so
that every document's `body` can be checked against the object's current content.

Round 0 syncs the bucket once without faults and measures how long a full sync takes. Then every round:
  1. changes the bucket: adds, overwrites with new content, deletes some objects;
  2. queues a job (`job start`, full or incremental at random) and starts the service;
  3. kills the service with SIGKILL at a random moment, one or more times, restarting it after each kill
     (later kills wait until the restarted instance has taken the job over); with `--churn-while-down`
     the bucket also changes while the service is dead;
  4. lets the job run to its end, then checks that the index is exactly the bucket (same ids, each
     document's `filename`, `size_in_bytes`, `_timestamp`, `etag` and `body` matching the object's current
     content, no extra documents), that the job ended `completed` with counts that add up, that the
     connector is not left `in_progress`, and that no other job of the connector was left running.

Every random choice comes from one seeded RNG (`--seed`, printed). The run prints a line per round and a
summary, and exits non-zero on any mismatch. Each round has a deadline (`--round-timeout`); every process
started here is stopped on every way out.
"""

import argparse
import atexit
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import world
from world import es, log

BUCKET = "content-sync-chaos"
CONNECTOR = "chaos"
INDEX = "search-chaos"
ENDED = ("completed", "error", "canceled")
WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()

_procs = []  # every process started here, stopped on every way out


def _stop_all():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass


def _on_signal(signum, _frame):
    _stop_all()
    sys.exit(128 + signum)


class Failure(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------
# S3: the bucket and its model (key -> content)

def start_moto():
    """A moto server of our own on a free port; returns its endpoint."""
    moto = os.environ.get("MOTO_SERVER_BIN") or os.path.join(os.path.dirname(sys.executable), "moto_server")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    logf = open(os.path.join(tempfile.gettempdir(), f"chaos-moto-{port}.log"), "wb")
    p = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=logf, stderr=logf,
                         stdin=subprocess.DEVNULL)
    _procs.append(p)
    url = f"http://127.0.0.1:{port}"
    import urllib.request
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1).read()
            return url
        except Exception:
            if p.poll() is not None:
                raise Failure(f"moto_server exited with status {p.returncode}")
            time.sleep(0.1)
    raise Failure("moto_server does not answer")


class Bucket:
    def __init__(self, s3, rng):
        self.s3, self.rng = s3, rng
        self.model = {}  # key -> bytes
        self.serial = 0

    def text(self, key):
        self.serial += 1
        words = " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(3, 40)))
        return f"{key} version {self.serial} {words}\n".encode()

    def new_key(self):
        self.serial += 1
        # Keys spread over folders so that changes land before and after any listing checkpoint.
        return f"d{self.rng.randrange(20):02}/f{self.serial:07}.txt"

    def put(self, items):
        world.put_all(self.s3, BUCKET, items)
        self.model.update(items)

    def populate(self, n):
        items = [("empty/", b""), ("empty/zero.txt", b"")]
        while len(items) < n:
            k = self.new_key()
            items.append((k, self.text(k)))
        self.put(items)

    def churn(self, fraction):
        """Adds, overwrites and deletes about `fraction` of the objects each; returns the counts."""
        n = max(1, int(len(self.model) * fraction))
        keys = sorted(k for k in self.model if not k.startswith("empty/"))
        doomed = self.rng.sample(keys, min(n, len(keys)))
        for i in range(0, len(doomed), 1000):
            chunk = doomed[i:i + 1000]
            self.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in chunk]})
        for k in doomed:
            del self.model[k]
        rest = sorted(set(keys) - set(doomed))
        changed = self.rng.sample(rest, min(n, len(rest)))
        added = [self.new_key() for _ in range(n)]
        self.put([(k, self.text(k)) for k in changed + added])
        return {"added": len(added), "overwritten": len(changed), "deleted": len(doomed)}

    def listing(self):
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for o in page.get("Contents", []):
                out[o["Key"]] = o
        return out


# ---------------------------------------------------------------------------------------------------------
# Elasticsearch reads

def index_docs():
    es("POST", f"/{INDEX}/_refresh")
    docs = {}
    page = es("POST", f"/{INDEX}/_search?scroll=2m", {"size": 1000, "sort": ["_doc"]})
    scroll = page.get("_scroll_id")
    try:
        while page["hits"]["hits"]:
            for h in page["hits"]["hits"]:
                docs[h["_id"]] = h["_source"]
            page = es("POST", "/_search/scroll", {"scroll": "2m", "scroll_id": scroll})
            scroll = page.get("_scroll_id", scroll)
    finally:
        if scroll:
            es("DELETE", "/_search/scroll", {"scroll_id": scroll}, ok_missing=True)
    total = page["hits"]["total"]
    if isinstance(total, dict) and len(docs) != total["value"]:
        raise Failure(f"scroll read {len(docs)} documents of {total['value']}")
    return docs


def job(job_id):
    return es("GET", f"/.elastic-connectors-sync-jobs/_doc/{job_id}")["_source"]


def connector_jobs():
    es("POST", "/.elastic-connectors-sync-jobs/_refresh")
    hits = es("POST", "/.elastic-connectors-sync-jobs/_search", {
        "query": {"term": {"connector.id": CONNECTOR}}, "size": 1000, "sort": [{"created_at": "asc"}]})
    return [(h["_id"], h["_source"]) for h in hits["hits"]["hits"]]


def norm(text):
    return " ".join((text or "").split())


def parse_time(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------------------
# The check: index == bucket

def check_index(bucket):
    """Returns (lost, extra, stale, details) comparing the index with the bucket's listing and contents."""
    listed = bucket.listing()
    if set(listed) != set(bucket.model):
        raise Failure(f"the bucket does not hold what was written: {len(listed)} listed, "
                      f"{len(bucket.model)} written")
    docs = index_docs()
    expected = {world.doc_id(BUCKET, k): k for k in listed}
    lost = sorted(expected[i] for i in set(expected) - set(docs))
    extra = sorted(docs[i].get("filename", i) for i in set(docs) - set(expected))
    stale, details = [], []
    for i in set(expected) & set(docs):
        key, doc, obj = expected[i], docs[i], listed[expected[i]]
        want_body = bucket.model[key].decode()
        problems = []
        if doc.get("filename") != key:
            problems.append(f"filename {doc.get('filename')!r}")
        if doc.get("size_in_bytes") != obj["Size"]:
            problems.append(f"size_in_bytes {doc.get('size_in_bytes')} != {obj['Size']}")
        if doc.get("id") != i or doc.get("bucket") != BUCKET:
            problems.append(f"id/bucket {doc.get('id')}/{doc.get('bucket')}")
        ts = doc.get("_timestamp")
        if not ts or parse_time(ts) != obj["LastModified"]:
            problems.append(f"_timestamp {ts} != {obj['LastModified'].isoformat()}")
        if doc.get("etag") != obj["ETag"]:
            problems.append(f"etag {doc.get('etag')} != {obj['ETag']}")
        if norm(doc.get("body")) != norm(want_body):
            problems.append(f"body {norm(doc.get('body'))[:60]!r} != {norm(want_body)[:60]!r}")
        if problems:
            stale.append(key)
            if len(details) < 5:
                details.append(f"{key}: " + "; ".join(problems))
    return lost, extra, sorted(stale), details, len(docs)


# ---------------------------------------------------------------------------------------------------------
# The service

class Instance:
    def __init__(self, args, log_path):
        self.service = world.Service(args.binary, args.config, log_path)
        _procs.append(self.service.proc)
        self.started = time.monotonic()
        self.log_path = log_path

    def alive(self):
        return self.service.proc.poll() is None

    def kill9(self):
        if self.alive():
            self.service.proc.send_signal(signal.SIGKILL)
        self.service.proc.wait(10)
        self.service.log_file.close()

    def stop(self):
        # A SIGTERM in the first milliseconds of the process, before the service has installed its
        # handler, ends it by the signal's default action (status -15): harmless, but not what we test.
        time.sleep(max(0.0, 2.0 - (time.monotonic() - self.started)))
        return self.service.stop(signal.SIGTERM, timeout=60)

    def log_text(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")


def cli(args, *argv):
    r = subprocess.run([args.binary, "-c", args.config, *argv], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, ALLOW_ES_VERSION_MISMATCH="true"))
    if r.returncode != 0:
        raise Failure(f"content-sync {' '.join(argv)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout.strip()


def wait(what, deadline, probe, instance=None, every=0.2):
    while True:
        got = probe()
        if got:
            return got
        if instance is not None and not instance.alive():
            raise Failure(f"the service exited by itself (status {instance.service.proc.returncode}) "
                          f"while waiting for {what}; log: {instance.log_path}")
        if time.monotonic() > deadline:
            raise Failure(f"timed out waiting for {what}")
        time.sleep(every)


def setup(args, rng):
    s3 = world.s3_client()
    world.reset_bucket(s3, BUCKET, "us-east-1")
    bucket = Bucket(s3, rng)
    started = time.time()
    bucket.populate(args.objects)
    log(f"bucket {BUCKET}: {len(bucket.model)} objects uploaded in {time.time() - started:.1f} s")

    with open(args.config, "w") as f:
        f.write(f"elasticsearch.host: {world.ES_URL}\n"
                "service.idling: 0.5\nservice.heartbeat: 2\n"
                f"connectors:\n  - connector_id: '{CONNECTOR}'\n    service_type: 's3'\n")
        for k in ("ES_USERNAME", "ES_PASSWORD", "ES_API_KEY"):
            if os.environ.get(k):
                f.write({"ES_USERNAME": "elasticsearch.username", "ES_PASSWORD": "elasticsearch.password",
                         "ES_API_KEY": "elasticsearch.api_key"}[k] + f": {os.environ[k]}\n")
    world.ensure_system_indices(args.binary, args.config)
    es("DELETE", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", ok_missing=True)
    for job_id, _ in connector_jobs():  # (no _delete_by_query in Elasticsearch's minimal distribution)
        es("DELETE", f"/.elastic-connectors-sync-jobs/_doc/{job_id}", ok_missing=True)
    es("POST", "/.elastic-connectors-sync-jobs/_refresh")
    es("DELETE", f"/{INDEX}", ok_missing=True)
    cli(args, "connector", "create", "--id", CONNECTOR, "--index-name", INDEX, "--buckets", BUCKET,
        "--endpoint-url", world.S3_ENDPOINT,
        "--aws-access-key-id", os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        "--aws-secret-access-key", os.environ.get("AWS_SECRET_ACCESS_KEY", "test-secret"))
    return bucket


class Round:
    def __init__(self, n):
        self.n = n
        self.kills = 0
        self.kills_mid_job = 0
        self.lost = self.extra = self.stale = 0
        self.recovery = 0.0
        self.failures = []
        self.line = ""


def run_round(args, rng, bucket, n, est, workdir):
    """One round; returns a Round (failures listed in it)."""
    r = Round(n)
    deadline = time.monotonic() + args.round_timeout
    job_type = "full" if n == 0 or rng.random() < args.full_share else "incremental"
    changes = {"added": 0, "overwritten": 0, "deleted": 0} if n == 0 else bucket.churn(args.churn)
    before = set(index_docs()) if n else set()
    kills = 0 if n == 0 else rng.randint(1, args.max_kills)
    churned_while_down = False

    job_id = cli(args, "job", "start", "--connector", CONNECTOR, "--type", job_type)
    instances = []

    def start_instance():
        inst = Instance(args, os.path.join(workdir, f"round-{n:03}-instance-{len(instances) + 1}.log"))
        instances.append(inst)
        return inst

    try:
        inst = start_instance()
        seen_at_kill = None
        for k in range(kills):
            # Wait until this instance runs the job: the first claims it (pending → in_progress); a
            # restarted one takes it over (its last_seen moves) once the dead one's lease has expired.
            def running():
                j = job(job_id)
                if j["status"] in ENDED:
                    return j
                if j["status"] == "in_progress" and (seen_at_kill is None or j.get("last_seen") != seen_at_kill):
                    return j
                return None
            wait(f"job {job_id} to run (kill {k + 1})", deadline, running, inst)
            # Anywhere in the job; for a job expected to outlast its first checkpoint (10 s), half the
            # time after that checkpoint, so that resumes from a checkpoint are exercised.
            span = est[job_type] * 1.2
            if span > 11 and rng.random() < 0.5:
                delay = rng.uniform(10.5, span)
            else:
                delay = rng.uniform(0, span)
            time.sleep(delay)
            inst.kill9()
            r.kills += 1
            after = job(job_id)
            mid = after["status"] not in ENDED
            r.kills_mid_job += mid
            seen_at_kill = after.get("last_seen")
            cp = (after.get("metadata") or {}).get("checkpoint")
            log(f"  round {n}: kill -9 #{k + 1} after {delay:.1f} s, job {after['status']}"
                f" (indexed {after.get('indexed_document_count')}, checkpoint {cp})")
            if args.churn_while_down and mid and rng.random() < 0.5:
                extra_changes = bucket.churn(args.churn / 4)
                churned_while_down = True
                log(f"  round {n}: while down: {extra_changes}")
            time.sleep(rng.uniform(0, 2))
            inst = start_instance()
        restarted = time.monotonic()

        def ended():
            j = job(job_id)
            return j if j["status"] in ENDED else None
        done = wait(f"job {job_id} to end", deadline, ended, inst, every=0.25)
        r.recovery = time.monotonic() - restarted if kills else 0.0

        def connector_idle():
            c = world.connector(CONNECTOR)
            return c if c.get("last_sync_status") != "in_progress" else None
        conn = wait("the connector to leave in_progress", deadline, connector_idle, inst)
        # A job that no kill interrupted tells how long this type of job takes.
        if r.kills_mid_job == 0 and done["status"] == "completed" and done.get("started_at") \
                and done.get("completed_at"):
            est[job_type] = max(1.0, world.job_seconds(done))
        rc = inst.stop()
        if rc != 0:
            r.failures.append(f"the last instance exited with status {rc} on SIGTERM")
    finally:
        for i in instances:
            if i.alive():
                i.kill9()

    # --- checks -------------------------------------------------------------------------------------------
    if done["status"] != "completed":
        r.failures.append(f"job {job_id} ended {done['status']}: {done.get('error')}")
    if conn.get("last_sync_status") != "completed":
        r.failures.append(f"connector last_sync_status {conn.get('last_sync_status')}: {conn.get('last_sync_error')}")
    lost, extra, stale, details, total = check_index(bucket)
    r.lost, r.extra, r.stale = len(lost), len(extra), len(stale)
    if lost:
        r.failures.append(f"{len(lost)} documents lost, e.g. {lost[:5]}")
    if extra:
        r.failures.append(f"{len(extra)} extra documents, e.g. {extra[:5]}")
    if stale:
        r.failures.append(f"{len(stale)} stale documents: " + " | ".join(details))
    # Counts: the bucket's size, and for a job whose bucket did not change under it, exactly what it did.
    indexed, deleted = done.get("indexed_document_count"), done.get("deleted_document_count")
    if done.get("total_document_count") != len(bucket.model):
        r.failures.append(f"total_document_count {done.get('total_document_count')} != {len(bucket.model)}")
    if not churned_while_down:
        want_deleted = len(before - {world.doc_id(BUCKET, k) for k in bucket.model})
        want_indexed = len(bucket.model) if job_type == "full" else changes["added"] + changes["overwritten"]
        if (indexed, deleted) != (want_indexed, want_deleted):
            r.failures.append(f"counts: indexed {indexed} (want {want_indexed}), deleted {deleted} "
                              f"(want {want_deleted})")
    left = [(i, j["status"]) for i, j in connector_jobs() if j["status"] not in ENDED]
    if left:
        r.failures.append(f"jobs left unfinished: {left}")
    md = done.get("metadata") or {}
    r.line = (f"round {n}: {job_type:<11} {changes['added']}+ {changes['overwritten']}~ {changes['deleted']}- | "
              f"kills {r.kills} ({r.kills_mid_job} mid-job) | job {done['status']} indexed {indexed} "
              f"deleted {deleted} total {done.get('total_document_count')} resumed_skipped "
              f"{md.get('resumed_skipped', 0)} | index {total} docs: lost {r.lost} extra {r.extra} "
              f"stale {r.stale} | restart→completed {r.recovery:.1f} s")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 2)))
    ap.add_argument("--objects", type=int, default=int(os.environ.get("OBJECTS", 3000)))
    ap.add_argument("--seed", type=int, default=int(os.environ["SEED"]) if os.environ.get("SEED") else None)
    ap.add_argument("--binary", default="target/release/content-sync")
    ap.add_argument("--max-kills", type=int, default=2, help="kills per round: 1..N")
    ap.add_argument("--churn", type=float, default=0.05, help="share of objects added, overwritten, deleted")
    ap.add_argument("--full-share", type=float, default=0.7, help="share of full (vs incremental) jobs")
    ap.add_argument("--churn-while-down", action=argparse.BooleanOptionalAction, default=True,
                    help="also change the bucket while the service is dead (half the mid-job kills)")
    ap.add_argument("--round-timeout", type=float, default=300)
    ap.add_argument("--keep-going", action="store_true", help="run every round even after a failure")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    rng = random.Random(seed)

    atexit.register(_stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    workdir = tempfile.mkdtemp(prefix="chaos-")
    args.config = os.path.join(workdir, "config.yml")
    if not world.S3_ENDPOINT:
        world.S3_ENDPOINT = start_moto()
    log(f"chaos: seed {seed}, {args.rounds} rounds, {args.objects} objects; ES {world.ES_URL}, "
        f"S3 {world.S3_ENDPOINT}; logs in {workdir}")
    log(f"chaos: rerun with SEED={seed}")

    rounds, failed = [], False
    try:
        bucket = setup(args, rng)
        est = {"full": max(2.0, args.objects / 200), "incremental": 2.0}
        for n in range(args.rounds + 1):
            started = time.monotonic()
            try:
                r = run_round(args, rng, bucket, n, est, workdir)
            except (Failure, RuntimeError) as e:
                r = Round(n)
                r.failures.append(str(e))
                r.line = f"round {n}: ABORTED"
            log(r.line + f" | {time.monotonic() - started:.0f} s")
            for f in r.failures:
                log(f"  FAIL round {n}: {f}")
            if n == 0:
                log(f"  (round 0 is the unfaulted first sync: full sync ≈ {est['full']:.1f} s)")
            else:
                rounds.append(r)
            if r.failures:
                failed = True
                if not args.keep_going or n == 0 or "ABORTED" in r.line:
                    break
    except (Failure, RuntimeError) as e:
        log(f"FAIL: {e}")
        failed = True
    finally:
        _stop_all()

    kills = sum(r.kills for r in rounds)
    mid = sum(r.kills_mid_job for r in rounds)
    worst = max((r.recovery for r in rounds), default=0.0)
    log(f"chaos summary: seed {seed}, {len(rounds)} rounds, {kills} kills ({mid} mid-job), "
        f"lost {sum(r.lost for r in rounds)}, extra {sum(r.extra for r in rounds)}, "
        f"stale {sum(r.stale for r in rounds)}, worst restart→completed {worst:.1f} s, "
        f"{sum(1 for r in rounds if r.failures)} failed rounds -> {'FAIL' if failed else 'PASS'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
