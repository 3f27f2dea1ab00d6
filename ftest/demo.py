"""`make demo`: one full sync of a sample bucket, with a summary and one search hit.

Creates a bucket of a few hundred objects in nested folders, a connector (through our CLI, as a user
without Kibana would), queues an on-demand full sync, runs the service until it completes, then stops it.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import world
from world import es, log

BUCKET = os.environ.get("DEMO_BUCKET", "content-sync-demo")
INDEX = "search-demo"
CONNECTOR = "demo"
TOPICS = ["reports", "invoices", "photos", "notes", "archive"]


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/content-sync"
    workdir = tempfile.mkdtemp(prefix="demo-")
    config_path = world.write_config(workdir, CONNECTOR)

    s3 = world.s3_client()
    world.reset_bucket(s3, BUCKET, "us-east-1")
    objects = []
    for t in TOPICS:
        objects.append((f"{t}/", b""))
        for year in (2024, 2025, 2026):
            for i in range(20):
                objects.append((f"{t}/{year}/{t}-{i:03}.txt", f"{t} {year} number {i}\n".encode() * 20))
    world.put_all(s3, BUCKET, objects)
    log(f"bucket {BUCKET}: {len(objects)} objects in nested folders")

    cli = [binary, "-c", config_path]
    es("DELETE", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", ok_missing=True)
    es("DELETE", f"/{INDEX}", ok_missing=True)
    endpoint = ["--endpoint-url", world.S3_ENDPOINT] if world.S3_ENDPOINT else []
    keys = ["--aws-access-key-id", os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            "--aws-secret-access-key", os.environ.get("AWS_SECRET_ACCESS_KEY", "test-secret")]
    subprocess.run(cli + ["connector", "create", "--id", CONNECTOR, "--index-name", INDEX, "--buckets", BUCKET]
                   + endpoint + keys, check=True, env=dict(os.environ, ALLOW_ES_VERSION_MISMATCH="true"))
    job_id = subprocess.run(cli + ["job", "start", "--connector", CONNECTOR], check=True, capture_output=True,
                            text=True).stdout.strip()
    log(f"queued on-demand full sync {job_id}")

    service = world.Service(binary, config_path, os.path.join(workdir, "service.log"))
    started = time.time()
    world.wait_for_sync(service, CONNECTOR, None, timeout=600)
    wall = time.time() - started
    service.stop()
    job = world.last_job(CONNECTOR)
    secs = world.job_seconds(job)
    docs = world.count(INDEX)
    log(f"sync {job['status']}: {docs} documents in {INDEX}, job took {secs:.2f} s "
        f"({job['indexed_document_count'] / max(secs, 1e-3):.0f} docs/s; {wall:.1f} s from service start), "
        f"service peak RSS {service.peak_rss_kib / 1024:.1f} MiB")
    log(f"service log: {workdir}/service.log")
    if job["status"] != "completed" or docs != len(objects):
        sys.exit(f"demo failed: job {job['status']} ({job.get('error')}), {docs} of {len(objects)} documents")
    hit = es("POST", f"/{INDEX}/_search", {"size": 1, "query": {"match": {"body": "reports 2025 number 7"}}})
    log("sample hit for body:\"reports 2025 number 7\": "
        + json.dumps(hit["hits"]["hits"][0]["_source"], indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
