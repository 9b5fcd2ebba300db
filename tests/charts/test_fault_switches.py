"""Run-time fault switches (chassis/faults) in the charts: on in dev, off in prod unless
asked for a service, and only a boolean."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.charts.conftest import SERVICES, UMBRELLA, Manifest, run_helm
from tests.charts.test_policies import deployments, env_of

Render = Callable[..., tuple[Manifest, ...]]


def switched(manifests: tuple[Manifest, ...]) -> set[str]:
    """The services whose pods serve /internal/faults."""
    on = set()
    for name, d in deployments(manifests).items():
        (c,) = d["spec"]["template"]["spec"]["containers"]
        if env_of(c).get("FAULT_SWITCHES") == "true":
            on.add(name)
    return on


def test_dev_switches_faults_on_every_service_and_prod_on_none(render: Render) -> None:
    assert switched(render("dev")) == set(SERVICES)
    assert switched(render("prod")) == set()


def test_prod_switches_a_service_only_when_asked(render: Render) -> None:
    assert switched(render("prod", "package.faultSwitches=true")) == {"package"}
    assert switched(render("prod", "global.faultSwitches=true")) == set(SERVICES)


@pytest.mark.parametrize("value", ["package.faultSwitches=yes", "global.faultSwitches=1"])
def test_the_switch_is_a_boolean(helm: str, value: str) -> None:
    done = run_helm(
        helm,
        "template",
        "r",
        str(UMBRELLA),
        "-f",
        str(UMBRELLA / "values-dev.yaml"),
        "--set-string",
        value,
    )
    assert done.returncode != 0 and "faultSwitches" in done.stderr, done.stderr
