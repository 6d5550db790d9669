"""``otlp-enricher``: serve, check-config, prices, replay, dead-letters, rules, dashboard.

The only place that calls ``sys.exit``.

``serve`` handles SIGTERM/SIGINT (drain within ``service.shutdown_timeout_s``, then exit — by
``os._exit`` if something still hangs two seconds past it) and SIGHUP (reload the pricing config).

Exit codes (also in ``--help`` and the README): 0 success; 1 the work failed (nothing replayable,
unreachable endpoint, start-up failure); 2 bad usage or an invalid configuration; 3 a port to
listen on is taken or not permitted; 141 stdout closed early (piped to ``head``), as a tool
killed by SIGPIPE would.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence

import grpc
import orjson

from otlp_enricher import __version__
from otlp_enricher.config import Config, load_config
from otlp_enricher.confignode import ConfigError
from otlp_enricher.model import Tokens
from otlp_enricher.otlp_json import OtlpDecodeError
from otlp_enricher.ports import listeners_of, port_problem
from otlp_enricher.processor.pricing import RATE_FIELDS, PriceBook
from otlp_enricher.telemetry.logging import configure_logging, get_logger

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PORT_TAKEN, EXIT_BROKEN_PIPE = 0, 1, 2, 3, 141
_EXIT_CODES = """exit codes:
  0    success
  1    the work failed (nothing replayable, unreachable endpoint, start-up failure)
  2    bad usage or an invalid configuration
  3    a port to listen on is taken or not permitted (the message names the port and config key)
  141  stdout was closed early (e.g. piped to head)"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otlp-enricher",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog=_EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the sidecar (embedded default config without --config)")
    serve.add_argument("--config", help="YAML config file")
    serve.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # started by the supervisor

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

    letters = commands.add_parser("dead-letters", help="list, show or re-send what the backends refused for good")
    letters.add_argument("action", choices=("list", "show", "resend"))
    letters.add_argument("exporter", nargs="?", choices=("loki", "tempo"), help="for show and resend")
    letters.add_argument("--config", help="YAML config file (storage directory, exporter endpoints)")
    letters.add_argument("--limit", type=int, default=20, help="show: the newest N letters (0: all)")
    for name, what in (("rules", "a Prometheus rule file"), ("dashboard", "a Grafana dashboard (JSON)")):
        generator = commands.add_parser(name, help=f"print {what} generated from a config (SLOs, budgets, labels)")
        generator.add_argument("--config", help="YAML config file (the embedded default without it)")
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
    if args.command == "dead-letters" and args.action != "list" and not args.exporter:
        parser.error(f"dead-letters {args.action}: name the exporter (loki or tempo)")
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
        return EXIT_USAGE
    if args.command in ("rules", "dashboard"):
        return _generate(config, args.command)
    configure_logging(config.service.logs.level, config.service.logs.encoding)
    if args.command == "serve":
        if args.worker is None and config.service.workers > 1:
            return _supervise(config, args.config)
        return _serve(config, args.worker)
    try:
        if args.command == "prices":
            code = _prices(config, args)
        elif args.command == "dead-letters":
            code = _dead_letters(config, args)
        else:
            code = _replay(config, args)
        sys.stdout.flush()  # inside the try: a reader that left shows up here, not at exit
    except BrokenPipeError:
        # The reader (head, less) has gone: stop quietly. stdout now points at /dev/null so the
        # interpreter's own flush at exit does not raise again (Python docs, "Note on SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _generate(config: Config, what: str) -> int:
    if what == "rules":
        from otlp_enricher.governance.rules import render_rules

        sys.stdout.write(render_rules(config))
    else:
        from otlp_enricher.governance.dashboard import render_dashboard

        sys.stdout.write(render_dashboard(config))
    return EXIT_OK


def _summary(config: Config) -> str:
    receivers = [name for name in ("grpc", "http") if getattr(config.receivers, name) is not None]
    exporters = ["prometheus"] + [name for name in ("loki", "tempo") if getattr(config.exporters, name) is not None]
    return f"receivers {', '.join(receivers)}; exporters {', '.join(exporters)}; {len(config.genai.slos)} SLO(s)"


def _supervise(config: Config, config_path: str | None) -> int:
    """``service.workers`` > 1: run the workers and serve their summed metrics."""
    from prometheus_client import CollectorRegistry

    from otlp_enricher.service import worker_receivers
    from otlp_enricher.storage_files import make_private_dir
    from otlp_enricher.telemetry.server import TelemetryServer
    from otlp_enricher.telemetry.workers import Supervisor, WorkerMetrics
    from otlp_enricher.userid_key import resolve_redaction

    listeners = listeners_of(config)
    if config.service.worker_port_step:  # every worker's own ports, named by the keys they derive from
        for index in range(1, config.service.workers):
            moved = dataclasses.replace(config, receivers=worker_receivers(config, index))
            listeners += [(f"{key} (worker {index})", endpoint) for key, endpoint in listeners_of(moved)[:-1]]
    problem = port_problem(listeners)
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_PORT_TAKEN
    log = get_logger("cli")
    make_private_dir(config.storage.directory)
    resolve_redaction(config.redaction, config.storage.directory)  # the workers' shared user-id key, made once
    service = config.service
    supervisor = Supervisor(service.workers, config_path, config.storage.directory, service.shutdown_timeout_s)
    registry = CollectorRegistry()
    registry.register(WorkerMetrics(supervisor.directories))
    telemetry = TelemetryServer(config.exporters.prometheus, registry, supervisor.ready, reload=supervisor.reload)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        stopping: list[asyncio.Task[None]] = []

        async def stop_all() -> None:
            await supervisor.stop()
            stopped.set()

        def stop(signum: signal.Signals) -> None:
            log.info("signal_received", signal=signum.name)
            if not stopping:
                stopping.append(loop.create_task(stop_all()))

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        loop.add_signal_handler(signal.SIGHUP, supervisor.signal, signal.SIGHUP)
        supervisor.start()
        await telemetry.start()
        log.info("supervisor_started", workers=service.workers, metrics_port=telemetry.port)
        watch = loop.create_task(supervisor.watch())
        await stopped.wait()
        watch.cancel()
        await telemetry.shutdown(1.0)
        log.info("supervisor_stopped")

    asyncio.run(run())
    return EXIT_OK


