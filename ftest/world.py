"""Shared helpers of `make ftest` and `make demo`: Elasticsearch over HTTP, S3 via boto3, the service process.

Runs with the stand-ins' venv python (it has boto3, installed with moto). Talks to whatever ES_URL and
S3_ENDPOINT point at: the local stand-ins by default, a real cluster and S3 when set.
"""

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

ES_URL = os.environ.get("ES_URL", "http://127.0.0.1:9200").rstrip("/")
S3_ENDPOINT = os.environ.get("S3_ENDPOINT")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _auth_headers():
    if os.environ.get("ES_API_KEY"):
        return {"Authorization": "ApiKey " + os.environ["ES_API_KEY"]}
    if os.environ.get("ES_USERNAME"):
        token = f"{os.environ['ES_USERNAME']}:{os.environ.get('ES_PASSWORD', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(token).decode()}
    return {}


def es(method, path, body=None, ok_missing=False):
    """One Elasticsearch call; returns the decoded JSON (None for a tolerated 404)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(ES_URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    for k, v in _auth_headers().items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else {}
    except urllib.error.HTTPError as e:
        if ok_missing and e.code == 404:
            return None
        raise RuntimeError(f"{method} {path} -> {e.code}: {e.read()[:300]!r}") from None


def count(index):
    es("POST", f"/{index}/_refresh")
    return es("POST", f"/{index}/_count")["count"]


def doc_id(bucket, key):
    return hashlib.md5(f"{bucket}/{key}".encode()).hexdigest()


def s3_client(region="us-east-1"):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=S3_ENDPOINT,
        region_name=region,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test-secret"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5}),
    )


def reset_bucket(s3, bucket, region):
    """Creates `bucket` (in `region`), emptying it first when it exists."""
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for page in pages:
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    except s3.exceptions.NoSuchBucket:
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)


def put_all(s3, bucket, objects, workers=8):
    """Uploads (key, body) pairs concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    def put(item):
        key, body = item
        s3.put_object(Bucket=bucket, Key=key, Body=body)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, objects))


def write_connector(connector_id, index, configuration, scheduling=None, pipeline="search-default-ingestion",
                    extract_binary_content=True):
    """Writes a connector document the way Kibana creates one (status `configured`)."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
    rule = {"id": "DEFAULT", "order": 0, "policy": "include", "field": "_", "rule": "regex", "value": ".*",
            "created_at": now, "updated_at": now}
    filt = {"rules": [rule], "advanced_snippet": {"value": {}, "created_at": now, "updated_at": now},
            "validation": {"state": "valid", "errors": []}}
    off = {"enabled": False, "interval": "0 0 0 * * ?"}
    doc = {
        "api_key_id": None, "api_key_secret_id": None, "configuration": configuration, "custom_scheduling": {},
        "description": None, "error": None, "features": None,
        "filtering": [{"domain": "DEFAULT", "active": filt, "draft": filt}],
        "index_name": index, "is_native": False, "language": None, "last_seen": None,
        "last_sync_error": None, "last_sync_scheduled_at": None, "last_sync_status": None, "last_synced": None,
        "name": connector_id,
        "pipeline": {"name": pipeline, "extract_binary_content": extract_binary_content, "reduce_whitespace": True,
                     "run_ml_inference": True},
        "scheduling": scheduling or {"access_control": off, "full": off, "incremental": off},
        "service_type": "s3", "status": "configured", "sync_cursor": None,
    }
    es("PUT", f"/.elastic-connectors/_doc/{connector_id}?refresh=true", doc)


def write_config(workdir, connector_id, idling=1):
    """A minimal config.yml for one s3 connector against ES_URL; returns its path."""
    path = os.path.join(workdir, "config.yml")
    with open(path, "w") as f:
        f.write(f"elasticsearch.host: {ES_URL}\nservice.idling: {idling}\n"
                f"connectors:\n  - connector_id: '{connector_id}'\n    service_type: 's3'\n")
    return path


def s3_configuration(bucket, key_id, secret, page_size=100, extraction_service_order=8, endpoint=None):
    """A filled S3 connector configuration (Elastic's eight fields, plus `endpoint_url` when given)."""
    r = rich
    c = {
        "buckets": r("AWS Buckets", 1, "list", bucket),
        "aws_access_key_id": r("AWS Access Key Id", 2, "str", key_id),
        "aws_secret_access_key": r("AWS Secret Key", 3, "str", secret, sensitive=True),
        "read_timeout": r("Read timeout", 4, "int", 90, required=False),
        "connect_timeout": r("Connection timeout", 5, "int", 90, required=False),
        "max_attempts": r("Maximum retry attempts", 6, "int", 5, required=False),
        "page_size": r("Maximum size of page", 7, "int", page_size, required=False),
        "use_text_extraction_service": r("Use text extraction service", extraction_service_order, "bool", False),
    }
    if endpoint:
        c["endpoint_url"] = r("S3-compatible endpoint URL", 9, "str", endpoint, required=False)
    return c


def rich(label, order, typ, value, sensitive=False, required=True):
    return {"default_value": None, "depends_on": [], "display": "text", "label": label, "options": [],
            "order": order, "required": required, "sensitive": sensitive, "tooltip": None, "type": typ,
            "ui_restrictions": [], "validations": [], "value": value}


def connector(connector_id):
    return es("GET", f"/.elastic-connectors/_doc/{connector_id}")["_source"]


def ensure_system_indices(binary, config_path):
    """Lets the service's own CLI create the system indices (what its preflight would do)."""
    subprocess.run([binary, "-c", config_path, "connector", "list"], check=True, stdout=subprocess.DEVNULL)


class Service:
    """The content-sync process, with its peak RSS sampled from /proc."""

    def __init__(self, binary, config_path, log_path, env=None):
        self.log_file = open(log_path, "ab")
        full_env = dict(os.environ, ALLOW_ES_VERSION_MISMATCH="true", **(env or {}))
        self.proc = subprocess.Popen([binary, "-c", config_path], stdout=self.log_file, stderr=self.log_file,
                                     env=full_env)
        self.peak_rss_kib = 0

    def sample(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        except FileNotFoundError:
            pass

    def stop(self, sig=signal.SIGINT, timeout=60):
        self.sample()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        return self.proc.returncode


def wait_for_sync(service, connector_id, previous, timeout):
    """Waits until the connector's `last_synced` differs from `previous`; returns the connector doc."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        service.sample()
        if service.proc.poll() is not None:
            sys.exit(f"the service exited early with status {service.proc.returncode}")
        c = connector(connector_id)
        if c.get("last_synced") and c.get("last_synced") != previous and c.get("last_sync_status") != "in_progress":
            return c
        time.sleep(0.5)
    sys.exit(f"no sync completed within {timeout} s")


def last_job(connector_id):
    """The connector's most recently finished job."""
    es("POST", "/.elastic-connectors-sync-jobs/_refresh")
    query = {"bool": {"filter": [{"term": {"connector.id": connector_id}},
                                 {"terms": {"status": ["completed", "error", "canceled"]}}]}}
    hits = es("POST", "/.elastic-connectors-sync-jobs/_search", {
        "query": query, "sort": [{"completed_at": "desc"}], "size": 1})
    return hits["hits"]["hits"][0]["_source"]


def job_seconds(job):
    from datetime import datetime

    def parse(s):
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    return (parse(job["completed_at"]) - parse(job["started_at"])).total_seconds()
