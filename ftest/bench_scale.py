"""`make bench-scale OBJECTS=N`: how the service's memory and speed behave as the bucket grows.

Starts the synthetic S3 (examples/synthetic-s3) with a bucket `scale-<N>` of N generated objects,
and uses the Elasticsearch at ES_URL. In the same run it measures:

1. the servers' ceilings: the synthetic S3 listing the whole bucket alone (1 000 keys a page, one
   connection), and the cluster taking `_bulk` requests of the same documents alone (500 a request,
   5 in flight: the service's defaults), into a scratch index deleted afterwards;
2. the service (release binary), one fresh process per job: a metadata-only full sync into an empty
   index, then a no-change incremental sync. For each: wall time (the job's started_at → completed_at),
   objects/s, peak RSS (VmHWM from /proc/<pid>/status), CPU time (utime + stime) per object.

Counts must be exact (N indexed, then 0 indexed and 0 deleted, N documents in the index): the run
fails otherwise. Figures go to stdout as a table.
"""

import argparse
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import world
from world import log

CONNECTOR = "bench-scale"
INDEX = "bench-scale"
CEILING_INDEX = "bench-scale-ceiling"
CHUNK = 500  # the service's elasticsearch.bulk.chunk_size default
IN_FLIGHT = 5  # its elasticsearch.bulk.max_concurrency default
CLK_TCK = os.sysconf("SC_CLK_TCK")


def key(i, n):
    """The synthetic S3's key of object i of n (examples/synthetic-s3/bucket.rs)."""
    w = len(str(max(n - 1, 1)))
    return f"{i // 1000 * 1000:0{w}}/{i:0{w}}.dat"


