"""``otlp-enricher``: serve, check-config, prices, replay. The only place that calls ``sys.exit``.

Exit codes: 0 success, 1 the work failed (bad input file, unreachable endpoint), 2 bad usage or an
invalid configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence

import grpc
import orjson

from otlp_enricher.config import Config, ConfigError, load_config
from otlp_enricher.model import Tokens
from otlp_enricher.otlp_json import OtlpDecodeError
from otlp_enricher.processor.pricing import PriceBook
from otlp_enricher.telemetry.logging import configure_logging, get_logger


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otlp-enricher", description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the sidecar (embedded default config without --config)")
    serve.add_argument("--config", help="YAML config file")

    check = commands.add_parser("check-config", help="validate a config file and report every problem")
    check.add_argument("config", help="YAML config file")

    prices = commands.add_parser("prices", help="show how a model resolves to a price and what tokens cost")
    prices.add_argument("model")
    prices.add_argument("--provider", default="", help="OTel provider name, e.g. openai, anthropic, aws.bedrock")
    prices.add_argument("--config", help="YAML config file (for aliases, overrides, discounts)")
    for kind in ("input", "output", "cache-read", "cache-write", "cache-write-1h", "reasoning"):
        prices.add_argument(f"--{kind}", type=int, default=0, metavar="TOKENS")

    replay = commands.add_parser("replay", help="replay recorded OTLP files (Collector file exporter format)")
    replay.add_argument("files", nargs="*", metavar="FILE")
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="HOST:PORT", help="send to an OTLP/gRPC endpoint")
    target.add_argument(
        "--report",
        nargs="?",
        const="table",
        metavar="table|json",
        help="run in-process and print a per-model report (a table unless 'json')",
    )
    replay.add_argument("--config", help="YAML config file (pricing, SLOs) for --report")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otlp-enricher`` command."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "replay" and args.report not in (None, "table", "json"):
        args.files.insert(0, args.report)  # "--report FILE": the flag took the file as its value
        args.report = "table"
    if args.command == "replay" and not args.files:
        parser.error("replay: give at least one recorded OTLP file")
    try:
        if args.command == "check-config":
            config = load_config(args.config)
            for warning in config.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            print(f"{args.config}: ok ({_summary(config)})")
            return 0
        config = load_config(getattr(args, "config", None))
    except ConfigError as error:
        print(str(error), file=sys.stderr)
        return 2
    configure_logging(config.service.logs.level, config.service.logs.encoding)
    if args.command == "serve":
        return _serve(config)
    if args.command == "prices":
        return _prices(config, args)
    return _replay(config, args)


def _summary(config: Config) -> str:
    receivers = [name for name in ("grpc", "http") if getattr(config.receivers, name) is not None]
    exporters = ["prometheus"] + [name for name in ("loki", "tempo") if getattr(config.exporters, name) is not None]
    return f"receivers {', '.join(receivers)}; exporters {', '.join(exporters)}; {len(config.genai.slos)} SLO(s)"


def _serve(config: Config) -> int:
    import prometheus_client

    from otlp_enricher.service import Service

    # One *_created series per counter and histogram doubles the series count for nothing
    # dashboards use; the process-wide switch is flipped here, in the process entry point.
    disable_created: Callable[[], None] = prometheus_client.disable_created_metrics
    disable_created()

    log = get_logger("cli")

    async def run() -> None:
        service = Service(config)
        loop = asyncio.get_running_loop()
        stopping: list[asyncio.Task[None]] = []

        def stop(signum: signal.Signals) -> None:
            log.info("signal_received", signal=signum.name)
            stopping.append(loop.create_task(service.shutdown()))

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        await service.start()
        await service.wait_stopped()

    try:
        asyncio.run(run())
    except OSError as error:
        log.error("start_failed", error=str(error), hint="is another process using the port?")
        return 1
    return 0


def _prices(config: Config, args: argparse.Namespace) -> int:
    book = PriceBook(config.genai.pricing)
    card = book.card(args.provider, args.model)
    if card is None:
        print(f"{args.model}: unpriced (no price in genai-prices or processors.genai.pricing)")
        return 1
    tokens = Tokens(
        input=args.input,
        output=args.output,
        cache_read=args.cache_read,
        cache_write_5m=args.cache_write,
        cache_write_1h=args.cache_write_1h,
        reasoning=args.reasoning,
    )
    rates = card.rates_for(tokens.input)
    print(f"{args.model} → {card.provider_id}/{card.model_id} ({card.source})")
    for name in ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning"):
        print(f"  {name:<15} ${getattr(rates, name) * 1e6:.4f} / MTok")
    for start in card.tier_starts:
        print(f"  long-context tier above {start} input tokens")
    if tokens.total:
        print(f"  cost of the given tokens: ${card.cost(tokens):.6f}")
    return 0


def _replay(config: Config, args: argparse.Namespace) -> int:
    from otlp_enricher.replay import replay_report, replay_to

    try:
        if args.to:
            spans = replay_to(args.to, args.files)
            print(f"sent {spans} spans to {args.to}")
            return 0
        report = replay_report(config, args.files)
    except (OtlpDecodeError, OSError) as error:
        print(f"replay failed: {error}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print(f"replay failed: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    if args.report == "json":
        print(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print(report.as_table())
    return 0
