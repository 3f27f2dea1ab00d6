"""`make test-image`: the image run the way Elastic documents it, against the stand-ins (ES_URL, S3_ENDPOINT).

    docker run -v "$PWD/config.yml:/config/config.yml" ... /app/bin/elastic-ingest -c /config/config.yml

Checks, each printed: the image's size and user; the CLI inside it creates a connector and queues a job; the
service in it completes a full sync (exact document count) and serves /healthz, /readyz and /metrics; it
runs as a non-root user; SIGTERM in the middle of a job suspends the job and the container exits 0; a new
container resumes and completes that job; the image holds a CA bundle that Python's TLS stack loads.
Exits non-zero on the first failure, with the container's log.
"""

import argparse
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

import deploy_check
import world
from world import es, log

CONNECTOR = "image-test"
INDEX = "search-image-test"
BUCKET = "content-sync-image-test"
FIRST = 40
SECOND = 3000


def sh(*args, check=True, capture=True):
    r = subprocess.run(list(args), check=False, capture_output=capture, text=True)
    if check and r.returncode != 0:
        fail(f"{' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout.strip() if capture else ""


def fail(msg, container=None):
    if container:
        logs = subprocess.run([ENGINE, "logs", "--tail", "60", container], capture_output=True, text=True)
        sys.stderr.write(f"--- container log ---\n{logs.stdout}{logs.stderr}\n")
    sys.exit(f"test-image: FAILED: {msg}")


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def wait(desc, timeout, f, container=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = f()
        if v:
            return v
        time.sleep(0.3)
    fail(f"timed out after {timeout} s waiting for {desc}", container)


def run_cli(config, *args):
    """The image's CLI, as `docker run ... /app/bin/elastic-ingest -c /config/config.yml <args>`."""
    return sh(ENGINE, "run", "--rm", "--network", "host", "-e", "ALLOW_ES_VERSION_MISMATCH=true",
              "-v", f"{config}:/config/config.yml:ro", IMAGE, "/app/bin/elastic-ingest", "-c",
              "/config/config.yml", *args)


SERVICE = "content-sync-test-image"
CREATED = []


# What deploy/kubernetes.yml's securityContext asks: read-only root filesystem with a writable /tmp, no
# capabilities, no privilege escalation, the image's numeric user.
AS_KUBERNETES = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                 "--user", "65532:65532"]


def start_service(config, name, *flags):
    sh(ENGINE, "rm", "-f", name, check=False)
    sh(ENGINE, "run", "-d", "--name", name, "--network", "host", "-e", "ALLOW_ES_VERSION_MISMATCH=true", *flags,
       "-v", f"{config}:/config/config.yml:ro", IMAGE, "/app/bin/elastic-ingest", "-c", "/config/config.yml")
    return name


def job(job_id):
    return es("GET", f"/.elastic-connectors-sync-jobs/_doc/{job_id}")["_source"]


def check_body(container, key, text):
    """The object's text reached its document: extraction (a worker process of the service) ran."""
    doc = es("GET", f"/{INDEX}/_doc/{world.doc_id(BUCKET, key)}", ok_missing=True)
    body = ((doc or {}).get("_source") or {}).get("body") or ""
    if text not in body:
        fail(f"the document of {key} has body {body[:80]!r}, not the object's text {text!r}", container)


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def main():
    global ENGINE, IMAGE
    p = argparse.ArgumentParser()
    p.add_argument("--engine", default="podman")
    p.add_argument("--image", default="content-sync:latest")
    a = p.parse_args()
    ENGINE, IMAGE = a.engine, a.image
    started = time.time()

    info = json.loads(sh(ENGINE, "image", "inspect", IMAGE))[0]
    user = info["Config"].get("User", "")
    log(f"image {IMAGE}: {info['Size'] / 1e6:.0f} MB, user {user!r}")
    if user.split(":")[0] in ("", "0", "root"):
        fail(f"the image runs as root (User={user!r})")

    workdir = tempfile.mkdtemp(prefix="test-image-")
    CREATED.append(workdir)
    os.chmod(workdir, 0o755)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    auth = ""
    if os.environ.get("ES_API_KEY"):
        auth = f"elasticsearch.api_key: {json.dumps(os.environ['ES_API_KEY'])}\n"
    elif os.environ.get("ES_USERNAME"):
        auth = (f"elasticsearch.username: {json.dumps(os.environ['ES_USERNAME'])}\n"
                f"elasticsearch.password: {json.dumps(os.environ.get('ES_PASSWORD', ''))}\n")
    config = os.path.join(workdir, "config.yml")
    with open(config, "w") as f:
        f.write(f"elasticsearch.host: {world.ES_URL}\n{auth}service.idling: 1\n"
                f"service.http.listen: 127.0.0.1:{port}\n"
                f"connectors:\n  - connector_id: '{CONNECTOR}'\n    service_type: 's3'\n")
    os.chmod(config, 0o644)

    s3 = world.s3_client()
    world.reset_bucket(s3, BUCKET, "us-east-1")
    world.put_all(s3, BUCKET, [(f"first/{i:04}.txt", f"first batch {i}\n".encode()) for i in range(FIRST)])
    es("DELETE", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", ok_missing=True)
    es("DELETE", f"/{INDEX}", ok_missing=True)
    run_cli(config, "connector", "create", "--id", CONNECTOR, "--index-name", INDEX, "--buckets", BUCKET,
            "--endpoint-url", world.S3_ENDPOINT, "--aws-access-key-id", "test",
            "--aws-secret-access-key", "test-secret")
    job_id = run_cli(config, "job", "start", "--connector", CONNECTOR).splitlines()[-1]
    log(f"the image's CLI created connector {CONNECTOR} and queued job {job_id}")

    name = start_service(config, SERVICE)
    done = wait("the first sync", 300, lambda: job(job_id)["status"] in ("completed", "error") and job(job_id), name)
    if done["status"] != "completed" or world.count(INDEX) != FIRST:
        fail(f"first sync {done['status']} ({done.get('error')}), {world.count(INDEX)} of {FIRST} documents", name)
    check_body(name, "first/0007.txt", "first batch 7")
    log(f"full sync completed in the container: {FIRST} documents, text extracted")

    if http_get(f"http://127.0.0.1:{port}/healthz")[0] != 200:
        fail("/healthz does not answer 200", name)
    wait("/readyz 200", 30, lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200, name)
    status, text = http_get(f"http://127.0.0.1:{port}/metrics")
    indexed = metric(text, "content_sync_documents_indexed_total")
    if status != 200 or indexed != FIRST:
        fail(f"/metrics: status {status}, content_sync_documents_indexed_total {indexed}", name)
    log("/healthz, /readyz and /metrics answer from the container")

    pid = sh(ENGINE, "inspect", "-f", "{{.State.Pid}}", name)
    with open(f"/proc/{pid}/status") as f:
        uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
    if uid == "0":
        fail("the service runs as root in the container", name)
    log(f"the service runs as uid {uid}")

    # SIGTERM while idle: exit 0.
    sh(ENGINE, "stop", "-t", "60", name)
    code = sh(ENGINE, "inspect", "-f", "{{.State.ExitCode}}", name)
    if code != "0":
        fail(f"after SIGTERM while idle: exit code {code}", name)

    # SIGTERM in the middle of a job: suspended, exit 0. The job is queued while no service runs, so
    # that it cannot end before the test sees it running however slow the CLI's container is.
    world.put_all(s3, BUCKET, [(f"second/{i:05}.txt", f"second batch {i}\n".encode()) for i in range(SECOND)])
    es("POST", f"/.elastic-connectors/_update/{CONNECTOR}?refresh=true",
       {"doc": {"configuration": {"page_size": {"value": 10}}}})
    second = run_cli(config, "job", "start", "--connector", CONNECTOR).splitlines()[-1]
    name = start_service(config, SERVICE)
    wait("the second job to run", 120, lambda: job(second)["status"] == "in_progress", name)
    t = time.time()
    sh(ENGINE, "stop", "-t", "60", name)
    stop_secs = time.time() - t
    code = sh(ENGINE, "inspect", "-f", "{{.State.ExitCode}}", name)
    suspended = job(second)
    if code != "0" or suspended["status"] != "suspended":
        fail(f"after SIGTERM: exit code {code}, job {suspended['status']}", name)
    log(f"SIGTERM: job suspended at {suspended['indexed_document_count']} documents, exit code 0 "
        f"after {stop_secs:.1f} s")

    name = start_service(config, SERVICE, *AS_KUBERNETES)
    wait("the suspended job to complete", 600,
         lambda: job(second)["status"] in ("completed", "error"), name)
    total = world.count(INDEX)
    if job(second)["status"] != "completed" or total != FIRST + SECOND:
        fail(f"resumed job {job(second)['status']}, {total} of {FIRST + SECOND} documents", name)
    check_body(name, f"second/{SECOND - 1:05}.txt", f"second batch {SECOND - 1}")
    log(f"a new container (read-only root, no capabilities, as deploy/kubernetes.yml runs it) resumed and "
        f"completed the job: {total} documents, text extracted")
    sh(ENGINE, "stop", "-t", "60", name)
    sh(ENGINE, "rm", "-f", name, check=False)

    # The CA bundle the TLS stacks read (rustls-platform-verifier via SSL_CERT_FILE / /etc/ssl/certs).
    ctr = sh(ENGINE, "create", IMAGE)
    CREATED.append(ctr)
    bundle = os.path.join(workdir, "ca-certificates.crt")
    sh(ENGINE, "cp", f"{ctr}:/etc/ssl/certs/ca-certificates.crt", bundle)
    sh(ENGINE, "rm", ctr)
    with open(bundle) as f:
        certs = f.read().count("BEGIN CERTIFICATE")
    ctx = ssl.create_default_context(cafile=bundle)
    if certs < 100 or len(ctx.get_ca_certs()) < 100:
        fail(f"the image's CA bundle holds {certs} certificates")
    log(f"CA bundle /etc/ssl/certs/ca-certificates.crt: {certs} certificates")

    deploy_check.run(sh, log, fail, ENGINE, IMAGE, workdir, world.ES_URL, auth)
    log(f"test-image passed in {time.time() - started:.0f} s")


def cleanup():
    """No container or file of ours outlives the test, passed or failed."""
    if ENGINE:
        for name in [SERVICE, *CREATED]:
            if os.path.isdir(name):
                shutil.rmtree(name, ignore_errors=True)
            else:
                subprocess.run([ENGINE, "rm", "-f", "-t", "10", name], capture_output=True, check=False)


if __name__ == "__main__":
    ENGINE = IMAGE = None
    try:
        main()
    finally:
        cleanup()
