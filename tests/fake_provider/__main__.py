"""Run the fake provider in the foreground: ``python -m fake_provider`` from ``tests/`` (Ctrl-C stops it)."""

from __future__ import annotations

import argparse
import contextlib
import threading

from .server import FakeProvider


def main() -> None:
    """Serve until interrupted, printing the base URLs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--chunk-delay-s", type=float, default=0.0, help="delay before each streamed event")
    args = parser.parse_args()
    with FakeProvider(port=args.port, chunk_delay_s=args.chunk_delay_s) as fake:
        print(f"openai base_url:    {fake.openai_base_url}", flush=True)
        print(f"anthropic base_url: {fake.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
