"""`make run`: the whole system on this machine, one entry point, Ctrl-C to stop.

python -m launcher [--port 8080] [--data-dir data] [--footing embedded|servers]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from launcher.stack import SERVICES, Footing, Stack


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher", description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", 8080)))
    parser.add_argument(
        "--base-port",
        type=int,
        default=int(os.environ.get("SERVICES_BASE_PORT", 8180)),
        help="services listen on BASE+1..BASE+5 (default 8181-8185)",
    )
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "data")))
    parser.add_argument(
        "--footing", choices=("embedded", "servers"), default=os.environ.get("FOOTING", "embedded")
    )
    args = parser.parse_args()

    if args.footing == "embedded":
        footing = Footing.embedded(args.data_dir)
    else:
        footing = Footing.servers(
            postgres=os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432"),
            redis=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            amqp=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
        )
    stack = Stack(footing, gateway_port=args.port, base_port=args.base_port)

    stopping = False

    def stop(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    try:
        stack.up()
    except (RuntimeError, TimeoutError) as e:
        print(f"could not start the system: {e}", file=sys.stderr)
        return 1
    print(
        f"\nDrone delivery is up ({footing.name} footing) in {time.monotonic() - started:.1f} s: "
        f"http://127.0.0.1:{args.port}  (Ctrl-C stops it)\n",
        flush=True,
    )
    code = 0
    while not stopping:
        for service in SERVICES:
            process = stack.processes[service]
            if process.poll() is not None:
                print(
                    f"{service} exited with {process.returncode}; stopping everything",
                    file=sys.stderr,
                )
                stopping, code = True, 1
        time.sleep(0.2)
    print("stopping...", flush=True)
    stack.down()
    return code


if __name__ == "__main__":
    sys.exit(main())