def start_s3(binary, bucket):
    proc = subprocess.Popen([binary, "--bucket", bucket], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("S3_ENDPOINT="):
        proc.kill()
        sys.exit(f"synthetic-s3 did not start: {line!r}")
    return proc, line.split("=", 1)[1]


def list_ceiling(endpoint, bucket):
    """Lists the whole bucket over one keep-alive connection; returns (keys, seconds)."""
    url = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    keys, token, started = 0, None, time.time()
    while True:
        query = {"list-type": "2", "max-keys": "1000", "fetch-owner": "true", "encoding-type": "url"}
        if token:
            query["continuation-token"] = token
        conn.request("GET", f"/{bucket}?{urllib.parse.urlencode(query)}")
        body = conn.getresponse().read()
        keys += body.count(b"<Key>")
        m = re.search(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>", body)
        if not m:
            break
        token = m.group(1).decode()
    conn.close()
    return keys, time.time() - started


def documents(bucket, n, size, etag_of):
    """The documents the service indexes for the bucket's objects (metadata only), as bulk lines."""
    for i in range(n):
        k = key(i, n)
        doc_id = hashlib.md5(f"{bucket}/{k}".encode()).hexdigest()
        s = i % 86400
        doc = {"filename": k, "size_in_bytes": size, "bucket": bucket, "owner": "synthetic",
               "storage_class": "STANDARD",
               "_timestamp": f"2024-01-01T{s // 3600:02}:{s // 60 % 60:02}:{s % 60:02}+00:00",
               "etag": etag_of(k), "id": doc_id}
        yield b'{"index":{"_id":"%s"}}\n%s\n' % (doc_id.encode(), json.dumps(doc).encode())


def bulk_ceiling(bucket, n, size):
    """Sends the same documents with `_bulk` alone; returns seconds. The index is deleted after."""
    world.es("DELETE", f"/{CEILING_INDEX}", ok_missing=True)
    world.es("PUT", f"/{CEILING_INDEX}")
    url = urllib.parse.urlparse(world.ES_URL)
    local = threading.local()
    headers = {"Content-Type": "application/x-ndjson", **world._auth_headers()}
    etag = lambda k: '"' + hashlib.md5(k.encode()).hexdigest() + '"'  # same length as the real ones

    def send(body):
        if not hasattr(local, "conn"):
            cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
            local.conn = cls(url.hostname, url.port, timeout=120)
        local.conn.request("POST", f"/{CEILING_INDEX}/_bulk", body=body, headers=headers)
        answer = json.loads(local.conn.getresponse().read())
        if answer.get("errors"):
            raise RuntimeError(f"bulk item errors: {json.dumps(answer)[:300]}")

    started = time.time()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        pending, chunk = [], []
        for line in documents(bucket, n, size, etag):
            chunk.append(line)
            if len(chunk) == CHUNK:
                pending.append(pool.submit(send, b"".join(chunk)))
                chunk = []
            if len(pending) >= 2 * IN_FLIGHT:
                pending.pop(0).result()
        if chunk:
            pending.append(pool.submit(send, b"".join(chunk)))
        for p in pending:
            p.result()
    world.es("POST", f"/{CEILING_INDEX}/_refresh")
    secs = time.time() - started
    got = world.count(CEILING_INDEX)
    world.es("DELETE", f"/{CEILING_INDEX}")
    if got != n:
        sys.exit(f"bulk ceiling: {got} documents in the scratch index, expected {n}")
    return secs


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def run_job(binary, config_path, workdir, job_type):
    connector = world.connector(CONNECTOR)
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    job_id = world.es("POST", "/.elastic-connectors-sync-jobs/_doc?refresh=true", {
        "connector": {**{k: v for k, v in connector.items()
                         if k in ("index_name", "pipeline", "service_type", "configuration", "language")},
                      "id": CONNECTOR, "filtering": connector["filtering"][0]["active"]},
        "job_type": job_type, "trigger_method": "on_demand", "status": "pending",
        "indexed_document_count": 0, "indexed_document_volume": 0, "deleted_document_count": 0,
        "created_at": now, "last_seen": now})["_id"]
    service = world.Service(binary, config_path, os.path.join(workdir, f"{job_type}.log"))
    cpu = 0.0
    while True:
        service.sample()
        if service.proc.poll() is not None:
            sys.exit(f"{job_type}: the service exited with status {service.proc.returncode}")
        cpu = cpu_seconds(service.proc.pid)
        job = world.es("GET", f"/.elastic-connectors-sync-jobs/_doc/{job_id}")["_source"]
        if job["status"] in ("completed", "error", "canceled"):
            break
        time.sleep(0.2)
    service.stop()
    if job["status"] != "completed":
        sys.exit(f"{job_type}: job {job['status']}: {job.get('error')}")
    return job, service.peak_rss_kib, cpu


def check(what, got, expected):
    if got != expected:
        sys.exit(f"{what}: {got}, expected {expected}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--objects", type=int, default=100_000)
    p.add_argument("--binary", default="target/release/content-sync")
    p.add_argument("--s3-binary", default="target/release/examples/synthetic-s3")
    args = p.parse_args()
    n = args.objects
    bucket = f"scale-{n}"
    workdir = tempfile.mkdtemp(prefix="bench-scale-")
    s3, endpoint = start_s3(args.s3_binary, bucket)
    try:
        rows = measure(args, n, bucket, endpoint, workdir)
    finally:
        s3.terminate()
        s3.wait()
    print(f"\nbench-scale: {n} objects, Elasticsearch at {world.ES_URL}, synthetic S3 at {endpoint}")
    print("| run | objects | seconds | objects/s | service peak RSS | service CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, count, secs, rss_kib, cpu in rows:
        rss = f"{rss_kib / 1024:.1f} MiB" if rss_kib else "–"
        cpu_txt = f"{cpu * 1e6 / max(count, 1):.1f} µs/object" if cpu is not None else "–"
        print(f"| {name} | {count} | {secs:.2f} | {count / max(secs, 1e-3):,.0f} | {rss} | {cpu_txt} |")
    log(f"service logs in {workdir}")


def measure(args, n, bucket, endpoint, workdir):
    rows = []
    listed, secs = list_ceiling(endpoint, bucket)
    check("keys listed by the synthetic S3", listed, n)
    rows.append(("ceiling: synthetic S3 lists alone", n, secs, None, None))
    log(f"listing alone: {n} keys in {secs:.2f} s")
    # Every body is one line (bucket.rs): "synthetic object <key> of bucket <bucket>\n".
    size = len(f"synthetic object {key(0, n)} of bucket {bucket}\n")
    secs = bulk_ceiling(bucket, n, size)
    rows.append((f"ceiling: cluster takes _bulk alone ({CHUNK}/request, {IN_FLIGHT} in flight)", n, secs, None, None))
    log(f"bulk alone: {n} documents in {secs:.2f} s")

    config_path = world.write_config(workdir, CONNECTOR, idling=0.5)
    world.ensure_system_indices(args.binary, config_path)
    world.es("DELETE", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", ok_missing=True)
    world.es("DELETE", f"/{INDEX}", ok_missing=True)
    world.write_connector(CONNECTOR, INDEX, world.s3_configuration(
        bucket, "any-key", "any-secret", page_size=1000, endpoint=endpoint),
        pipeline="", extract_binary_content=False)

    job, rss, cpu = run_job(args.binary, config_path, workdir, "full")
    check("full sync: indexed", job["indexed_document_count"], n)
    check("full sync: deleted", job["deleted_document_count"], 0)
    check("documents after the full sync", world.count(INDEX), n)
    rows.append(("service: full sync into an empty index", n, world.job_seconds(job), rss, cpu))
    log(f"full sync: {world.job_seconds(job):.2f} s, peak RSS {rss / 1024:.1f} MiB")

    job, rss, cpu = run_job(args.binary, config_path, workdir, "incremental")
    check("incremental: indexed", job["indexed_document_count"], 0)
    check("incremental: deleted", job["deleted_document_count"], 0)
    check("incremental: unchanged skipped", job.get("metadata", {}).get("unchanged_skipped"), n)
    check("documents after the incremental sync", world.count(INDEX), n)
    rows.append(("service: no-change incremental sync", n, world.job_seconds(job), rss, cpu))
    log(f"incremental sync: {world.job_seconds(job):.2f} s, peak RSS {rss / 1024:.1f} MiB")
    world.es("DELETE", f"/{INDEX}", ok_missing=True)
    return rows


if __name__ == "__main__":
    main()
