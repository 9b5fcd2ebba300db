"""The operations console and the tracking page in a real browser: Debian's Chromium, driven
by Playwright, on the running system through its entry point (docs/console.md).

The pages must show the fleet and the deliveries, take a new delivery in and move its drone
without a reload, say why a delivery failed; with authentication on, ask for a token and
show only what it may see. Each run saves fresh screenshots under results/screenshots/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from launcher.stack import Stack
from tests.e2e.conftest import GUIDE_REQUEST, System, _footing, _free_base_port, eventually
from tests.e2e.original_clients import stage_becomes
from tests.identity import ADMIN, WRITER, IdentityProvider

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("RESULTS", "results")) / "screenshots"
FLEET_SIZE = 20
# As the machine's own probe runs it: headless, and nothing that calls out to the internet.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 1000}


def chromium() -> Path:
    """Debian's Chromium, installed here under CI (as root) when missing."""
    if not CHROMIUM.exists():
        if not os.environ.get("CI") or shutil.which("apt-get") is None:
            pytest.skip("needs Debian's chromium: apt-get install -y chromium")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        lock = ["-o", "DPkg::Lock::Timeout=300"]
        subprocess.run(["apt-get", *lock, "update", "-qq"], env=env, check=True)
        subprocess.run(["apt-get", *lock, "install", "-y", "-qq", "chromium"], env=env, check=True)
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(chromium()), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, f"the page's scripts failed: {errors}"


def request_body(owner: str, n: int, **changes: Any) -> dict[str, Any]:
    body = {
        **GUIDE_REQUEST,
        "ownerId": owner,
        "pickupLocation": f"console pickup {owner} {n}",
        "dropOffLocation": f"console drop-off {owner} {n}",
        **changes,
    }
    body["packageInfo"] = {**GUIDE_REQUEST["packageInfo"], "packageId": f"console-{owner}-{n}"}
    return body


def post_delivery(client: httpx.Client, body: dict[str, Any]) -> str:
    r = client.post("/api/deliveryrequests", json=body)
    assert r.status_code == 202, r.text
    delivery_id: str = r.json()["deliveryId"]
    return delivery_id


# Conditions to wait for are passed as functions: the pages' Content Security Policy forbids
# evaluating strings, which is how Playwright would poll a bare expression.


def mark_page(page: Any) -> None:
    """A value in the page's own memory: still there later means the page never reloaded."""
    page.evaluate("window.__sameLoad = true")


def same_page(page: Any) -> bool:
    return bool(page.evaluate("window.__sameLoad === true"))


def drone_xy(page: Any, drone: str) -> tuple[float, float]:
    node = page.locator(f'#map [data-drone="{drone}"]')
    return float(node.get_attribute("data-x")), float(node.get_attribute("data-y"))


