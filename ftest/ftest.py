"""`make ftest NAME=s3 DATA_SIZE=small|medium|large`: Elastic's S3 functional test, on our service.

Same fixture shape as Elastic's (`tests/sources/fixtures/s3`): bucket `ent-search-ingest-dev` in us-west-2,
FOLDER_COUNT folder markers and FILE_COUNT HTML files (58% ~100 KB, 30% ~1 MB, 10% ~8.2 MB, 2% ~25.6 MB),
a connector configured like Elastic's fake-kibana with a scheduled full sync, the service pointed at S3 with
Elastic's AWS_ENDPOINT_URL + AWS_PORT pair. First sync; remove OBJECT_TO_DELETE_COUNT folders; a second
service instance syncs again. Then we verify what Elastic's verify.py only half checks: the **exact**
document count, and that every removed object's document is gone.
"""

import argparse
import os
import random
import sys
import tempfile
import time
import urllib.parse

import world
from world import es, log

SIZES = {"small": (50, 250, 5), "medium": (150, 1000, 10), "large": (300, 3000, 15)}
BUCKET = "ent-search-ingest-dev"
INDEX = "search-s3"
CONNECTOR = "s3"


def html_payload(size):
    para = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p>\n"
    body = para * (size // len(para) + 1)
    return ("<html><head><title>fixture</title></head><body>" + body + "</body></html>").encode()[:size]


def load_fixture(folders, files):
    s3 = world.s3_client("us-west-2")
    world.reset_bucket(s3, BUCKET, "us-west-2")
    payloads = [html_payload(n) for n in (100_000, 1_000_000, 8_200_000, 25_600_000)]
    rnd = random.Random(1)
    objects = [(f"{i}/", b"") for i in range(folders)]
    objects += [(f"small_file_{i}.html", rnd.choices(payloads, weights=[58, 30, 10, 2])[0]) for i in range(files)]
    started = time.time()
    world.put_all(s3, BUCKET, objects)
    log(f"fixture: {folders} folders + {files} files uploaded in {time.time() - started:.1f} s")
    return s3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="s3")
    ap.add_argument("--data-size", default=os.environ.get("DATA_SIZE", "medium"))
    ap.add_argument("--binary", default="target/release/content-sync")
    ap.add_argument("--schedule", default=os.environ.get("FTEST_SCHEDULE", "1 * * * * ?"),
                    help="Quartz cron of the scheduled full sync (Elastic's ftest: every minute)")
    ap.add_argument("--extract", default=os.environ.get("FTEST_EXTRACT", "true"), choices=["true", "false"],
                    help="the connector's pipeline.extract_binary_content (false: metadata-only documents)")
    args = ap.parse_args()
    if args.name != "s3":
        sys.exit(f"only NAME=s3 exists, not {args.name!r}")
    folders, files, removed = SIZES.get(args.data_size, SIZES["large"])
    expected = folders + files - removed
    workdir = tempfile.mkdtemp(prefix="ftest-")
    config_path = world.write_config(workdir, CONNECTOR)
    endpoint = urllib.parse.urlsplit(world.S3_ENDPOINT)
    env = {"AWS_ENDPOINT_URL": f"{endpoint.scheme}://{endpoint.hostname}", "AWS_PORT": str(endpoint.port)}
    log(f"ftest s3 DATA_SIZE={args.data_size} extract={args.extract}: ES {world.ES_URL}, S3 {world.S3_ENDPOINT}, logs in {workdir}")

    s3 = load_fixture(folders, files)
    world.ensure_system_indices(args.binary, config_path)
    es("DELETE", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", ok_missing=True)
    off = {"enabled": False, "interval": "0 0 0 * * ?"}
    # As Elastic's fixture connector.json: keys A1B2C3D4, `use_text_extraction_service` at order 13.
    world.write_connector(CONNECTOR, INDEX, world.s3_configuration(BUCKET, "A1B2C3D4", "A1B2C3D4",
                                                                   extraction_service_order=13),
                          {"access_control": off, "incremental": off, "full": {"enabled": True, "interval": args.schedule}},
                          extract_binary_content=args.extract == "true")
    es("DELETE", f"/{INDEX}", ok_missing=True)
    es("PUT", f"/{INDEX}")

    runs = []
    service = world.Service(args.binary, config_path, os.path.join(workdir, "service-1.log"), env)
    world.wait_for_sync(service, CONNECTOR, None, timeout=20 * 60)
    first = world.last_job(CONNECTOR)
    service.stop()
    runs.append(("first sync", first, service.peak_rss_kib))

    for i in range(removed):
        s3.delete_object(Bucket=BUCKET, Key=f"{i}/")
    log(f"removed {removed} folder objects")
    previous = world.connector(CONNECTOR)["last_synced"]
    service = world.Service(args.binary, config_path, os.path.join(workdir, "service-2.log"), env)
    world.wait_for_sync(service, CONNECTOR, previous, timeout=20 * 60)
    second = world.last_job(CONNECTOR)
    service.stop()
    runs.append(("second sync", second, service.peak_rss_kib))

    failures = []
    for name, job, rss in runs:
        secs = world.job_seconds(job)
        rate = job["indexed_document_count"] / secs if secs > 0 else float("inf")
        log(f"{name}: status {job['status']}, indexed {job['indexed_document_count']}, "
            f"deleted {job['deleted_document_count']}, {secs:.2f} s ({rate:.0f} docs/s), "
            f"service peak RSS {rss / 1024:.1f} MiB")
        if job["status"] != "completed":
            failures.append(f"{name} ended {job['status']}: {job.get('error')}")
    got = world.count(INDEX)
    if got != expected:
        failures.append(f"expected exactly {expected} documents, found {got}")
    still_there = [i for i in range(removed) if es("GET", f"/{INDEX}/_doc/{world.doc_id(BUCKET, f'{i}/')}", ok_missing=True)]
    if still_there:
        failures.append(f"documents of removed folders still indexed: {still_there}")
    hit = es("POST", f"/{INDEX}/_search", {"size": 1, "query": {"match_all": {}}})["hits"]["hits"][0]["_source"]
    if len(hit) < 3 or "_extract_binary_content" in hit or "_attachment" in hit:
        failures.append(f"unexpected document shape: {sorted(hit)}")
    if failures:
        for f in failures:
            log("FAIL: " + f)
        sys.exit(1)
    log(f"PASS: {got} documents, the {removed} removed objects are gone")


if __name__ == "__main__":
    main()
