"""The launcher's replicas, as the chaos test relies on them: names, ports, who calls whom
(launcher/stack.py; no process is started here)."""

from __future__ import annotations

from pathlib import Path

from launcher.stack import Footing, Stack, parse_replica


def _stack(tmp_path: Path, **replicas: int) -> Stack:
    return Stack(
        Footing.embedded(tmp_path),
        gateway_port=20_000,
        base_port=20_000,
        replicas=replicas,
        extra_env={"workflow": {"X": "all"}, "workflow-1": {"X": "one"}},
    )


def test_one_replica_each_is_the_stack_as_it_was(tmp_path: Path) -> None:
    stack = _stack(tmp_path)
    assert stack.names() == [
        "package",
        "dronescheduler",
        "delivery",
        "ingestion",
        "workflow",
        "gateway",
    ]
    assert stack.env("workflow")["DRONESCHEDULER_URL"] == "http://127.0.0.1:20004"
    assert stack.env("workflow")["PORT"] == "20002"


def test_each_replica_has_its_port_and_workflow_i_calls_scheduler_i_mod_n(
    tmp_path: Path,
) -> None:
    stack = _stack(tmp_path, workflow=3, dronescheduler=2)
    assert stack.replica_names("workflow") == ["workflow", "workflow-1", "workflow-2"]
    assert [stack.port(n) for n in stack.replica_names("dronescheduler")] == [20_004, 20_014]
    called = [stack.env(n)["DRONESCHEDULER_URL"] for n in stack.replica_names("workflow")]
    assert called == ["http://127.0.0.1:20004", "http://127.0.0.1:20014", "http://127.0.0.1:20004"]
    # Settings by service reach every replica; by replica name, that one only.
    assert [stack.env(n)["X"] for n in stack.replica_names("workflow")] == ["all", "one", "all"]
    assert parse_replica("workflow-2") == ("workflow", 2)
    assert parse_replica("gateway") == ("gateway", 0)