def screenshot(page: Any, name: str, height: int) -> Path:
    """The page at the width the tests use, cut to `height` (what the page fills)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)
    return path


def test_the_console_shows_the_fleet_and_a_new_delivery_moving_without_a_reload(
    system: System, page: Any
) -> None:
    owner = "console-owner"
    with system.client() as client:
        for n in range(3):  # something in flight before the page opens
            post_delivery(client, request_body(owner, n))
        page.goto(f"{system.base_url}/console")
        page.wait_for_function(
            f"() => document.querySelectorAll('#map [data-drone]').length === {FLEET_SIZE}"
        )
        assert page.locator("#timeline text.row-label").count() == FLEET_SIZE
        page.wait_for_selector("#cards [data-metric='queue depth']")
        page.wait_for_selector("#deliveries tr[data-delivery]")
        mark_page(page)

        delivery_id = post_delivery(client, request_body(owner, 3))
        row = page.locator(f'#deliveries tr[data-delivery="{delivery_id}"]')
        row.wait_for(timeout=30_000)  # polled in, not reloaded
        assert same_page(page)
        stage_becomes(client, delivery_id, "HeadedToPickup")
        drone = client.get(f"/api/deliveries/{delivery_id}").json()["droneId"]

    page.wait_for_selector(f'#map [data-drone="{drone}"].flying', timeout=30_000)
    start = drone_xy(page, drone)
    eventually(lambda: drone_xy(page, drone) != start, within=30.0, what=f"{drone} moves")
    assert same_page(page)
    # The owner filter asks the delivery service for that owner's deliveries only.
    page.fill("#owner", "nobody-has-this-owner")
    page.dispatch_event("#owner", "change")
    page.wait_for_function("() => document.querySelectorAll('#deliveries tr').length === 0")
    page.fill("#owner", owner)
    page.dispatch_event("#owner", "change")
    row.wait_for(timeout=30_000)
    page.select_option("#stage", "HeadedToPickup")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#deliveries .stage')]"
        ".every(s => s.textContent === 'HeadedToPickup')"
    )
    page.select_option("#stage", "")
    page.fill("#owner", "")
    page.dispatch_event("#owner", "change")
    page.wait_for_timeout(3500)  # let the clock-driven parts of the page settle for the picture
    screenshot(page, "console.png", 960)


def test_the_tracking_page_follows_the_drone_and_says_why_a_delivery_failed(
    system: System, page: Any
) -> None:
    with system.client() as client:
        delivery_id = post_delivery(client, request_body("tracked-owner", 0))
        stage_becomes(client, delivery_id, "HeadedToPickup")
        failed = post_delivery(
            client, request_body("tracked-owner", 1, pickupTime="9999-12-31T00:00:00.000Z")
        )
        stage_becomes(client, failed, "Failed")

    page.goto(f"{system.base_url}/track/{delivery_id}")
    dot = page.locator("#drone-dot")
    dot.wait_for()
    assert page.locator("#stage").text_content() == "Flying to pickup"
    assert "in " in (page.locator("#dropoff-in").text_content() or "")
    mark_page(page)
    start = dot.get_attribute("data-latitude"), dot.get_attribute("data-longitude")
    eventually(
        lambda: (dot.get_attribute("data-latitude"), dot.get_attribute("data-longitude")) != start,
        within=30.0,
        what="the drone moves on the tracking page",
    )
    page.wait_for_timeout(2500)  # at least one more read, still the same page
    assert same_page(page)
    screenshot(page, "track.png", 780)

    page.goto(f"{system.base_url}/track/{failed}")
    banner = page.locator("#banner.Failed")
    banner.wait_for()
    assert "pickupTime" in (banner.text_content() or "")
    screenshot(page, "track-failed.png", 780)


@contextlib.contextmanager
def own_system(tmp: Path, env: dict[str, str]) -> Iterator[Stack]:
    """A system of its own, on the suite's footing: an idle fleet, so that a new delivery's
    drone leaves at once (the suite's shared system may have every drone booked for hours)."""
    footing, cleanup = _footing(tmp)
    base = _free_base_port()
    services = ("ingestion", "workflow", "package", "dronescheduler", "delivery")
    stack = Stack(
        footing,
        gateway_port=base,
        base_port=base,
        log_dir=tmp / "logs",
        extra_env={s: env for s in services},
    )
    stack.up(within=90)
    try:
        yield stack
    finally:
        stack.down(grace=20)
        cleanup()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    if os.environ.get("E2E_BASE_URL"):
        pytest.skip("starts a system of its own")
    with own_system(tmp_path_factory.mktemp("console"), {}) as stack:
        yield System(stack.url("gateway"), stack)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, IdentityProvider]]:
    """With authentication on, tokens from a loopback identity provider."""
    if os.environ.get("E2E_BASE_URL"):
        pytest.skip("starts a system of its own")
    with (
        IdentityProvider() as idp,
        own_system(tmp_path_factory.mktemp("console-auth"), idp.settings()) as stack,
    ):
        yield stack.url("gateway"), idp


def test_with_authentication_on_the_console_takes_an_admin_token_and_the_page_the_owner_s(
    secured: tuple[str, IdentityProvider], page: Any
) -> None:
    base_url, idp = secured
    owner = "secured-owner"
    with httpx.Client(base_url=base_url, timeout=10, headers=idp.bearer(owner, scopes=WRITER)) as c:
        delivery_id = post_delivery(c, request_body(owner, 0))
        stage_becomes(c, delivery_id, "HeadedToPickup")
        for path in ("fleet", "pipeline", "deliveries"):  # the owner is not an operator
            assert c.get(f"/api/console/{path}").status_code == 403, path
    with httpx.Client(base_url=base_url, timeout=10) as anonymous:
        for path in ("fleet", "pipeline", "deliveries"):
            assert anonymous.get(f"/api/console/{path}").status_code == 401, path

    page.goto(f"{base_url}/console")
    page.locator("#signin.shown").wait_for()
    assert page.locator("#map [data-drone]").count() == 0
    page.fill("#signin input", idp.token("operator", roles=[ADMIN]))
    page.click("#signin button")
    page.wait_for_function(
        f"() => document.querySelectorAll('#map [data-drone]').length === {FLEET_SIZE}"
    )
    page.locator(f'#deliveries tr[data-delivery="{delivery_id}"]').wait_for()
    page.locator("#signin.shown").wait_for(state="hidden")

    # The same tab keeps the operator's token: an admin sees the owner's delivery too. A
    # fresh tab with another owner's token does not; the owner's own does.
    page.goto(f"{base_url}/track/{delivery_id}")
    page.locator("#drone-dot").wait_for()
    page.click("#forget")
    page.locator("#signin.shown").wait_for()
    page.fill("#signin input", idp.token("someone-else", scopes=WRITER))
    page.click("#signin button")
    page.locator("#banner.Failed", has_text="No delivery").wait_for()
    page.click("#forget")
    page.fill("#signin input", idp.token(owner, scopes=WRITER))
    page.click("#signin button")
    page.wait_for_function(
        "() => document.querySelector('#stage').textContent === 'Flying to pickup'"
    )
