"""Settings given to a process are the ones its code uses (the original's breaker setting
never reached its code because of a misspelt variable)."""

from __future__ import annotations

from tests.e2e.conftest import System


def test_breaker_and_bulkhead_settings_reach_workflows_clients(system: System) -> None:
    stack = system.need_stack()
    stack.stop("workflow")
    stack.extra_env["workflow"] = {
        **stack.extra_env.get("workflow", {}),
        "BREAKER_FAILURE_THRESHOLD": "7",
        "BREAKER_RECOVERY_SECONDS": "12.5",
        "BULKHEAD_MAX_CONCURRENT": "9",
        "BULKHEAD_MAX_WAIT_SECONDS": "3",
        "QUEUE_HOLD_SECONDS": "45",
    }
    try:
        stack.start("workflow")
        stack.wait_ready("workflow")
        with system.internal("workflow") as workflow:
            progress = workflow.get("/api/workflow/progress").json()
        assert progress["holdSeconds"] == 45.0
        downstreams = progress["downstreams"]
        assert set(downstreams) == {"package", "dronescheduler", "delivery"}
        for resilience in downstreams.values():
            assert resilience == {
                "breaker_threshold": 7,
                "breaker_recovery_seconds": 12.5,
                "bulkhead_max_concurrent": 9,
                "bulkhead_max_wait_seconds": 3.0,
            }
    finally:
        stack.stop("workflow")
        for name in (
            "BREAKER_FAILURE_THRESHOLD",
            "BREAKER_RECOVERY_SECONDS",
            "BULKHEAD_MAX_CONCURRENT",
            "BULKHEAD_MAX_WAIT_SECONDS",
            "QUEUE_HOLD_SECONDS",
        ):
            stack.extra_env["workflow"].pop(name, None)
        stack.start("workflow")
        stack.wait_ready("workflow")
