"""`make bench-sync`: sync benchmarks against the stand-ins (figures for the README and issue notes).

1. Mixed files: 1 000 objects cycled from the extraction corpus (PDF, Office, HTML, text, …), full sync
   with native extraction: duration, docs/s, MB/s downloaded, peak RSS.
2. Incremental: 10 000 small text objects; a full sync, then a no-change incremental sync: both
   durations, the speed-up, and the downloads of the incremental (must be 0).
"""

import glob
import os
import sys
import tempfile
import time

import world
from world import log

CONNECTOR = "bench"


def run_job(binary, config_path, workdir, job_type, name):
    job_id = world.es("POST", "/.elastic-connectors-sync-jobs/_doc?refresh=true", {
        "connector": {**{k: v for k, v in world.connector(CONNECTOR).items()
                         if k in ("index_name", "pipeline", "service_type", "configuration", "language")},
                      "id": CONNECTOR,
                      "filtering": world.connector(CONNECTOR)["filtering"][0]["active"]},
        "job_type": job_type, "trigger_method": "on_demand", "status": "pending",
        "indexed_document_count": 0, "indexed_document_volume": 0, "deleted_document_count": 0,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "last_seen": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())})["_id"]
    service = world.Service(binary, config_path, os.path.join(workdir, f"{name}.log"))
    deadline = time.time() + 1800
    while time.time() < deadline:
        service.sample()
        job = world.es("GET", f"/.elastic-connectors-sync-jobs/_doc/{job_id}")["_source"]
        if job["status"] in ("completed", "error"):
            break
        time.sleep(0.2)
    service.stop()
    if job["status"] != "completed":
        sys.exit(f"{name}: job {job['status']}: {job.get('error')}")
    return job, service.peak_rss_kib


def setup(binary, config_path, bucket, index, objects):
    s3 = world.s3_client()
    world.reset_bucket(s3, bucket, "us-east-1")
    started = time.time()
    world.put_all(s3, bucket, objects, workers=16)
    log(f"{bucket}: {len(objects)} objects uploaded in {time.time() - started:.1f} s")
    world.ensure_system_indices(binary, config_path)
    world.es("DELETE", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", ok_missing=True)
    world.write_connector(CONNECTOR, index, world.s3_configuration(
        bucket, "test", "test-secret", page_size=1000, endpoint=world.S3_ENDPOINT))
    world.es("DELETE", f"/{index}", ok_missing=True)


def report(name, job, rss_kib):
    secs = world.job_seconds(job)
    m = job.get("metadata", {})
    mb = m.get("downloaded_bytes", 0) / 1e6
    log(f"{name}: {job['indexed_document_count']} indexed in {secs:.2f} s "
        f"({job['indexed_document_count'] / max(secs, 1e-3):.0f} docs/s, {mb / max(secs, 1e-3):.1f} MB/s downloaded), "
        f"extracted {m.get('extracted_files')}, failed {m.get('extraction_failed')}, "
        f"unchanged skipped {m.get('unchanged_skipped')}, peak RSS {rss_kib / 1024:.1f} MiB")
    return secs


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/content-sync"
    workdir = tempfile.mkdtemp(prefix="bench-")
    config_path = world.write_config(workdir, CONNECTOR, idling=0.5)
    corpus = sorted(p for p in glob.glob(os.path.join(os.path.dirname(__file__), "..", "tests", "corpus", "*"))
                    if not p.endswith("expected.json"))
    blobs = [(os.path.basename(p), open(p, "rb").read()) for p in corpus]
    mixed = [(f"mixed/{i:04}-{name}", data) for i, (name, data) in
             ((i, blobs[i % len(blobs)]) for i in range(1000))]
    setup(binary, config_path, "bench-mixed", "bench-mixed", mixed)
    job, rss = run_job(binary, config_path, workdir, "full", "mixed-full")
    report("1 000 mixed files, full sync with extraction", job, rss)

    small = [(f"small/{i:05}.txt", f"object number {i}\n".encode()) for i in range(10_000)]
    setup(binary, config_path, "bench-incr", "bench-incr", small)
    job, rss = run_job(binary, config_path, workdir, "full", "incr-full")
    full = report("10 000 objects, full sync", job, rss)
    job, rss = run_job(binary, config_path, workdir, "incremental", "incr-nochange")
    incr = report("10 000 objects, no-change incremental sync", job, rss)
    downloads = job.get("metadata", {}).get("downloaded_bytes")
    log(f"incremental speed-up: {full / max(incr, 1e-3):.1f}x; bytes downloaded by the incremental: {downloads}")
    log(f"logs in {workdir}")


if __name__ == "__main__":
    main()