def _serve(config: Config, worker: int | None = None) -> int:
    import prometheus_client

    from otlp_enricher.service import Service

    # One *_created series per counter and histogram doubles the series count for nothing
    # dashboards use; the process-wide switch is flipped here, in the process entry point.
    disable_created: Callable[[], None] = prometheus_client.disable_created_metrics
    disable_created()

    log = get_logger("cli")
    listeners = listeners_of(config)
    problem = None if worker is not None else port_problem(listeners)  # siblings hold the ports
    if problem is not None:
        print(problem, file=sys.stderr)
        return EXIT_PORT_TAKEN
    started = False

    async def run() -> None:
        nonlocal started
        service = Service(config, worker=worker)
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[object]] = set()

        def spawn(work: Coroutine[object, object, object]) -> None:
            task: asyncio.Task[object] = loop.create_task(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def stop(signum: signal.Signals) -> None:
            log.info("signal_received", signal=signum.name)
            _exit_after(config.service.shutdown_timeout_s + _OVERRUN_GRACE_S)
            spawn(service.shutdown())

        def reload(signum: signal.Signals) -> None:
            log.info("signal_received", signal=signum.name, action="reload")
            spawn(service.reload())

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        loop.add_signal_handler(signal.SIGHUP, reload, signal.SIGHUP)
        await service.start()
        started = True
        # Everything built at start (config, price tables, compiled patterns) is long-lived: move
        # it out of the collector's sight, and collect young objects less often (the data plane
        # creates few per span, and a full collection over the start-up heap costs milliseconds).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        await service.wait_stopped()

    try:
        asyncio.run(run())
    except (OSError, RuntimeError) as error:  # grpc reports a failed bind as RuntimeError
        if started:
            raise
        # Taken between the check above and the bind: name it the same way.
        problem = port_problem(listeners)
        print(problem or f"otlp-enricher: start failed: {error}", file=sys.stderr)
        return EXIT_PORT_TAKEN if problem else EXIT_FAILED
    return EXIT_OK


_OVERRUN_GRACE_S = 2.0
"""How far past ``shutdown_timeout_s`` the process may go before it exits anyway."""


def _exit_after(timeout_s: float) -> None:
    """Exit the process ``timeout_s`` from now whatever it is waiting for: a worker thread stuck in
    ``fsync`` on a dead disk must not keep it past its shutdown deadline (the spool is crash-safe)."""

    def overran() -> None:
        get_logger("cli").error("shutdown_overran", timeout_s=timeout_s)
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(timeout_s, overran)
    timer.daemon = True
    timer.start()


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
    for name in RATE_FIELDS:
        print(f"  {name:<15} ${getattr(rates, name) * 1e6:.4f} / MTok")
    for start in card.tier_starts:
        print(f"  long-context tier above {start} input tokens")
    if tokens.total:
        print(f"  cost of the given tokens: ${card.cost(tokens):.6f}")
    return 0


def _dead_letters(config: Config, args: argparse.Namespace) -> int:
    from otlp_enricher.exporter import resend

    if args.action == "list":
        summaries = resend.summarise(config)
        for summary in summaries:
            print(
                f"{summary.exporter}: {summary.letters} letters, {summary.items} items, "
                f"{summary.bytes} bytes in {summary.files} file(s)"
            )
        if not summaries:
            print(f"no dead letters under {config.storage.directory / 'deadletter'}")
        return 0
    if args.action == "show":
        for letter in resend.show(config, args.exporter, args.limit):
            print(orjson.dumps(letter).decode())
        return 0
    try:
        result = resend.resend_now(config, args.exporter)
    except (ValueError, OSError) as error:
        print(f"resend failed: {error}", file=sys.stderr)
        return 1
    print(f"{args.exporter}: {result.sent} letters re-sent, {result.failed} refused again")
    if result.failed:
        print(f"last refusal: {result.last_failure}", file=sys.stderr)
        return 1
    return 0


def _replay(config: Config, args: argparse.Namespace) -> int:
    from otlp_enricher.replay import NothingToReplay, replay_report, replay_to

    try:
        if args.to:
            spans = replay_to(args.to, args.files)
            print(f"sent {spans} spans to {args.to}")
            return 0
        report = replay_report(config, args.files)
    except (NothingToReplay, OtlpDecodeError, OSError) as error:
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
