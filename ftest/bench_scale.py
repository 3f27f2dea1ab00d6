"""`make bench-scale N=...`: how the service's memory and speed behave as the bucket grows.

Starts the synthetic S3 (examples/synthetic-s3) with a bucket `scale-<N>` of N generated objects.

`--es front` (the default): the content index is the synthetic Elasticsearch front
(examples/synthetic-es) before the node at ES_URL; it pre-holds the N objects as a previous sync
indexed them plus `--stale` (default N/10) documents of keys the bucket lacks, counts and drops
`_bulk`, and passes everything else (the connector indices) to the node. In the same run:

1. the servers' ceilings: the synthetic S3 listing the whole bucket alone (1 000 keys a page, one
   connection), and the front taking N operations of `_bulk` alone (500 a request, 5 in flight: the
   service's defaults; the bodies of the first 50 000 documents, sent over and over);
2. the service (release binary), one fresh process per job: a metadata-only full sync (re-indexes N,
   deletes exactly the stale ids), then a no-change incremental sync (indexes 0, skips N unchanged,
   deletes exactly the stale ids) against the same pre-sync index. For each: wall time (the job's
   started_at → completed_at), objects/s, CPU time (utime + stime) per object, peak RSS (VmHWM), and
   the peak disk use of its temporary directory (`--temp-dir`, given to the service as TMPDIR).
   The job's counts and what the front saw (`GET /_synthetic/stats`) must be exact: the run fails
   otherwise.

`--es node`: the previous benchmark, everything against the real node at ES_URL:

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
CEILING_DOCS = 50_000  # distinct documents whose bulk bodies the front's ceiling sends over and over
IN_FLIGHT = 5  # its elasticsearch.bulk.max_concurrency default
CLK_TCK = os.sysconf("SC_CLK_TCK")


def key(i, n):
    """The synthetic S3's key of object i of n (examples/synthetic-s3/bucket.rs)."""
    w = len(str(max(n - 1, 1)))
    return f"{i // 1000 * 1000:0{w}}/{i:0{w}}.dat"


def start(cmd, banner):
    """Starts a synthetic server; returns it and the URL it prints as `<banner>=<url>`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith(banner + "="):
        proc.kill()
        sys.exit(f"{os.path.basename(cmd[0])} did not start: {line!r}")
    return proc, line.split("=", 1)[1]


def start_s3(binary, bucket, list_latency_ms=0):
    return start([binary, "--bucket", bucket, "--list-latency-ms", str(list_latency_ms)], "S3_ENDPOINT")


def list_ceiling(endpoint, bucket, page_size=1000):
    """Lists the whole bucket over one keep-alive connection; returns (keys, seconds)."""
    url = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    keys, token, started = 0, None, time.time()
    while True:
        query = {"list-type": "2", "max-keys": str(page_size), "fetch-owner": "true", "encoding-type": "url"}
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


def proc_cpu(pid):
    """(utime + stime, cutime + cstime) of a process in seconds: its own CPU and its reaped
    children's; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, (int(fields[13]) + int(fields[14])) / CLK_TCK


def cpu_seconds(pid):
    return proc_cpu(pid)[0]


