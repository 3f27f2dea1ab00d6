"""Hostile files by hand (not a test): one full sync of a bucket of bombs and ordinary files, with the
service's wall time and its own peak RSS (VmHWM of the service process; extraction workers are other
processes). With `--big-mib N` the bucket holds one N MiB object instead, synced in extraction-service mode
against a local service double that reads and discards the upload.

    .local/venv/bin/python ftest/hostile.py target/release/content-sync            # needs ES_URL, S3_ENDPOINT
    .local/venv/bin/python ftest/hostile.py target/release/content-sync --big-mib 1024
"""

import argparse
import gzip
import http.server
import io
import json
import os
import subprocess
import tempfile
import threading
import time
import zipfile
import zlib

import world
from world import es, log

BUCKET = "content-sync-hostile"
INDEX = "search-hostile"
CONNECTOR = "hostile"


def pdf_bomb(mib):
    """A one-page PDF whose content stream inflates to `mib` MiB of `0 0 m ` operators."""
    content = zlib.compress(b"0 0 m " * (mib * 1048576 // 6), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    pdf, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % (i + 1) + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 5\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    pdf += b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(pdf)


def zip_bomb(mib):
    """A docx whose document inflates to `mib` MiB of spaces."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"<w:document><w:body><w:t>" + b" " * (mib << 20)
                   + b"</w:t></w:body></w:document>")
    return out.getvalue()


def hostile_objects():
    deep = 100_000
    objects = [
        ("bomb.pdf", pdf_bomb(40)),
        ("bomb.docx", zip_bomb(100)),
        ("bomb.txt.gz", gzip.compress(b"\0" * (1 << 20), 9) * 1024),
        ("deep.xml", b"<?xml version=\"1.0\"?>" + b"<a>" * deep + b"deep" + b"</a>" * deep),
        ("deep.html", b"<div><span>" * deep + b"deep" + b"</span></div>" * deep),
        ("deep.json", b"[" * 1_000_000 + b"\"deep\"" + b"]" * 1_000_000),
    ]
    objects += [(f"ordinary/{i:03}.txt", f"ordinary words {i}\n".encode() * 50) for i in range(50)]
    return objects


class Discarding(http.server.BaseHTTPRequestHandler):
    """A Data Extraction Service double that reads the upload in pieces and keeps only its length."""

    def do_PUT(self):
        length, seen = int(self.headers.get("Content-Length", "0")), 0
        while seen < length:
            piece = self.rfile.read(min(1 << 20, length - seen))
            if not piece:
                break
            seen += len(piece)
        body = json.dumps({"extracted_text": f"{seen} bytes seen"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--big-mib", type=int, default=0)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="hostile-")
    config_path = world.write_config(workdir, CONNECTOR)
    s3 = world.s3_client()
    world.reset_bucket(s3, BUCKET, "us-east-1")
    if args.big_mib:
        des = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Discarding)
        threading.Thread(target=des.serve_forever, daemon=True).start()
        with open(config_path, "a") as f:
            f.write(f"extraction_service.host: http://127.0.0.1:{des.server_address[1]}\n")
        piece = os.urandom(1 << 20)
        s3.upload_fileobj(io.BytesIO(piece * args.big_mib), BUCKET, "big.pdf")
        objects = [("big.pdf", None)]
    else:
        objects = hostile_objects()
        world.put_all(s3, BUCKET, objects)
    log(f"bucket {BUCKET}: {len(objects)} objects")

    cli = [args.binary, "-c", config_path]
    es("DELETE", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", ok_missing=True)
    es("DELETE", f"/{INDEX}", ok_missing=True)
    endpoint = ["--endpoint-url", world.S3_ENDPOINT] if world.S3_ENDPOINT else []
    keys = ["--aws-access-key-id", "test", "--aws-secret-access-key", "test-secret"]
    env = dict(os.environ, ALLOW_ES_VERSION_MISMATCH="true")
    subprocess.run(cli + ["connector", "create", "--id", CONNECTOR, "--index-name", INDEX, "--buckets", BUCKET]
                   + endpoint + keys, check=True, env=env)
    if args.big_mib:
        c = world.connector(CONNECTOR)
        c["configuration"]["use_text_extraction_service"] = world.rich(
            "Use text extraction service", 8, "bool", True, required=False)
        es("PUT", f"/.elastic-connectors/_doc/{CONNECTOR}?refresh=true", c)
    subprocess.run(cli + ["job", "start", "--connector", CONNECTOR], check=True, capture_output=True, env=env)
    service = world.Service(args.binary, config_path, os.path.join(workdir, "service.log"))
    started = time.time()
    world.wait_for_sync(service, CONNECTOR, None, timeout=1800)
    wall = time.time() - started
    service.stop()
    job = world.last_job(CONNECTOR)
    log(f"sync {job['status']}: {world.count(INDEX)} documents, job {world.job_seconds(job):.1f} s, "
        f"{wall:.1f} s from service start; service peak RSS {service.peak_rss_kib / 1024:.1f} MiB; "
        f"metadata {json.dumps({k: v for k, v in job.get('metadata', {}).items() if k != 'checkpoint'})}")
    log(f"service log: {workdir}/service.log")


if __name__ == "__main__":
    main()
