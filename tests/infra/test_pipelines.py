"""The two delivery pipelines have the same stages, sign in to Azure without stored secrets,
build only what changed, and put a new version beside the old one before traffic moves.

The linters in scripts/check-infra.sh check the files' syntax and schema; these tests check
what the pipelines mean. The side-by-side release is rendered with helm to show it can
live beside the main one (no name collides) and that its Ingresses are canaries.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import ROOT

SERVICES = ("ingestion", "workflow", "package", "dronescheduler", "delivery")
GITHUB = ROOT / ".github" / "workflows" / "ci.yml"
AZURE = ROOT / "azure-pipelines.yml"
NEXT_RELEASE = ROOT / "infra" / "deploy" / "next-release.yaml"
UMBRELLA = ROOT / "charts" / "drone-delivery"


def load(path: Path) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.fixture(scope="module")
def github() -> dict[Any, Any]:
    return load(GITHUB)


@pytest.fixture(scope="module")
def azure() -> dict[Any, Any]:
    return load(AZURE)


def needs(job: dict[str, Any]) -> set[str]:
    n = job.get("needs", [])
    return {n} if isinstance(n, str) else set(n)


def text(node: Any) -> str:
    """Every string in a YAML subtree (scripts, inputs, names), one after another."""
    if isinstance(node, dict):
        return "\n".join(text(v) for v in node.values())
    if isinstance(node, list):
        return "\n".join(text(v) for v in node)
    return str(node)


def steps_text(job: dict[str, Any]) -> str:
    return text(job.get("steps", []))


# ---------------------------------------------------------------- GitHub Actions
def test_github_stages_run_in_order(github: dict[Any, Any]) -> None:
    jobs = github["jobs"]
    assert {"lint", "typecheck", "test", "infra"} <= needs(jobs["build"])
    assert "build" in needs(jobs["dev"])
    assert "dev" in needs(jobs["dev-tests"])
    assert "dev-tests" in needs(jobs["test-env"])
    assert "test-env" in needs(jobs["production-canary"])
    assert "production-canary" in needs(jobs["production-promote"])
    environments = {name: job.get("environment") for name, job in jobs.items()}
    assert environments["dev"] == "dev"
    assert environments["test-env"] == "test"
    # Both production jobs wait for the environment's required reviewers.
    assert environments["production-canary"] == environments["production-promote"] == "production"


def test_github_builds_each_changed_service_with_its_sbom(github: dict[Any, Any]) -> None:
    jobs = github["jobs"]
    changes = jobs["changes"]
    filters = yaml.safe_load(
        next(s for s in changes["steps"] if s.get("uses", "").startswith("dorny/paths-filter"))[
            "with"
        ]["filters"]
    )
    assert set(filters) == set(SERVICES)
    for service, paths in filters.items():
        assert f"services/{service}/**" in paths
        assert f"charts/{service}/**" in paths
        others = [p for p in paths if any(f"/{o}/" in p for o in SERVICES if o != service)]
        assert not others, f"{service} builds on another service's change: {others}"
    build = jobs["build"]
    assert (
        build["strategy"]["matrix"]["service"] == "${{ fromJSON(needs.changes.outputs.services) }}"
    )
    sbom = [s for s in build["steps"] if s.get("uses", "").startswith("anchore/sbom-action")]
    assert sbom and sbom[0]["with"]["format"] == "cyclonedx-json"


def test_github_signs_in_with_oidc_and_keeps_no_secrets(github: dict[Any, Any]) -> None:
    assert not re.search(r"\$\{\{[^}]*\bsecrets\.", GITHUB.read_text())
    assert github["permissions"] == {"contents": "read"}
    for name, job in github["jobs"].items():
        logins = [s for s in job.get("steps", []) if s.get("uses", "").startswith("azure/login")]
        if logins:
            assert job["permissions"]["id-token"] == "write", name
            assert set(logins[0]["with"]) == {"client-id", "tenant-id", "subscription-id"}
        else:
            assert "id-token" not in job.get("permissions", {}), name


def test_github_runs_the_new_version_beside_the_old_before_promoting(
    github: dict[Any, Any],
) -> None:
    canary = steps_text(github["jobs"]["production-canary"])
    assert "helm upgrade --install drone-delivery-next" in canary
    assert "infra/deploy/next-release.yaml" in canary
    assert "X-Canary: always" in canary
    assert "gateway.canary.enabled=true" in canary
    assert "gateway.canary.weight=10" in canary
    assert "nginx.ingress.kubernetes.io" not in canary  # no controller's annotations
    promote = steps_text(github["jobs"]["production-promote"])
    assert promote.index("helm upgrade drone-delivery ") < promote.index(
        "helm uninstall drone-delivery-next"
    )


# ---------------------------------------------------------------- Azure Pipelines
def test_azure_has_the_same_stages(azure: dict[Any, Any]) -> None:
    stages = {s["stage"]: s for s in azure["stages"]}
    assert list(stages) == ["Checks", "Build", "dev", "test", "production"]
    checks = {j["job"] for j in stages["Checks"]["jobs"]}
    assert checks == {"Lint", "TypeCheck", "Tests", "Infra"}
    assert stages["dev"]["dependsOn"] == ["Build", "Checks"]
    assert stages["test"]["dependsOn"] == ["Build", "dev"]
    assert stages["production"]["dependsOn"] == ["Build", "test"]
    for name in ("dev", "test", "production"):
        deployment = next(j for j in stages[name]["jobs"] if "deployment" in j)
        assert deployment["environment"] == f"drone-delivery-{name}"


def test_azure_builds_each_changed_service_with_its_sbom(azure: dict[Any, Any]) -> None:
    build = next(s for s in azure["stages"] if s["stage"] == "Build")
    changes = next(j for j in build["jobs"] if j.get("job") == "Changes")
    script = changes["steps"][1]["bash"]
    assert "services/$s/|charts/$s/" in script
    image = next(j for j in build["jobs"] if j.get("job") == "Image")
    assert image["strategy"]["matrix"] == "$[ dependencies.Changes.outputs['detect.legs'] ]"
    assert "cyclonedx-json" in text(image["steps"])
    params = {p["name"]: p for p in azure["parameters"]}
    assert params["services"]["default"] == list(SERVICES)


def test_azure_signs_in_through_federated_service_connections(azure: dict[Any, Any]) -> None:
    text = AZURE.read_text()
    for match in re.finditer(r"azureSubscription: (.+)", text):
        assert match.group(1).startswith("${{ parameters.serviceConnections."), match.group(0)
    assert not re.search(r"(?i)\$\((\w*(secret|password|key)\w*)\)", text)


def test_azure_production_is_a_canary_with_promotion_and_rollback(azure: dict[Any, Any]) -> None:
    production = next(s for s in azure["stages"] if s["stage"] == "production")
    canary = production["jobs"][0]["strategy"]["canary"]
    assert canary["increments"] == ["10", "50"]
    deploy = text(canary["deploy"])
    assert "drone-delivery-next" in deploy and "X-Canary: always" in deploy
    assert "gateway.canary.enabled=true" in deploy
    assert "gateway.canary.weight=$(strategy.increment)" in text(canary["routeTraffic"])
    on = canary[True]  # YAML 1.1 reads the key `on` as true
    assert "helm uninstall drone-delivery-next" in text(on["failure"])
    success = text(on["success"])
    assert success.index("helm upgrade drone-delivery ") < success.index(
        "helm uninstall drone-delivery-next"
    )


# ---------------------------------------------------------------- the side-by-side release
def rendered(helm: str, release: str, *values: Path, tmp_path: Path) -> list[dict[str, Any]]:
    from tests.charts.conftest import run_helm

    azure_values = tmp_path / "azure.yaml"
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "azure-values.py"),
         str(ROOT / "tests" / "infra" / "sample-outputs.json"), "-o", str(azure_values),
         "--api-audience", "api://drone-delivery"],  # production requires authentication
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0
    args = ["-f", str(UMBRELLA / "values-prod.yaml"), "-f", str(azure_values)]
    for v in values:
        args += ["-f", str(v)]
    result = run_helm(helm, "template", release, str(UMBRELLA), "-n", "drone-delivery", *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


@pytest.fixture(scope="module")
def helm() -> str:
    from tests.charts.conftest import CHARTS, find_helm, in_ci, run_helm

    found: str | None = find_helm()
    if found is None:
        reason = "helm not found in build/tools/bin or PATH (run scripts/check-charts.sh once)"
        if in_ci():
            pytest.fail(f"required tool missing: {reason}", pytrace=False)
        pytest.skip(reason)
    for chart in (*SERVICES, "drone-delivery"):
        run_helm(found, "dependency", "update", "--skip-refresh", str(CHARTS / chart))
    return found


def test_the_next_release_lives_beside_the_main_one(helm: str, tmp_path: Path) -> None:
    main = rendered(helm, "drone-delivery", tmp_path=tmp_path)
    nxt = rendered(helm, "drone-delivery-next", NEXT_RELEASE, tmp_path=tmp_path)

    def names(docs: list[dict[str, Any]]) -> set[tuple[str, str]]:
        return {(d["kind"], d["metadata"]["name"]) for d in docs}

    assert not names(main) & names(nxt), "the two releases would fight over these objects"
    accounts = {d["metadata"]["name"] for d in nxt if d["kind"] == "ServiceAccount"}
    assert accounts == {f"{s}-next" for s in SERVICES}  # federated in infra/main.bicep
    assert not any(
        d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "default-deny" for d in nxt
    )
    # The Gateway's egress policy (k8s/gateway) admits pods named ingestion and delivery:
    # so are these.
    deployments = {d["metadata"]["name"]: d for d in nxt if d["kind"] == "Deployment"}
    for service in ("ingestion", "delivery"):
        labels = deployments[f"{service}-next"]["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == service
    workflow_env = {
        e["name"]: e.get("value")
        for e in deployments["workflow-next"]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for downstream in ("PACKAGE", "DRONESCHEDULER", "DELIVERY"):
        assert f"{downstream.lower()}-next.drone-delivery.svc" in workflow_env[f"{downstream}_URL"]


def test_the_main_release_s_routes_carry_the_next_release(helm: str, tmp_path: Path) -> None:
    """Side by side on standard Gateway API fields: the next release routes nothing; the
    main release's HTTPRoutes send weighted shares, or the X-Canary header, to its
    Services' public ports."""
    nxt = rendered(helm, "drone-delivery-next", NEXT_RELEASE, tmp_path=tmp_path)
    assert not [d for d in nxt if d["kind"] in ("HTTPRoute", "Gateway", "Ingress")]
    next_services = {
        d["metadata"]["name"]: {p["port"] for p in d["spec"]["ports"]}
        for d in nxt
        if d["kind"] == "Service"
    }
    canary = tmp_path / "canary.yaml"
    canary.write_text(yaml.safe_dump({"gateway": {"canary": {"enabled": True, "weight": 10}}}))
    main = rendered(helm, "drone-delivery", canary, tmp_path=tmp_path)
    routes = [d for d in main if d["kind"] == "HTTPRoute" and d["metadata"]["name"] in
              ("drone-delivery", "drone-delivery-versioned")]  # fmt: skip
    assert len(routes) == 2
    for route in routes:
        for rule in route["spec"]["rules"]:
            backends = rule["backendRefs"]
            headers = {h["value"] for m in rule["matches"] for h in m.get("headers", [])}
            names = {b["name"] for b in backends}
            if not headers:  # everyone: 90 / 10
                assert sorted(b["weight"] for b in backends) == [10, 90]
            elif headers == {"always"}:
                assert all(n.endswith("-next") for n in names)
            else:
                assert headers == {"never"} and not any(n.endswith("-next") for n in names)
            for b in backends:
                if b["name"].endswith("-next"):
                    assert 8081 in next_services[b["name"]], b  # the public port