def disk_used(path):
    """Bytes of disk the files under `path` take (what `du` counts)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def run_job(binary, config_path, workdir, job_type, temp_dir=None, perf_dir=None):
    """Runs one job in a fresh service process; returns (job, peak RSS KiB, CPU s, peak temp bytes).
    With `perf_dir`, `perf record` samples the process (DWARF call graphs) into <perf_dir>/<job>.data."""
    connector = world.connector(CONNECTOR)
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    job_id = world.es("POST", "/.elastic-connectors-sync-jobs/_doc?refresh=true", {
        "connector": {**{k: v for k, v in connector.items()
                         if k in ("index_name", "pipeline", "service_type", "configuration", "language")},
                      "id": CONNECTOR, "filtering": connector["filtering"][0]["active"]},
        "job_type": job_type, "trigger_method": "on_demand", "status": "pending",
        "indexed_document_count": 0, "indexed_document_volume": 0, "deleted_document_count": 0,
        "created_at": now, "last_seen": now})["_id"]
    env = {"TMPDIR": temp_dir} if temp_dir else None
    service = world.Service(binary, config_path, os.path.join(workdir, f"{job_type}.log"), env=env)
    perf = None
    if perf_dir:
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "250", "--call-graph", "dwarf,32768",
                                 "-p", str(service.proc.pid), "-o", os.path.join(perf_dir, f"{job_type}.data")])
    cpu, temp_peak = 0.0, 0
    while True:
        service.sample()
        if temp_dir:
            temp_peak = max(temp_peak, disk_used(temp_dir))
        if service.proc.poll() is not None:
            sys.exit(f"{job_type}: the service exited with status {service.proc.returncode}")
        cpu = cpu_seconds(service.proc.pid)
        job = world.es("GET", f"/.elastic-connectors-sync-jobs/_doc/{job_id}")["_source"]
        if job["status"] in ("completed", "error", "canceled"):
            break
        time.sleep(0.2)
    service.stop()
    if perf:
        perf.wait()  # it ends with the process it samples
    if job["status"] != "completed":
        sys.exit(f"{job_type}: job {job['status']}: {job.get('error')}")
    if temp_dir:
        left = disk_used(temp_dir)
        if left:
            sys.exit(f"{job_type}: {left} bytes left in the temporary directory {temp_dir}")
    return job, service.peak_rss_kib, cpu, temp_peak


def check(what, got, expected):
    if got != expected:
        sys.exit(f"{what}: {got}, expected {expected}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--objects", type=int, default=100_000)
    p.add_argument("--stale", type=int, help="stale documents in the front's index (default: objects / 10)")
    p.add_argument("--es", choices=["front", "node"], default="front",
                   help="the content index: the synthetic front (default) or the real node at ES_URL")
    p.add_argument("--temp-dir", default=os.environ.get("SCALE_TEMP_DIR"),
                   help="the service's temporary directory (TMPDIR), measured (default: a fresh one)")
    p.add_argument("--jobs", default="full,incremental", help="which syncs the front mode runs")
    p.add_argument("--perf", metavar="DIR",
                   help="profile each job with perf record into DIR/<job>.data (CPU figures then include its cost)")
    p.add_argument("--page-size", type=int, default=1000, help="the connector's page_size (S3 caps it at 1000)")
    p.add_argument("--ranges", type=int, help="service.listing_ranges (default: the service's)")
    p.add_argument("--s3-latency-ms", type=int, default=0,
                   help="the synthetic S3 answers each listing request this late (a distant S3's round trip)")
    p.add_argument("--binary", default="target/release/content-sync")
    p.add_argument("--s3-binary", default="target/release/examples/synthetic-s3")
    p.add_argument("--es-binary", default="target/release/examples/synthetic-es")
    args = p.parse_args()
    n = args.objects
    bucket = f"scale-{n}"
    workdir = tempfile.mkdtemp(prefix="bench-scale-")
    args.temp_dir = args.temp_dir or os.path.join(workdir, "tmp")
    os.makedirs(args.temp_dir, exist_ok=True)
    upstream = world.ES_URL
    s3, endpoint = start_s3(args.s3_binary, bucket, args.s3_latency_ms)
    try:
        if args.es == "front":
            stale = n // 10 if args.stale is None else args.stale
            rows = measure_front(args, n, stale, bucket, endpoint, workdir)
        else:
            stale = 0
            rows = measure(args, n, bucket, endpoint, workdir)
    finally:
        s3.terminate()
        s3.wait()
    where = (f"the synthetic front ({stale} stale documents) before Elasticsearch at {upstream}"
             if args.es == "front" else f"Elasticsearch at {upstream}")
    print(f"\nbench-scale: {n} objects, content index in {where}, synthetic S3 at {endpoint} "
          f"(listing answered {args.s3_latency_ms} ms late), page_size {args.page_size}, "
          f"listing_ranges {args.ranges or 'default'}")
    print("| run | objects | seconds | objects/s | service CPU | service peak RSS | peak temp disk |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, count, secs, rss_kib, cpu, temp in rows:
        rss = f"{rss_kib / 1024:.1f} MiB" if rss_kib else "–"
        cpu_txt = f"{cpu * 1e6 / max(count, 1):.2f} µs/object" if cpu is not None else "–"
        temp_txt = f"{temp / 2**20:.1f} MiB" if temp is not None else "–"
        print(f"| {name} | {count} | {secs:.2f} | {count / max(secs, 1e-3):,.0f} | {cpu_txt} | {rss} | {temp_txt} |")
    log(f"service logs in {workdir}")


def start_front(binary, upstream, bucket, stale):
    started = time.time()
    front = start([binary, "--upstream", upstream, "--index", INDEX, "--bucket", bucket,
                   "--stale", str(stale)], "ES_URL")
    log(f"synthetic-es: id table of {bucket} + {stale} stale built in {time.time() - started:.1f} s")
    return front


def connect_through_front(binary, workdir, connector, index, bucket, endpoint, front_url, extract,
                          page_size=1000, ranges=None):
    """Writes the connector for `bucket` on the real node, then points the service at the front
    (the connector documents pass through it to the node); returns the service's config path."""
    config_path = world.write_config(workdir, connector, idling=0.5)
    world.ensure_system_indices(binary, config_path)
    world.es("DELETE", f"/.elastic-connectors/_doc/{connector}?refresh=true", ok_missing=True)
    world.write_connector(connector, index, world.s3_configuration(
        bucket, "any-key", "any-secret", page_size=page_size, endpoint=endpoint),
        pipeline="", extract_binary_content=extract)
    world.ES_URL = front_url
    path = world.write_config(workdir, connector, idling=0.5)
    if ranges:
        with open(path, "a") as f:
            f.write(f"service.listing_ranges: {ranges}\n")
    return path


