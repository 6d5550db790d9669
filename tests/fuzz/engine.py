"""The fuzz runner shared by every target: seeds, a seeded random mutator, and the atheris driver.

A target is a module with ``seeds()`` (the starting corpus, from the recorded fixtures), ``check``
(one input; raises only when the property is broken, returns whether the input was *accepted*,
which the random mutator uses as its cheap stand-in for coverage: accepted inputs become parents)
and ``MAX_LEN``. Anything ``check`` raises is a finding: the input is written to the crash
directory (``tests/fuzz/crashes`` by default, not committed) and the run fails. A native crash
kills the process; the random mutator writes each input to ``<crashes>/<target>.last`` before
running it, so the input that killed the process is kept.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import random
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

TARGETS = ("protobuf", "otlp_json", "http_framing", "normaliser", "replay_reader", "config_loader")
CRASHES = Path(__file__).resolve().parent / "crashes"
# The Python code atheris instruments for coverage (the native core is seen only by its outcome);
# instrumenting costs seconds at start, so each target adds only the libraries it parses with.
INSTRUMENTED = ("otlp_enricher", "tests.fuzz")
_INSTRUMENTED_FOR = {
    "otlp_json": ("google.protobuf.json_format",),
    "config_loader": ("yaml",),
    "http_framing": ("http.server", "email"),
}
_INTERESTING = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", b"\xff" * 10)
_TOKENS = (
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b":",
    b",",
    b"\\u0000",
    b"1e999",
    b"-1",
    b"null",
    b"true",
    b'{"a":',
    b"\r\n",
    b"\n",
    b"0\r\n\r\n",
    b"Content-Length: ",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Encoding: gzip\r\n",
    b"${env:X}",
    b"- ",
    b": ",
    b"&a",
    b"*a",
    b"!!binary ",
    b"\t",
)


def load(name: str, instrument: Callable[[], object] | None = None) -> ModuleType:
    """The target module ``name``; imported under ``instrument()`` (a context manager) if given."""
    if name not in TARGETS:
        raise SystemExit(f"unknown fuzz target {name!r}; one of {', '.join(TARGETS)}")
    if instrument is None:
        return importlib.import_module(f"tests.fuzz.{name}")
    with instrument():  # type: ignore[attr-defined]
        return importlib.import_module(f"tests.fuzz.{name}")


def mutate(rng: random.Random, data: bytes, corpus: Sequence[bytes], max_len: int) -> bytes:
    """``data`` changed by one to four random edits (libFuzzer's basic mutations, roughly)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.randrange(9)
        at = rng.randint(0, len(buf))
        if choice == 0 and buf:  # flip a bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif choice == 1 and buf:  # random byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif choice == 2:  # insert random bytes
            buf[at:at] = rng.randbytes(rng.randint(1, 8))
        elif choice == 3 and buf:  # delete a range
            end = min(len(buf), at + rng.randint(1, 64))
            del buf[at:end]
        elif choice == 4 and buf:  # duplicate a range
            start = rng.randrange(len(buf))
            buf[at:at] = buf[start : start + rng.randint(1, 128)]
        elif choice == 5:  # interesting bytes (varint edges, 0xff runs)
            buf[at:at] = rng.choice(_INTERESTING)
        elif choice == 6:  # a token of the formats fuzzed here
            buf[at:at] = rng.choice(_TOKENS)
        elif choice == 7 and corpus:  # splice with another input
            other = rng.choice(corpus)
            cut = rng.randint(0, len(other))
            buf[at:] = other[cut:]
        elif choice == 8 and buf:  # truncate
            del buf[at:]
    return bytes(buf[:max_len])


def run_random(target: ModuleType, name: str, runs: int, seconds: float, seed: int, crashes: Path) -> int:
    """Seeded random mutation from the target's seeds; returns the process exit status."""
    rng = random.Random(seed)
    seeds = [bytes(s)[: target.MAX_LEN] for s in target.seeds()]
    parents = list(seeds)
    crashes.mkdir(parents=True, exist_ok=True)
    last = crashes / f"{name}.last"
    deadline = time.monotonic() + seconds if seconds else None
    done = accepted = 0
    inputs = iter(seeds)
    while (not runs or done < runs) and (deadline is None or time.monotonic() < deadline):
        data = next(inputs, None)
        if data is None:
            data = mutate(rng, rng.choice(parents), parents, target.MAX_LEN)
        last.write_bytes(data)
        try:
            ok = target.check(data)
        except BaseException as error:  # a finding, whatever it is
            if isinstance(error, KeyboardInterrupt):
                raise
            return _report(name, data, crashes, traceback.format_exc())
        done += 1
        if ok:
            accepted += 1
            if len(parents) < 512:
                parents.append(data)
            else:
                parents[rng.randrange(len(seeds), 512)] = data
    last.unlink(missing_ok=True)
    print(f"fuzz {name}: {done} inputs, {accepted} accepted, no finding (random mutation, seed {seed})")
    return 0


def _report(name: str, data: bytes, crashes: Path, trace: str) -> int:
    path = crashes / f"{name}-{hashlib.sha1(data).hexdigest()[:16]}"
    path.write_bytes(data)
    print(f"fuzz {name}: FINDING, input saved to {path}\n{trace}", file=sys.stderr)
    return 1


def run_atheris(name: str, runs: int, seconds: float, seed: int, crashes: Path, corpus: Path | None) -> int:
    """Coverage-guided run under atheris/libFuzzer; libFuzzer writes findings to ``crashes``."""
    import atheris

    include = [*INSTRUMENTED, *_INSTRUMENTED_FOR.get(name, ())]
    target = load(name, lambda: atheris.instrument_imports(include=include))
    crashes.mkdir(parents=True, exist_ok=True)
    seed_dir = corpus or crashes / f"{name}.corpus"
    seed_dir.mkdir(parents=True, exist_ok=True)
    for data in target.seeds():
        (seed_dir / hashlib.sha1(data).hexdigest()).write_bytes(bytes(data)[: target.MAX_LEN])
    args = [
        sys.argv[0],
        f"-seed={seed}",
        f"-max_len={target.MAX_LEN}",
        "-rss_limit_mb=1536",
        "-timeout=20",
        f"-artifact_prefix={crashes}/{name}-",
        "-print_final_stats=1",
    ]
    if runs:
        args.append(f"-runs={runs}")
    if seconds:
        args.append(f"-max_total_time={int(seconds)}")
    args.append(str(seed_dir))

    def one(data: bytes) -> None:
        target.check(data)

    atheris.Setup(args, one)
    atheris.Fuzz()  # exits the process: 0 when the run ends without a finding
    return 0


def reproduce(name: str, paths: Sequence[str]) -> int:
    """Run ``check`` once on each saved input, with the traceback of any finding."""
    target = load(name)
    status = 0
    for path in paths:
        try:
            target.check(Path(path).read_bytes())
            print(f"{path}: no finding")
        except Exception:
            traceback.print_exc()
            status = 1
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.fuzz TARGET [--runs N | --seconds S] [--engine ...] [INPUT ...]``."""
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("inputs", nargs="*", help="saved inputs to re-run once each (no fuzzing)")
    parser.add_argument("--runs", type=int, default=0, help="stop after this many inputs (0: no limit)")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: no limit)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--crashes", type=Path, default=CRASHES, help="where findings are written")
    parser.add_argument("--corpus", type=Path, default=None, help="atheris: a corpus directory to keep")
    args = parser.parse_args(argv)
    if args.inputs:
        return reproduce(args.target, args.inputs)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if importlib.util.find_spec("atheris") else "random"
    if engine == "atheris":
        return run_atheris(args.target, args.runs, args.seconds, args.seed, args.crashes, args.corpus)
    target = load(args.target)
    return run_random(target, args.target, args.runs, args.seconds, args.seed, args.crashes)
