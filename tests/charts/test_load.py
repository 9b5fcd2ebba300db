"""The chart's optional load generator: off unless asked, hardened like every pod, reaching
only the entry point, with users, rate and duration from values, and its report kept."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.charts.conftest import RELEASE, UMBRELLA, Manifest, by_name, of_kind, run_helm
from tests.charts.test_policies import (
    env_of,
    test_every_pod_has_its_own_policy,
    test_every_pod_runs_hardened,
)

LOAD = f"{RELEASE}-load"
ON = ("load.enabled=true",)


def test_off_by_default(manifests: tuple[Manifest, ...]) -> None:
    assert LOAD not in by_name(manifests, "Deployment")
    assert LOAD not in by_name(manifests, "Service")


def test_on_it_is_hardened_and_has_its_own_policy(
    render: Callable[..., tuple[Manifest, ...]], environment: str
) -> None:
    manifests = render(environment, *ON)
    assert LOAD in by_name(manifests, "Deployment")
    test_every_pod_runs_hardened(manifests)
    test_every_pod_has_its_own_policy(manifests)


def test_it_reaches_only_dns_and_the_entry_point(
    render: Callable[..., tuple[Manifest, ...]], environment: str
) -> None:
    policy = by_name(render(environment, *ON), "NetworkPolicy")[LOAD]["spec"]
    assert policy["ingress"] == []  # the web UI is reached by port-forward only
    smoke = by_name(render(environment), "NetworkPolicy")[f"{RELEASE}-smoke-test"]["spec"]
    assert policy["egress"] == smoke["egress"]


def test_values_reach_locust(render: Callable[..., tuple[Manifest, ...]]) -> None:
    sets = (
        *ON,
        "load.users=7",
        "load.spawnRate=2",
        "load.rate=0.5",
        "load.duration=90s",
        "load.userClasses={OriginalScenario,RealisticMix}",
    )
    deployment = by_name(render("dev", *sets), "Deployment")[LOAD]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["LOCUST_USERS"] == "7"
    assert env["LOCUST_SPAWN_RATE"] == "2"
    assert env["RATE"] == "0.5"
    assert env["LOCUST_RUN_TIME"] == "90s"
    assert env["LOCUST_USER_CLASSES"] == "OriginalScenario RealisticMix"
    assert env["LOCUST_AUTOSTART"] == "true"
    assert env["LOCUST_HOST"].startswith("https://")
    assert env["LOAD_HOST_HEADER"] == "localhost"  # values-dev.yaml's entryPoint.host
    assert container["ports"] == [{"name": "web", "containerPort": 8089, "protocol": "TCP"}]
    (service,) = [
        s for s in of_kind(render("dev", *sets), "Service") if s["metadata"]["name"] == LOAD
    ]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["port"] == 8089


def test_report_on_an_empty_dir_or_a_claim(render: Callable[..., tuple[Manifest, ...]]) -> None:
    def reports(*sets: str) -> dict[str, object]:
        spec = by_name(render("dev", *ON, *sets), "Deployment")[LOAD]["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert {"name": "reports", "mountPath": "/reports"} in container["volumeMounts"]
        assert env_of(container)["LOAD_REPORT_DIR"] == "/reports"
        return next(v for v in spec["volumes"] if v["name"] == "reports")

    assert "emptyDir" in reports()
    claim = reports("load.report.persistentVolumeClaim=load-reports")
    assert claim["persistentVolumeClaim"] == {"claimName": "load-reports"}


@pytest.mark.parametrize(
    "bad",
    [
        "load.users=0",
        "load.duration=ten",
        "load.userClasses={Nobody}",
        "load.rate=0",
        "load.usrs=3",
    ],
)
def test_bad_load_values_are_refused(helm: str, bad: str) -> None:
    done = run_helm(
        helm,
        "template",
        "t",
        str(UMBRELLA),
        "-f",
        str(UMBRELLA / "values-dev.yaml"),
        "--set",
        "load.enabled=true",
        "--set",
        bad,
    )
    assert done.returncode != 0, f"accepted: --set {bad}"