def front_call(url, method, path):
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request(method, path)
    answer = json.loads(conn.getresponse().read())
    conn.close()
    return answer


def front_bulk_ceiling(url, bucket, n, size):
    """N `_bulk` operations of the service's request size into the front; returns seconds."""
    u = urllib.parse.urlparse(url)
    local = threading.local()
    headers = {"Content-Type": "application/x-ndjson"}
    etag = lambda k: '"' + hashlib.md5(k.encode()).hexdigest() + '"'  # same length as the real ones
    docs = list(documents(bucket, min(n, CEILING_DOCS), size, etag))
    index_tag = b'{"index":{"_index":"%s",' % INDEX.encode()
    docs = [d.replace(b'{"index":{', index_tag, 1) for d in docs]
    bodies = [b"".join(docs[i:i + CHUNK]) for i in range(0, len(docs), CHUNK)]
    sizes = [len(docs[i:i + CHUNK]) for i in range(0, len(docs), CHUNK)]

    def send(body):
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        local.conn.request("POST", "/_bulk", body=body, headers=headers)
        answer = local.conn.getresponse().read()
        if b'"errors":false' not in answer[:64]:
            raise RuntimeError(f"bulk: {answer[:300]!r}")

    sent, i, started = 0, 0, time.time()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        pending = []
        while sent < n:
            k = i % len(bodies)
            body = bodies[k] if sent + sizes[k] <= n else b"".join(docs[:n - sent])
            sent += min(sizes[k], n - sent)
            i += 1
            pending.append(pool.submit(send, body))
            if len(pending) >= 2 * IN_FLIGHT:
                pending.pop(0).result()
        for f in pending:
            f.result()
    secs = time.time() - started
    stats = front_call(url, "GET", "/_synthetic/stats")
    check("bulk ceiling: operations the front counted", stats["index_ops"], n)
    front_call(url, "POST", "/_synthetic/reset")
    return secs


