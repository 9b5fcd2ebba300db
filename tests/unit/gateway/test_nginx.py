"""The committed NGINX gateway config is the one the route table generates, and it routes
exactly what the table routes (checked by reading its locations back, as NGINX would)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from contracts.routes import ROUTES, VERSION_PREFIX, path_is_public, route_for
from gateway import nginx
from tests import servers

COMMITTED = Path(__file__).resolve().parents[3] / "docker" / "nginx" / "default.conf"
# Debian installs it in /usr/sbin, which a non-login PATH may lack.
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class Location:
    regex: re.Pattern[str]
    allowed: re.Pattern[str]
    upstream: str


def _locations(config: str) -> list[Location]:
    """The regex locations, in order (NGINX tries them in order; the first match wins)."""
    found = re.findall(
        r'location ~ "([^"]+)" \{\s*if \(\$request_method !~ "([^"]+)"\).*?'
        r"set \$gw_upstream (\S+);",
        config,
        flags=re.DOTALL,
    )
    # PCRE's (?<name>...) is Python's (?P<name>...).
    return [
        Location(re.compile(regex.replace("(?<", "(?P<")), re.compile(allowed), upstream)
        for regex, allowed, upstream in found
    ]


def _nginx_answer(locations: list[Location], method: str, path: str) -> tuple[int, str]:
    """What the generated config does with a request: (status, upstream:path) or an error."""
    for location in locations:
        match = location.regex.search(path)
        if match:
            if not location.allowed.search(method):
                return 405, ""
            return 200, f"{location.upstream}{match.group('gw_path')}"
    return 404, ""


SAMPLE_PATHS = [
    "/",
    "/healthz",
    "/health/ready",
    "/api/deliveryrequests",
    "/api/deliveryrequests/",
    "/api/deliveryrequests/abc-123",
    "/api/deliveryrequests/abc/def",
    "/api/deliveries/d-1",
    "/api/deliveries/summary",
    "/api/deliveries/summaryx",
    "/api/deliveries/d-1/status",
    "/api/deliveries/d-1/notifymerequests",
    "/api/deliveries/d-1/confirmations",
    "/api/deliveries/d-1/failure",
    "/api/deliveries/" + "x" * 128,
    "/api/deliveries/" + "x" * 129,
    "/api/deliveries/a%20b",
    "/api/packages/mypackage",
    "/api/dronedeliveries/d-1",
    "/api/drones",
    "/api/workflow/progress",
    "/api/packages/summary/myowner",
    "/v0.2.0/api/deliveries/d-1",
    "/v0.1.0",
    "/v0.1.0/",
]


def test_committed_config_is_the_generated_one() -> None:
    assert COMMITTED.read_text() == nginx.render(), (
        "docker/nginx/default.conf is out of date: "
        "run `cd services && python -m gateway.nginx > ../docker/nginx/default.conf`"
    )


def test_every_route_and_method_is_in_the_config() -> None:
    config = COMMITTED.read_text()
    for route in ROUTES:
        regex = nginx.location_regex(route.pattern)
        assert f'location ~ "{regex}"' in config, route
        block = config[config.index(regex) :].split("\n    }\n", 1)[0]
        for method in route.methods:
            assert re.search(rf"\(\?:[A-Z|]*\b{method}\b[A-Z|]*\)", block), (method, route)
        assert f"set $gw_upstream {route.service}:{nginx.UPSTREAM_PORT};" in block


@pytest.mark.parametrize("prefix", ["", VERSION_PREFIX])
@pytest.mark.parametrize("path", SAMPLE_PATHS)
def test_config_routes_what_the_table_routes(prefix: str, path: str) -> None:
    locations = _locations(COMMITTED.read_text())
    assert len(locations) == len({r.pattern for r in ROUTES})
    full = prefix + path
    for method in METHODS:
        status, target = _nginx_answer(locations, method, full)
        route = route_for(method, full)
        if route is not None:
            expected = f"{route.service}:{nginx.UPSTREAM_PORT}{path if prefix else full}"
            assert (status, target) == (200, expected), (method, full)
        elif path_is_public(full):
            assert status == 405, (method, full)
        else:
            assert status == 404, (method, full)


def _allow_map(config: str) -> list[tuple[re.Pattern[str], str]]:
    body = config[config.index("map $uri $gw_allow {") :].split("\n}\n", 1)[0]
    return [
        (re.compile(regex), allow) for regex, allow in re.findall(r'"~([^"]+)" "([^"]*)";', body)
    ]


@pytest.mark.parametrize("prefix", ["", VERSION_PREFIX])
@pytest.mark.parametrize("path", SAMPLE_PATHS)
def test_allow_header_names_the_methods_of_the_path(prefix: str, path: str) -> None:
    entries = _allow_map(COMMITTED.read_text())
    assert len(entries) == len({r.pattern for r in ROUTES})
    full = prefix + path
    allow = next((a for regex, a in entries if regex.search(full)), "")
    expected = sorted(m for m in METHODS if route_for(m, full) is not None)
    assert sorted(allow.split(", ") if allow else []) == expected, full
    assert bool(allow) == path_is_public(full), full


def test_internal_and_unknown_paths_fall_through_to_a_404() -> None:
    config = COMMITTED.read_text()
    assert "location / {\n        return 404 " in config
    assert config.count("proxy_pass http://") == len({r.pattern for r in ROUTES})


def test_values_nginx_would_rewrite_are_refused() -> None:
    with pytest.raises(ValueError):
        nginx._quote(r"/api/\t")
    with pytest.raises(ValueError):
        nginx._quote('/api/"')


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    if NGINX is None:
        servers.skip_unless_ci("no nginx binary here (apt install nginx-light)")
    # The file is a conf.d include: wrap it in a minimal main configuration.
    (tmp_path / "logs").mkdir()
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{ access_log off; include {COMMITTED}; }}\n"
    )
    result = subprocess.run(
        [str(NGINX), "-t", "-q", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
