"""`make bench-extract N=...`: does a full sync with native extraction keep every core busy?

Issue 10's target: a full sync of a mixed corpus with extraction runs at ≥ 90% of (single-core
extraction throughput) × cores when S3 and Elasticsearch are not the bottleneck. In one run:

1. the single-core reference: the service's extractors (`extract`, default limits, whitespace
   reduced as the connector asks) on one thread over the same N objects in the same order
   (examples/extract.rs `--objects`): objects/s and MB/s per CPU second;
2. the servers' ceilings: the synthetic S3 (examples/synthetic-s3 `--corpus`: a bucket `mixed-<N>`
   whose object i is file i % len of tests/corpus, sorted, `expected.json` left out) answering GETs of
   the N objects alone (`--downloads` connections, the service's concurrent downloads) to a plain HTTP
   client (examples/get-ceiling), and listing them alone; then the same GETs through the service's own
   download path (`S3Client::get_object`, no extraction), with the CPU each client took: what a
   download costs the service before any extraction;
3. the service (release binary, fresh process): a full sync of the bucket with native extraction into
   the synthetic Elasticsearch front (examples/synthetic-es, bulk counted and dropped; the connector
   indices on the real node at ES_URL). Wall time (the job's started_at → completed_at), objects/s,
   MB/s of object bytes, CPU seconds of the service's own process and of its extraction workers (its
   children: cutime/cstime once reaped, utime/stime while alive), CPU utilisation (CPU seconds / wall
   seconds / cores), the CPU the two servers took meanwhile, peak RSS of the service and of a worker,
   and the load average around the run (the machine may be shared).

The ratio reported is the sync's objects/s ÷ (the reference's objects per CPU second × cores). Counts
must be exact: N indexed, as many documents with a non-empty `body` as the reference found text for,
the same extraction failures, nothing unavailable; the run fails otherwise.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import http.client

import world
from bench_scale import check, connect_through_front, front_call, proc_cpu, start
from world import log

CONNECTOR = "bench-extract"
INDEX = "bench-extract"
EXCLUDED = ["expected.json"]


def children(pid):
    kids = []
    for task in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(task) as f:
                kids += [int(k) for k in f.read().split()]
        except FileNotFoundError:
            pass
    return kids


def hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


class CpuWatch:
    """The service's CPU split into its own process and its workers (live ones and reaped ones)."""

    def __init__(self, pid):
        self.pid, self.own, self.workers, self.worker_peak_kib, self.worker_pids = pid, 0.0, 0.0, 0, set()

    def sample(self):
        s = proc_cpu(self.pid)
        if s is None:
            return
        own, reaped = s
        live = 0.0
        for kid in children(self.pid):
            k = proc_cpu(kid)
            if k:
                live += k[0]
                self.worker_pids.add(kid)
                self.worker_peak_kib = max(self.worker_peak_kib, hwm_kib(kid))
        self.own = own
        self.workers = max(self.workers, reaped + live)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def reference(extract_binary, files, n):
    """The extractors on one thread over n objects cycling the files: the reference's JSON line."""
    out = subprocess.run([extract_binary, "--reduce", "--objects", str(n), *files],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def outcomes(ref, files, n):
    """How many of the bucket's n objects (object i: file i % len) had each outcome in the reference."""
    counts = {"skipped": 0, "text": 0, "empty": 0, "failed": 0}
    for i in range(n):
        counts[ref["files"][os.path.basename(files[i % len(files)])]] += 1
    return counts


def get_ceiling(binary, endpoint, bucket, keys, connections, client):
    """GETs every key once, `connections` at a time, with examples/get-ceiling: `plain` (a bare HTTP
    client: the server's ceiling) or `service` (the service's own download path).
    Returns its JSON line: objects, bytes, seconds, cpu_seconds (the client's own)."""
    with tempfile.NamedTemporaryFile("w", suffix=".keys") as f:
        f.write("\n".join(keys) + "\n")
        f.flush()
        out = subprocess.run([binary, "--endpoint", endpoint, "--bucket", bucket, "--keys", f.name,
                              "--connections", str(connections), "--client", client],
                             check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def list_keys(endpoint, bucket):
    url = urllib.parse.urlparse(endpoint)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    keys, token, started = [], None, time.time()
    while True:
        query = {"list-type": "2", "max-keys": "1000"}
        if token:
            query["continuation-token"] = token
        conn.request("GET", f"/{bucket}?{urllib.parse.urlencode(query)}")
        body = conn.getresponse().read().decode()
        keys += [k.split("</Key>")[0] for k in body.split("<Key>")[1:]]
        if "<NextContinuationToken>" not in body:
            break
        token = body.split("<NextContinuationToken>")[1].split("</NextContinuationToken>")[0]
    conn.close()
    return keys, time.time() - started


def run_sync(args, config_path, workdir, servers):
    """One full sync in a fresh service process; returns the job and the figures watched."""
    connector = world.connector(CONNECTOR)
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    job_id = world.es("POST", "/.elastic-connectors-sync-jobs/_doc?refresh=true", {
        "connector": {**{k: v for k, v in connector.items()
                         if k in ("index_name", "pipeline", "service_type", "configuration", "language")},
                      "id": CONNECTOR, "filtering": connector["filtering"][0]["active"]},
        "job_type": "full", "trigger_method": "on_demand", "status": "pending",
        "indexed_document_count": 0, "indexed_document_volume": 0, "deleted_document_count": 0,
        "created_at": now, "last_seen": now})["_id"]
    servers_before = sum(sum(proc_cpu(p.pid) or (0, 0)) for p in servers)
    load_before = loadavg()
    service = world.Service(args.binary, config_path, os.path.join(workdir, f"full-{args.downloads}.log"))
    perf = None
    if args.perf:
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "--call-graph", "dwarf", "-p", str(service.proc.pid),
                                 "-o", os.path.join(args.perf, f"full-{args.downloads}.data")])
    watch = CpuWatch(service.proc.pid)
    while True:
        service.sample()
        watch.sample()
        if service.proc.poll() is not None:
            sys.exit(f"the service exited with status {service.proc.returncode}")
        job = world.es("GET", f"/.elastic-connectors-sync-jobs/_doc/{job_id}")["_source"]
        if job["status"] in ("completed", "error", "canceled"):
            break
        time.sleep(0.1)
    servers_cpu = sum(sum(proc_cpu(p.pid) or (0, 0)) for p in servers) - servers_before
    load_after = loadavg()
    # The job's pool is dropped with the job: its workers are reaped into the service's cutime.
    for _ in range(20):
        time.sleep(0.1)
        watch.sample()
        if not children(service.proc.pid):
            break
    service.stop()
    if perf:
        perf.wait()
    if job["status"] != "completed":
        sys.exit(f"full sync: job {job['status']}: {job.get('error')}")
    return job, {"rss_kib": service.peak_rss_kib, "own_cpu": watch.own, "workers_cpu": watch.workers,
                 "worker_peak_kib": watch.worker_peak_kib, "workers": len(watch.worker_pids),
                 "servers_cpu": servers_cpu, "load": f"{load_before} → {load_after}"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--objects", type=int, default=20_000)
    p.add_argument("--downloads", type=int, default=None,
                   help="elasticsearch.bulk.concurrent_downloads (also the worker count); default: the service's")
    p.add_argument("--reference-objects", type=int, default=100_000,
                   help="objects the single-core reference extracts at least (its CPU clock ticks 10 ms)")
    p.add_argument("--corpus", default=os.path.join(os.path.dirname(__file__), "..", "tests", "corpus"))
    p.add_argument("--perf", metavar="DIR", help="perf record the service and its workers into DIR")
    p.add_argument("--binary", default="target/release/content-sync")
    p.add_argument("--s3-binary", default="target/release/examples/synthetic-s3")
    p.add_argument("--es-binary", default="target/release/examples/synthetic-es")
    p.add_argument("--extract-binary", default="target/release/examples/extract")
    p.add_argument("--get-binary", default="target/release/examples/get-ceiling")
    args = p.parse_args()
    n, cores = args.objects, os.cpu_count()
    bucket = f"mixed-{n}"
    corpus = os.path.abspath(args.corpus)
    files = sorted(f for f in glob.glob(os.path.join(corpus, "*")) if os.path.basename(f) not in EXCLUDED)
    workdir = tempfile.mkdtemp(prefix="bench-extract-")
    corpus_args = ["--corpus", corpus] + [a for name in EXCLUDED for a in ("--exclude", name)]

    # Enough objects for the CPU clock's 10 ms ticks not to matter (the corpus files are small).
    ref_n = max(n, args.reference_objects)
    log(f"single-core reference: {ref_n} objects of {len(files)} files on one thread")
    ref = reference(args.extract_binary, files, ref_n)
    ref_rate = ref_n / ref["cpu_seconds"]
    ref_mb_rate = ref["bytes"] / 1e6 / ref["cpu_seconds"]
    expect = outcomes(ref, files, n)
    expect_bytes = sum(os.path.getsize(files[i % len(files)]) for i in range(n)
                       if ref["files"][os.path.basename(files[i % len(files)])] != "skipped")
    log(f"reference: {ref['cpu_seconds']:.2f} CPU s ({ref['wall_seconds']:.2f} s wall), "
        f"{ref_rate:.0f} objects/CPU s, {ref_mb_rate:.1f} MB/CPU s; of {n} objects: {json.dumps(expect)}")

    s3, endpoint = start([args.s3_binary, "--bucket", bucket, *corpus_args], "S3_ENDPOINT")
    front = None
    upstream = world.ES_URL
    try:
        keys, list_secs = list_keys(endpoint, bucket)
        check("keys listed by the synthetic S3", len(keys), n)
        connections = args.downloads or 10
        gets = {client: get_ceiling(args.get_binary, endpoint, bucket, keys, connections, client)
                for client in ("plain", "service")}
        got_bytes = gets["plain"]["bytes"]
        for client, got in gets.items():
            check(f"bytes the {client} GETs returned", got["bytes"],
                  sum(os.path.getsize(files[i % len(files)]) for i in range(n)))
        log(f"S3 alone: listed {n} keys in {list_secs:.2f} s; GET {n} objects ({got_bytes / 1e6:.1f} MB) "
            f"over {connections} connections in {gets['plain']['seconds']:.2f} s (plain HTTP), "
            f"{gets['service']['seconds']:.2f} s (the service's download path)")

        front, url = start([args.es_binary, "--upstream", upstream, "--index", INDEX, "--bucket", bucket,
                            *corpus_args], "ES_URL")
        config_path = connect_through_front(args.binary, workdir, CONNECTOR, INDEX, bucket, endpoint, url,
                                            extract=True)
        if args.downloads:
            with open(config_path, "a") as f:
                f.write(f"elasticsearch.bulk.concurrent_downloads: {args.downloads}\n")
        front_call(url, "POST", "/_synthetic/reset")
        job, figures = run_sync(args, config_path, workdir, [s3, front])
        seen = front_call(url, "GET", "/_synthetic/stats")
    finally:
        world.ES_URL = upstream
        for proc in (s3, front):
            if proc:
                proc.terminate()
                proc.wait()

    meta = job.get("metadata", {})
    check("indexed", job["indexed_document_count"], n)
    check("objects the front saw indexed", seen["indexed_objects"], n)
    check("index operations on unknown ids", seen["index_unknown"], 0)
    check("documents with a non-empty body", seen["indexed_with_body"], expect["text"])
    check("extraction failures", meta.get("extraction_failed"), expect["failed"])
    check("files extracted", meta.get("extracted_files"), expect["text"] + expect["empty"])
    check("content unavailable", meta.get("content_unavailable"), 0)
    check("bytes downloaded", meta.get("downloaded_bytes"), expect_bytes)

    secs = world.job_seconds(job)
    cpu = figures["own_cpu"] + figures["workers_cpu"]
    rate = n / secs
    ratio = rate / (ref_rate * cores)
    mb = got_bytes / 1e6
    print(f"\nbench-extract: {n} objects ({mb:.1f} MB) cycling {len(files)} files of {corpus}; {cores} cores; "
          f"concurrent downloads {args.downloads or 'default'} ({figures['workers']} workers seen); "
          f"load average {figures['load']}")
    print("| run | seconds | objects/s | MB/s | CPU s (service + workers) | CPU use | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| single-core reference (extract, one thread, {ref_n} objects; per CPU second) | "
          f"{ref['cpu_seconds']:.2f} | {ref_rate:,.0f} | {ref_mb_rate:.1f} | {ref['cpu_seconds']:.2f} | 1 core | – |")
    print(f"| ceiling: synthetic S3 lists alone | {list_secs:.2f} | {n / list_secs:,.0f} | – | – | – | – |")
    for client, what in (("plain", "ceiling: synthetic S3 GETs alone, plain HTTP client"),
                         ("service", "the service's downloads alone, no extraction")):
        got = gets[client]
        print(f"| {what} ({connections} connections; CPU: the client's) | {got['seconds']:.2f} | "
              f"{n / got['seconds']:,.0f} | {mb / got['seconds']:.1f} | {got['cpu_seconds']:.2f} | "
              f"{got['cpu_seconds'] / got['seconds'] / cores:.0%} of {cores} | – |")
    print(f"| service: full sync with native extraction | {secs:.2f} | {rate:,.0f} | {mb / secs:.1f} | "
          f"{cpu:.2f} ({figures['own_cpu']:.2f} + {figures['workers_cpu']:.2f}) | "
          f"{cpu / secs / cores:.0%} of {cores} | {figures['rss_kib'] / 1024:.1f} MiB "
          f"(worker {figures['worker_peak_kib'] / 1024:.1f} MiB) |")
    print(f"\nservers' CPU during the sync: {figures['servers_cpu']:.2f} s "
          f"({figures['servers_cpu'] / secs / cores:.0%} of {cores} cores)")
    print(f"CPU per object: reference {ref['cpu_seconds'] / ref_n * 1e6:.0f} µs, sync {cpu / n * 1e6:.0f} µs "
          f"(service {figures['own_cpu'] / n * 1e6:.0f} + workers {figures['workers_cpu'] / n * 1e6:.0f}); "
          f"a download alone: {gets['service']['cpu_seconds'] / n * 1e6:.0f} µs through the service's "
          f"download path, {gets['plain']['cpu_seconds'] / n * 1e6:.0f} µs through a plain HTTP client")
    print(f"ratio: {rate:,.0f} objects/s ÷ ({ref_rate:,.0f} × {cores} cores) = {ratio:.0%} (target ≥ 90%)")
    log(f"service log in {workdir}; front saw {json.dumps(seen)}")


if __name__ == "__main__":
    main()