def measure_front(args, n, stale, bucket, endpoint, workdir):
    rows = []
    listed, secs = list_ceiling(endpoint, bucket, args.page_size)
    check("keys listed by the synthetic S3", listed, n)
    rows.append(("ceiling: synthetic S3 lists alone (one listing)", n, secs, None, None, None))
    log(f"listing alone: {n} keys in {secs:.2f} s")

    upstream = world.ES_URL
    front, url = start_front(args.es_binary, upstream, bucket, stale)
    try:
        size = len(f"synthetic object {key(0, n)} of bucket {bucket}\n")
        secs = front_bulk_ceiling(url, bucket, n, size)
        rows.append((f"ceiling: front takes _bulk alone ({CHUNK}/request, {IN_FLIGHT} in flight)",
                     n, secs, None, None, None))
        log(f"front bulk alone: {n} operations in {secs:.2f} s")

        config_path = connect_through_front(args.binary, workdir, CONNECTOR, INDEX, bucket, endpoint, url,
                                            extract=False, page_size=args.page_size, ranges=args.ranges)

        for job_type, indexed, label in (("full", n, "full sync (re-indexes N, deletes the stale)"),
                                         ("incremental", 0, "no-change incremental sync (deletes the stale)")):
            if job_type not in args.jobs.split(","):
                continue
            front_call(url, "POST", "/_synthetic/reset")
            job, rss, cpu, temp = run_job(args.binary, config_path, workdir, job_type, args.temp_dir, args.perf)
            seen = front_call(url, "GET", "/_synthetic/stats")
            check(f"{job_type}: indexed", job["indexed_document_count"], indexed)
            check(f"{job_type}: deleted", job["deleted_document_count"], stale)
            if job_type == "incremental":
                check(f"{job_type}: unchanged skipped", job.get("metadata", {}).get("unchanged_skipped"), n)
                check(f"{job_type}: index operations the front saw", seen["index_ops"], 0)
            check(f"{job_type}: objects the front saw indexed", seen["indexed_objects"], indexed)
            check(f"{job_type}: index operations on unknown ids", seen["index_unknown"], 0)
            check(f"{job_type}: stale documents indexed", seen["indexed_stale"], 0)
            check(f"{job_type}: stale documents deleted", seen["deleted_stale"], stale)
            check(f"{job_type}: objects deleted", seen["deleted_objects"], 0)
            check(f"{job_type}: deletes of unknown ids", seen["delete_unknown"], 0)
            rows.append((f"service: {label}", n, world.job_seconds(job), rss, cpu, temp))
            log(f"{job_type} sync: {world.job_seconds(job):.2f} s, peak RSS {rss / 1024:.1f} MiB, "
                f"CPU {cpu * 1e6 / max(n, 1):.2f} µs/object, front saw {json.dumps(seen)}")
    finally:
        world.ES_URL = upstream
        front.terminate()
        front.wait()
    return rows


def measure(args, n, bucket, endpoint, workdir):
    rows = []
    page_size = args.page_size
    listed, secs = list_ceiling(endpoint, bucket, args.page_size)
    check("keys listed by the synthetic S3", listed, n)
    rows.append(("ceiling: synthetic S3 lists alone (one listing)", n, secs, None, None, None))
    log(f"listing alone: {n} keys in {secs:.2f} s")
    # Every body is one line (bucket.rs): "synthetic object <key> of bucket <bucket>\n".
    size = len(f"synthetic object {key(0, n)} of bucket {bucket}\n")
    secs = bulk_ceiling(bucket, n, size)
    rows.append((f"ceiling: cluster takes _bulk alone ({CHUNK}/request, {IN_FLIGHT} in flight)", n, secs, None, None, None))
    log(f"bulk alone: {n} documents in {secs:.2f} s")

    config_path = world.write_config(workdir, CONNECTOR, idling=0.5)
    if args.ranges:
        with open(config_path, "a") as f:
            f.write(f"service.listing_ranges: {args.ranges}\n")
    world.ensure_system_indices(args.binary, config_path)
    world.es("DELETE", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", ok_missing=True)
    world.es("DELETE", f"/{INDEX}", ok_missing=True)
    world.write_connector(CONNECTOR, INDEX, world.s3_configuration(
        bucket, "any-key", "any-secret", page_size=page_size, endpoint=endpoint),
        pipeline="", extract_binary_content=False)

    job, rss, cpu, temp = run_job(args.binary, config_path, workdir, "full", args.temp_dir)
    check("full sync: indexed", job["indexed_document_count"], n)
    check("full sync: deleted", job["deleted_document_count"], 0)
    check("documents after the full sync", world.count(INDEX), n)
    rows.append(("service: full sync into an empty index", n, world.job_seconds(job), rss, cpu, temp))
    log(f"full sync: {world.job_seconds(job):.2f} s, peak RSS {rss / 1024:.1f} MiB")

    job, rss, cpu, temp = run_job(args.binary, config_path, workdir, "incremental", args.temp_dir)
    check("incremental: indexed", job["indexed_document_count"], 0)
    check("incremental: deleted", job["deleted_document_count"], 0)
    check("incremental: unchanged skipped", job.get("metadata", {}).get("unchanged_skipped"), n)
    check("documents after the incremental sync", world.count(INDEX), n)
    rows.append(("service: no-change incremental sync", n, world.job_seconds(job), rss, cpu, temp))
    log(f"incremental sync: {world.job_seconds(job):.2f} s, peak RSS {rss / 1024:.1f} MiB")
    world.es("DELETE", f"/{INDEX}", ok_missing=True)
    return rows


if __name__ == "__main__":
    main()
