"""The `deploy/` files checked by `make test-image`, as far as they can be without Docker Compose or a cluster.

* Each file parses as YAML; the compose service and the Kubernetes Deployment run Elastic's documented command
  with the config at /config/config.yml, and every port they name (published port, containerPort, probes,
  Service, Prometheus annotation) is the one `service.http.listen` of their config.yml listens on.
* The image loads both config files: each is run by the image's CLI (`connector list`) with only
  `elasticsearch.host` pointed at the test's Elasticsearch, the environment variables the deployment gives it,
  and, for the Kubernetes one, the pod's securityContext (read-only root filesystem, no capabilities, uid 65532).
"""

import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = ["/app/bin/elastic-ingest", "-c", "/config/config.yml"]
KUBERNETES_USER = 65532


def listen_port(config_text, where, fail):
    m = re.search(r"^service\.http\.listen:\s*(\S+):(\d+)\s*$", config_text, re.M)
    if not m:
        fail(f"{where}: no service.http.listen address:port")
    return int(m.group(2))


def pointed_at(config_text, es_url, auth):
    """The config with its Elasticsearch host replaced; its credentials too when the test's cluster has some."""
    text = re.sub(r"^elasticsearch\.host:.*$", f"elasticsearch.host: {es_url}", config_text, flags=re.M)
    if auth:
        text = re.sub(r"^elasticsearch\.(username|password|api_key):.*\n", "", text, flags=re.M) + auth
    return text


def run_cli(sh, engine, image, workdir, name, config_text, env, flags=()):
    path = os.path.join(workdir, f"{name}.yml")
    with open(path, "w") as f:
        f.write(config_text)
    os.chmod(path, 0o644)
    args = [engine, "run", "--rm", "--network", "host", "-e", "ALLOW_ES_VERSION_MISMATCH=true", *flags]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    sh(*args, "-v", f"{path}:/config/config.yml:ro", image, *COMMAND, "connector", "list")


def check_compose(sh, log, fail, engine, image, workdir, es_url, auth):
    with open(os.path.join(ROOT, "deploy", "compose.yml")) as f:
        compose = yaml.safe_load(f)
    with open(os.path.join(ROOT, "deploy", "config.yml")) as f:
        config_text = f.read()
    port = listen_port(config_text, "deploy/config.yml", fail)
    svc = compose["services"]["content-sync"]
    if svc["command"] != COMMAND:
        fail(f"deploy/compose.yml: content-sync runs {svc['command']}, not {COMMAND}")
    if "./config.yml:/config/config.yml:ro" not in svc["volumes"]:
        fail("deploy/compose.yml: deploy/config.yml is not mounted at /config/config.yml")
    if f"127.0.0.1:{port}:{port}" not in svc["ports"]:
        fail(f"deploy/compose.yml: port {port} of service.http.listen is not published ({svc['ports']})")
    env = dict(e.split("=", 1) for e in svc["environment"])
    if "ELASTIC_PASSWORD" not in env:
        fail("deploy/compose.yml: content-sync lacks ELASTIC_PASSWORD, which deploy/config.yml reads")
    run_cli(sh, engine, image, workdir, "compose-config", pointed_at(config_text, es_url, auth),
            {"ELASTIC_PASSWORD": "test-password"})
    log(f"deploy/compose.yml and deploy/config.yml: command, mount, port {port}; the image loads the config")


def check_kubernetes(sh, log, fail, engine, image, workdir, es_url, auth):
    with open(os.path.join(ROOT, "deploy", "kubernetes.yml")) as f:
        docs = {d["kind"]: d for d in yaml.safe_load_all(f) if d}
    for kind in ("Secret", "Deployment", "Service"):
        if kind not in docs:
            fail(f"deploy/kubernetes.yml: no {kind}")
    secret, pod = docs["Secret"], docs["Deployment"]["spec"]["template"]
    config_text = secret["stringData"]["config.yml"]
    port = listen_port(config_text, "deploy/kubernetes.yml (Secret config.yml)", fail)
    [ctr] = pod["spec"]["containers"]
    if ctr["command"] != COMMAND:
        fail(f"deploy/kubernetes.yml: the container runs {ctr['command']}, not {COMMAND}")
    ports = {p["name"]: p["containerPort"] for p in ctr["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        named = ctr[probe]["httpGet"]["port"]
        if ports.get(named, named) != port:
            fail(f"deploy/kubernetes.yml: {probe} port {named} is not {port} (service.http.listen)")
    if pod["metadata"]["annotations"]["prometheus.io/port"] != str(port):
        fail(f"deploy/kubernetes.yml: the prometheus.io/port annotation is not {port}")
    target = docs["Service"]["spec"]["ports"][0]["targetPort"]
    if ports.get(target, target) != port:
        fail(f"deploy/kubernetes.yml: the Service's targetPort {target} is not {port}")
    if pod["spec"]["securityContext"]["runAsUser"] != KUBERNETES_USER:
        fail(f"deploy/kubernetes.yml: runAsUser is not the image's user {KUBERNETES_USER}")
    mounts = {m["name"]: m["mountPath"] for m in ctr["volumeMounts"]}
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "config")
    if mounts.get("config") != "/config" or volume["secret"]["items"] != [{"key": "config.yml", "path": "config.yml"}]:
        fail("deploy/kubernetes.yml: the Secret's config.yml is not mounted at /config/config.yml")
    env = {}
    for e in ctr["env"]:
        ref = e["valueFrom"]["secretKeyRef"]
        if ref["name"] != secret["metadata"]["name"] or ref["key"] not in secret["stringData"]:
            fail(f"deploy/kubernetes.yml: {e['name']} reads {ref}, which the Secret does not hold")
        env[e["name"]] = secret["stringData"][ref["key"]]
    flags = ["--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
             "--user", f"{KUBERNETES_USER}:{KUBERNETES_USER}"]
    run_cli(sh, engine, image, workdir, "kubernetes-config", pointed_at(config_text, es_url, auth), env, flags)
    log(f"deploy/kubernetes.yml: command, Secret mount and env, probes/Service/annotation on port {port}; the "
        "image loads the Secret's config with the pod's securityContext")


def run(sh, log, fail, engine, image, workdir, es_url, auth):
    check_compose(sh, log, fail, engine, image, workdir, es_url, auth)
    check_kubernetes(sh, log, fail, engine, image, workdir, es_url, auth)
