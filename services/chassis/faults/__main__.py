"""Switch a running service's injected faults through its internal port.

    python -m chassis.faults set SERVICE error_rate=0.3 latency_ms=200 routes=^/api/
    python -m chassis.faults show SERVICE
    python -m chassis.faults clear SERVICE

The service answers at --url, else FAULTS_URL, else <SERVICE>_URL (the variable its callers
use, e.g. DELIVERY_URL), else 127.0.0.1 at FAULTS_PORT (default 8080). It must run with
FAULT_SWITCHES=true. When it checks tokens (AUTH_ENABLED), FAULTS_TOKEN holds a bearer
token with the admin role.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

import httpx

from chassis.faults import PATH

# The command's names for the switches, and the route's.
FIELDS = {"error_rate": "errorRate", "latency_ms": "latencyMs", "routes": "routes"}


def service_url(service: str, url: str | None) -> str:
    variable = re.sub(r"\W", "_", service).upper() + "_URL"
    found = url or os.environ.get("FAULTS_URL") or os.environ.get(variable)
    if found:
        return found.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('FAULTS_PORT', '8080')}"


def parse_switches(pairs: list[str]) -> dict[str, str | float | int]:
    body: dict[str, str | float | int] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in FIELDS:
            raise SystemExit(f"expected NAME=VALUE with NAME one of {', '.join(FIELDS)}: {pair!r}")
        try:
            body[FIELDS[name]] = {"error_rate": float, "latency_ms": int}.get(name, str)(value)
        except ValueError as e:
            raise SystemExit(f"{name}: {e}") from e
    if not body:
        raise SystemExit("set what? e.g. error_rate=0.3 latency_ms=200")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chassis.faults", description=__doc__)
    parser.add_argument("action", choices=("show", "set", "clear"))
    parser.add_argument("service", help="the service's name, as its callers' *_URL names it")
    parser.add_argument("switches", nargs="*", help="for set: error_rate=R latency_ms=N routes=RE")
    parser.add_argument("--url", help="the service's internal address (default: see above)")
    args = parser.parse_args(argv)
    url = service_url(args.service, args.url) + PATH
    token = os.environ.get("FAULTS_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if args.action == "set":
        request = httpx.Request("PUT", url, json=parse_switches(args.switches), headers=headers)
    else:
        request = httpx.Request("GET" if args.action == "show" else "DELETE", url, headers=headers)
    try:
        with httpx.Client(timeout=10.0) as client:
            response = client.send(request)
    except httpx.HTTPError as e:
        print(f"{args.service} at {url}: {e}", file=sys.stderr)
        return 2
    if response.status_code == 404:
        print(f"{url}: not found (is FAULT_SWITCHES=true, and is this the internal port?)")
        return 1
    if response.status_code != 200:
        print(f"{url}: {response.status_code} {response.text}", file=sys.stderr)
        return 1
    print(json.dumps({"service": args.service, **response.json()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
