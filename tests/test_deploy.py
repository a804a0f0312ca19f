"""deploy/ is read by Docker, Compose, Prometheus, Grafana and Kubernetes, none of which
runs here: parse every file and check the references between them and the service
(ports, settings, metric names, names of objects), so a rename cannot silently break a
deployment. Plus the `hashguard health` command the image's HEALTHCHECK runs."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml
from hashguard.v1 import hashguard_pb2 as pb
from prometheus_client.metrics import MetricWrapperBase

from service import metrics
from service.config import SETTINGS, WEB_SETTINGS, Settings, WebSettings
from tests.browser import need_program
from tests.support import ServerProcess, run_cli

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SETTING_ENVS = {s.env for s in SETTINGS}
WEB_SETTING_ENVS = {s.env for s in WEB_SETTINGS}


def load(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def one(path: Path) -> Any:
    (doc,) = load(path)
    return doc


def exported_metric_names() -> set[str]:
    """The sample names /metrics can carry."""
    names: set[str] = {  # each replica's own collector: counters gain _total on export
        family.name + ("_total" if family.type == "counter" else "")
        for family in metrics.ReplicaCollector().describe()
    }
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            name, kind = value._name, value._type
            if kind == "counter":
                names.add(name + "_total")
            elif kind == "histogram":
                names |= {name + suffix for suffix in ("_bucket", "_sum", "_count")}
            else:
                names.add(name)
    return names


def metric_names_in(expr: str) -> set[str]:
    return set(re.findall(r"\bhashguard_[a-z_]+\b", expr))


def test_every_yaml_and_json_file_parses() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml", ".json")]
    assert len(files) >= 12
    for path in files:
        assert load(path), f"{path} is empty"


# -- Docker -------------------------------------------------------------------------------


def dockerfile() -> str:
    return (DEPLOY / "Dockerfile").read_text()


def test_dockerfile_is_slim_non_root_compiles_proto_and_checks_health() -> None:
    text = dockerfile()
    assert all(line.split()[1].endswith("-slim") for line in re.findall(r"^FROM .*", text, re.M))
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert "scripts/gen_proto.sh" in text and (ROOT / "scripts" / "gen_proto.sh").exists()
    assert re.search(r'HEALTHCHECK .*\n?.*CMD \["hashguard", "health"', text)
    for source in re.findall(r"^COPY (?!--)(\S+)", text, re.M):
        assert (ROOT / source).exists(), source
    exposed = {int(p) for p in re.findall(r"^EXPOSE (.*)$", text, re.M)[0].split()}
    envs = dict(re.findall(r"(HASHGUARD_[A-Z_]+)=(\S+)", text))
    assert set(envs) <= SETTING_ENVS
    service_ports = {int(envs["HASHGUARD_PORT"]), int(envs["HASHGUARD_METRICS_PORT"])}
    assert service_ports == {Settings().port, Settings().metrics_port}
    assert exposed == service_ports | {WebSettings().web_port}  # the same image runs `web`


# -- Compose, Prometheus, Grafana ---------------------------------------------------------


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = one(DEPLOY / "docker-compose.yml")
    return doc


def replicas() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Dockerfile"
        and service.get("command") != ["web"]
    }


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> file or folder under deploy/, for the bind mounts."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            found[target] = (DEPLOY / source).resolve()
    return found


def test_compose_runs_two_replicas_on_postgresql_with_monitoring() -> None:
    services = compose()["services"]
    assert {"postgres", "prometheus", "grafana"} <= set(services)
    assert len(replicas()) == 2
    pg_env = services["postgres"]["environment"]
    host_ports = set()
    for name, replica in replicas().items():
        assert (DEPLOY / replica["build"]["context"] / replica["build"]["dockerfile"]).exists()
        env = replica["environment"]
        assert set(env) <= SETTING_ENVS, name
        url = urllib.parse.urlsplit(env["HASHGUARD_STORE"])
        assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
        assert (url.username, url.password, url.path) == (
            pg_env["POSTGRES_USER"],
            pg_env["POSTGRES_PASSWORD"],
            "/" + pg_env["POSTGRES_DB"],
        )
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
        for mapping in replica["ports"]:
            host, container = mapping.split(":")
            assert int(container) == int(env["HASHGUARD_PORT"])
            host_ports.add(host)
    assert len(host_ports) == 2
    for service in services.values():
        for source in mounts(service).values():
            assert source.exists(), source


def test_prometheus_scrapes_every_replica_and_loads_the_alert_rules() -> None:
    prometheus = compose()["services"]["prometheus"]
    config = one(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "hashguard"]
    targets = {t for static in job["static_configs"] for t in static["targets"]}
    assert targets == {
        f"{name}:{replica['environment']['HASHGUARD_METRICS_PORT']}"
        for name, replica in replicas().items()
    }
    mounted = mounts(prometheus)
    for rule_file in config["rule_files"]:
        assert rule_file in mounted and mounted[rule_file].exists()
    assert mounted["/etc/prometheus/prometheus.yml"] == DEPLOY / "prometheus" / "prometheus.yml"


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in one(DEPLOY / "prometheus" / "alerts.yml")["groups"] for r in g["rules"]]


def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = one(DEPLOY / "grafana" / "dashboards" / "hashguard.json")
    return doc


def test_alerts_and_dashboard_use_only_metrics_the_service_exports() -> None:
    exported = exported_metric_names()
    exprs = [r["expr"] for r in alert_rules()]
    exprs += [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]
    used = set().union(*(metric_names_in(e) for e in exprs))
    assert used and used <= exported, used - exported
    methods = {m.name for s in pb.DESCRIPTOR.services_by_name.values() for m in s.methods}
    for expr in exprs:
        for method in re.findall(r'method="(\w+)"', expr):
            assert method in methods, method


def test_alerts_cover_lag_errors_and_latency() -> None:
    used = set().union(*(metric_names_in(r["expr"]) for r in alert_rules()))
    assert {
        "hashguard_replica_lag_seconds",
        "hashguard_requests_total",
        "hashguard_request_duration_seconds_bucket",
        "hashguard_tls_certificate_expiry_timestamp_seconds",
    } <= used
    for rule in alert_rules():
        assert rule["alert"] and rule["annotations"]["summary"] and rule["labels"]["severity"]


@pytest.mark.slow
def test_the_tls_expiry_alert_passes_promtool_rule_tests() -> None:
    """tests/prometheus/alerts_test.yml: an expiring certificate fires after an hour, a
    renewed one does not, nor does a replica without TLS (no series, or an old one's 0)."""
    promtool = need_program("promtool", "prometheus")
    done = subprocess.run(
        [promtool, "test", "rules", str(ROOT / "tests" / "prometheus" / "alerts_test.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
    subprocess.run(
        [promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml")],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_grafana_is_provisioned_with_the_dashboard_and_its_datasource() -> None:
    grafana = compose()["services"]["grafana"]
    mounted = mounts(grafana)
    provisioning = mounted["/etc/grafana/provisioning"]
    (datasource,) = one(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in compose()["services"]["prometheus"]["ports"]
    assert compose()["services"]["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    (provider,) = one(provisioning / "dashboards" / "hashguard.yml")["providers"]
    assert mounted[provider["options"]["path"]] == DEPLOY / "grafana" / "dashboards"
    panels = dashboard()["panels"]
    uids = {p["datasource"]["uid"] for p in panels} | {
        t["datasource"]["uid"] for p in panels for t in p["targets"]
    }
    assert uids == {datasource["uid"]}
    shown = set().union(*(metric_names_in(t["expr"]) for p in panels for t in p["targets"]))
    assert {
        "hashguard_requests_total",
        "hashguard_request_duration_seconds_bucket",
        "hashguard_decisions_total",
        "hashguard_index_entries",
        "hashguard_pending_hits",
        "hashguard_replica_lag_seconds",
        "hashguard_replica_lag_changes",
    } <= shown


# -- Kubernetes ---------------------------------------------------------------------------


def kubernetes() -> dict[tuple[str, str], dict[str, Any]]:
    kustomization = one(DEPLOY / "kubernetes" / "kustomization.yaml")
    objects = {}
    for resource in kustomization["resources"]:
        for doc in load(DEPLOY / "kubernetes" / resource):
            objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def test_kubernetes_objects_reference_each_other_and_the_service() -> None:
    objects = kubernetes()
    kinds = {kind for kind, _ in objects}
    namespace = one(DEPLOY / "kubernetes" / "kustomization.yaml")["namespace"]
    assert ("Namespace", namespace) in objects
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    } <= kinds
    deployment = objects[("Deployment", "hashguard")]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    config_name = container["envFrom"][0]["configMapRef"]["name"]
    secret_name = container["envFrom"][1]["secretRef"]["name"]
    config = objects[("ConfigMap", config_name)]["data"]
    secret = objects[("Secret", secret_name)]["stringData"]
    assert set(config) <= SETTING_ENVS and set(secret) == {"HASHGUARD_STORE"}
    assert secret["HASHGUARD_STORE"].startswith("postgresql://")
    assert "HASHGUARD_STORE" not in config  # the password never sits in a ConfigMap
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {
        "grpc": int(config["HASHGUARD_PORT"]),
        "metrics": int(config["HASHGUARD_METRICS_PORT"]),
    }
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc"], probe
    annotations = pod["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > float(config["HASHGUARD_GRACE_SECONDS"])
    security = pod["spec"]["securityContext"]
    assert security["runAsNonRoot"] and f"USER {security['runAsUser']}:" in dockerfile()
    mount_paths = {m["mountPath"] for m in container["volumeMounts"]}
    assert config["HASHGUARD_DATA_DIR"] in mount_paths
    services = [
        doc
        for (kind, name), doc in objects.items()
        if kind == "Service" and not name.startswith("hashguard-web")
    ]
    assert services
    for service in services:
        assert service["spec"]["selector"].items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
    hpa = objects[("HorizontalPodAutoscaler", "hashguard")]["spec"]
    assert (hpa["scaleTargetRef"]["kind"], hpa["scaleTargetRef"]["name"]) == (
        "Deployment",
        "hashguard",
    )
    assert hpa["minReplicas"] >= 2
    pdb = objects[("PodDisruptionBudget", "hashguard")]["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["minAvailable"] < hpa["minReplicas"]


def test_compose_and_kubernetes_run_the_web_pages_against_the_service() -> None:
    web = compose()["services"]["web"]
    env = web["environment"]
    assert web["command"] == ["web"] and set(env) <= WEB_SETTING_ENVS
    target_host, target_port = env["HASHGUARD_WEB_TARGET"].split(":")
    assert target_host in replicas() and target_host in web["depends_on"]
    assert int(target_port) == int(replicas()[target_host]["environment"]["HASHGUARD_PORT"])
    assert web["ports"] == [f"{env['HASHGUARD_WEB_PORT']}:{env['HASHGUARD_WEB_PORT']}"]
    assert f"127.0.0.1:{env['HASHGUARD_WEB_PORT']}/healthz" in " ".join(web["healthcheck"]["test"])

    objects = kubernetes()
    deployment = objects[("Deployment", "hashguard-web")]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["web"]
    config = objects[("ConfigMap", container["envFrom"][0]["configMapRef"]["name"])]["data"]
    secret = objects[("Secret", container["envFrom"][1]["secretRef"]["name"])]["stringData"]
    assert set(config) <= WEB_SETTING_ENVS
    assert set(secret) == {"HASHGUARD_WEB_SUBMITTER_KEY", "HASHGUARD_WEB_SESSION_SECRET"}
    assert len(secret["HASHGUARD_WEB_SESSION_SECRET"]) >= 32  # the setting's minimum
    service_name, service_port = config["HASHGUARD_WEB_TARGET"].split(":")
    grpc_ports = {p["name"]: p["port"] for p in objects[("Service", service_name)]["spec"]["ports"]}
    assert grpc_ports["grpc"] == int(service_port)
    (port,) = container["ports"]
    assert port["containerPort"] == int(config["HASHGUARD_WEB_PORT"])
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": port["name"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"]
    service = objects[("Service", "hashguard-web")]["spec"]
    assert service["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["ports"]] == [port["name"]]


# -- the health command -------------------------------------------------------------------


@pytest.mark.slow
def test_health_command_reports_serving_then_not(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path).start()
    try:
        serving = run_cli("health", "--target", server.target)
        assert serving.stdout.strip() == "SERVING"
    finally:
        assert server.stop() == 0
    gone = run_cli("health", "--target", server.target, "--timeout", "1", check=False)
    assert gone.returncode == 1 and "not serving" in gone.stderr
