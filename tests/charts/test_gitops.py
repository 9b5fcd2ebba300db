"""The GitOps objects in gitops/ deploy what the imperative steps did.

scripts/check-charts.sh validates them against the Argo CD and Flux models' schemas; here:
the fields that matter (chart path, value files, release name, namespace), and a render of
the chart with exactly the value files each object lists, in its order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.charts.conftest import NAMESPACE, RELEASE, ROOT, UMBRELLA, load_yaml_docs, run_helm

GITOPS = ROOT / "gitops"
ENVIRONMENTS = {"dev": "values-dev.yaml", "prod": "values-prod.yaml"}


def objects(kind: str) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(GITOPS.rglob("*.yaml")):
        for doc in load_yaml_docs(path):
            if doc.get("kind") == kind:
                found[f"{path.parent.name}/{path.stem}/{doc['metadata']['name']}"] = doc
    return found


def argo_apps() -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"].removeprefix("drone-delivery-"): doc
        for doc in objects("Application").values()
    }


def flux_releases() -> dict[str, dict[str, Any]]:
    return {
        key.split("/")[1]: doc
        for key, doc in objects("HelmRelease").items()
        if key.startswith("flux/")
    }


def render_with(helm: str, files: list[Path]) -> list[dict[str, Any]]:
    args = ["template", RELEASE, str(UMBRELLA), "-n", NAMESPACE]
    for f in files:
        assert f.is_file(), f"{f} is listed but does not exist"
        args += ["-f", str(f)]
    done = run_helm(helm, *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_one_of_each_per_environment() -> None:
    assert set(argo_apps()) == set(ENVIRONMENTS)
    assert set(flux_releases()) == set(ENVIRONMENTS)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_argo_application_renders_the_umbrella(helm: str, environment: str) -> None:
    app = argo_apps()[environment]
    source = app["spec"]["source"]
    assert source["path"] == "charts/drone-delivery"
    assert source["helm"]["releaseName"] == RELEASE
    assert app["spec"]["destination"]["namespace"] == NAMESPACE
    assert app["spec"]["project"] in {d["metadata"]["name"] for d in objects("AppProject").values()}
    files = source["helm"]["valueFiles"]
    assert files[0] == ENVIRONMENTS[environment]
    manifests = render_with(helm, [(UMBRELLA / f).resolve() for f in files])
    assert {m["metadata"]["name"] for m in manifests if m["kind"] == "Deployment"} >= {
        "ingestion",
        "workflow",
        "package",
        "dronescheduler",
        "delivery",
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_flux_release_renders_the_umbrella(helm: str, environment: str) -> None:
    release = flux_releases()[environment]
    spec = release["spec"]
    chart = spec["chart"]["spec"]
    assert chart["chart"] == "./charts/drone-delivery"
    assert (
        chart["reconcileStrategy"] == "Revision"
    )  # the chart's version stays 0.1.0 between commits
    assert spec["releaseName"] == RELEASE
    assert release["metadata"]["namespace"] == NAMESPACE
    sources = {d["metadata"]["name"]: d for d in objects("GitRepository").values()}
    assert chart["sourceRef"]["kind"] == "GitRepository"
    assert chart["sourceRef"]["name"] in sources
    # Flux's valuesFiles replace the chart's values.yaml unless it comes first.
    files = chart["valuesFiles"]
    assert files[:2] == [
        "charts/drone-delivery/values.yaml",
        f"charts/drone-delivery/{ENVIRONMENTS[environment]}",
    ]
    assert spec["test"]["enable"] is True
    render_with(helm, [ROOT / f for f in files])


def test_argo_and_flux_deploy_the_same_values() -> None:
    for environment in ENVIRONMENTS:
        argo = [
            (UMBRELLA / f).resolve()
            for f in argo_apps()[environment]["spec"]["source"]["helm"]["valueFiles"]
        ]
        flux = [
            ROOT / f for f in flux_releases()[environment]["spec"]["chart"]["spec"]["valuesFiles"]
        ]
        assert [UMBRELLA / "values.yaml", *argo] == flux, environment


def test_production_follows_a_release_tag_and_dev_follows_main() -> None:
    assert argo_apps()["dev"]["spec"]["source"]["targetRevision"] == "main"
    assert argo_apps()["prod"]["spec"]["source"]["targetRevision"].startswith("v")
    sources = {d["metadata"]["name"]: d for d in objects("GitRepository").values()}

    def ref(environment: str) -> dict[str, str]:
        chart = flux_releases()[environment]["spec"]["chart"]["spec"]
        return dict(sources[chart["sourceRef"]["name"]]["spec"]["ref"])

    assert ref("dev") == {"branch": "main"}
    assert ref("prod")["tag"] == argo_apps()["prod"]["spec"]["source"]["targetRevision"]
