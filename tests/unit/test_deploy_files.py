"""The deployment files parse and agree with the code: every process is there, probes hit
routes that exist, grace periods outlast the drain deadlines, the image holds every package.

Run here: YAML parsing and these checks, and `kubectl kustomize` when kubectl is installed.
Not run here (no Docker daemon, no cluster): `docker build`, `docker compose up`,
`kubectl apply`."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from tenancy.config import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def _k8s_docs() -> list[dict]:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kust["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def test_compose_has_every_process_wired_to_postgres_redis_and_prefect() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"api", "worker", "dashboard", "prefect-server", "postgres", "redis", "migrate"} <= set(
        services
    )
    for name in ("api", "worker", "dashboard"):
        env = services[name]["environment"]
        assert env["ORBIN_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["ORBIN_REDIS_URL"].startswith("redis://")
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["api"]["healthcheck"]["test"][-1].endswith("/readyz')")
    assert "9100/livez" in services["worker"]["healthcheck"]["test"][-1]
    grace = int(services["worker"]["stop_grace_period"].rstrip("s"))
    assert grace > int(services["worker"]["environment"]["ORBIN_WORKER_SHUTDOWN_SECONDS"])
    # The Prefect server is for operators only: bound to the host's loopback.
    assert all(p.startswith("127.0.0.1:") for p in services["prefect-server"]["ports"])
    # The Prefect image matches the Prefect version Orbin is built against.
    pinned = re.search(r"prefect>=([\d.]+)", (ROOT / "pyproject.toml").read_text()).group(1)
    assert f"prefect:{pinned}" in services["prefect-server"]["image"]


def test_dockerfile_copies_every_package_and_runs_orbin() -> None:
    text = (ROOT / "Dockerfile").read_text()
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    for pattern in include:
        package = pattern.rstrip("*")
        assert f"COPY {package} ./{package}" in text, package
    assert 'ENTRYPOINT ["orbin"]' in text  # exec form: SIGTERM reaches orbin and it drains


def test_k8s_manifests_are_complete_and_consistent() -> None:
    docs = _k8s_docs()
    for d in docs:
        assert d["apiVersion"] and d["kind"] and d["metadata"]["name"], d
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert set(deployments) == {"orbin-api", "orbin-worker", "orbin-dashboard"}
    from ingest_api.app import create_app

    routes = set(create_app().openapi()["paths"])
    for name, dep in deployments.items():
        spec = dep["spec"]
        assert (
            spec["selector"]["matchLabels"].items()
            <= spec["template"]["metadata"]["labels"].items()
        )
        (container,) = spec["template"]["spec"]["containers"]
        ports = {p["name"] for p in container["ports"]}
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["port"] in ports, (name, probe)
                if name == "orbin-api":
                    assert container[probe]["httpGet"]["path"] in routes
    api_grace = deployments["orbin-api"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    worker_grace = deployments["orbin-worker"]["spec"]["template"]["spec"][
        "terminationGracePeriodSeconds"
    ]
    assert api_grace > float(config["ORBIN_API_SHUTDOWN_SECONDS"]) + 5
    assert worker_grace > float(config["ORBIN_WORKER_SHUTDOWN_SECONDS"])
    # Every ORBIN_ variable the manifests set is one Orbin reads.
    known = {f"ORBIN_{k.upper()}" for k in Settings.model_fields}
    from telemetry.settings import TelemetrySettings

    known |= {f"ORBIN_{k.upper()}" for k in TelemetrySettings.model_fields}
    secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
    for var in [*config, *secret]:
        assert var.startswith("PREFECT_") or var in known, var


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_builds_the_manifests() -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(out.stdout) if d]
    assert kinds.count("Deployment") == 3 and "Job" in kinds
    assert all(
        d["metadata"].get("namespace") == "orbin"
        for d in yaml.safe_load_all(out.stdout)
        if d and d["kind"] != "Namespace"
    )
