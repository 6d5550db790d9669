"""The native data plane through its Python face: scanning, splicing, redaction and OTLP/JSON.

Expected values come from protobuf's own parser and Python's ``re`` engine run on the same
inputs, never from the native code under test.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from otlp_enricher.dataplane import Scanner, SpanEdit, SpanWriter, to_json, validate
from otlp_enricher.otlp_json import OtlpDecodeError, read_recorded
from otlp_enricher.processor.redaction import BUILTIN_PATTERNS, RedactionSettings, Redactor
from otlp_enricher.semconv import candidates, keys
from tests.otlp_builders import decoded, request, span
from tests.peers.workload import SECRETS

RECORDED = Path(__file__).parent / "fixtures" / "recorded"
FIXTURES = sorted(p for p in RECORDED.iterdir() if p.suffix in (".jsonl", ".binpb"))


def _requests() -> list[bytes]:
    return [body for path in FIXTURES for body in read_recorded(path)]


def _spans(message: ExportTraceServiceRequest) -> list[Any]:
    return [s for rs in message.resource_spans for ss in rs.scope_spans for s in ss.spans]


def _is_content(key: str) -> bool:
    return key in keys.CONTENT_KEYS or key.startswith(keys.CONTENT_PREFIXES)


def test_fixtures_exist() -> None:
    """The recorded fixtures are the corpus of every test below."""
    assert len(FIXTURES) >= 6


@pytest.mark.parametrize("body", _requests()[:40])
def test_scan_counts_every_span_and_hands_over_exactly_the_marked_ones(body: bytes) -> None:
    """A span is handed to Python iff it carries a marker key, comes from an LLM scope or has an
    ``<operation> <model>`` name; its read attributes decode as protobuf's."""
    message = ExportTraceServiceRequest.FromString(body)
    spans = _spans(message)
    scan = Scanner().scan(body)
    assert scan.span_count == len(spans)
    scopes = [ss.scope.name for rs in message.resource_spans for ss in rs.scope_spans for _ in ss.spans]
    marked = [
        i
        for i, s in enumerate(spans)
        if any(kv.key in candidates.MARKER_KEYS for kv in s.attributes)
        or scopes[i].startswith(candidates.LLM_SCOPE_PREFIXES)
        or s.name.startswith(candidates.LLM_SPAN_NAME_PREFIXES)
    ]
    assert [s.ordinal for s in scan.spans] == marked
    for native in scan.spans:
        original = spans[native.ordinal]
        assert native.trace_id == original.trace_id and native.span_id == original.span_id
        assert native.start_time_unix_nano == original.start_time_unix_nano
        assert native.status.code == original.status.code and native.status.message == original.status.message
        expected = {kv.key: decoded(kv.value) for kv in original.attributes if kv.key in candidates.READ_KEYS}
        expected.update(
            {kv.key: decoded(kv.value) for kv in original.attributes if kv.key.startswith(candidates.READ_PREFIXES)}
        )
        assert native.attributes == expected
        assert [e.name for e in native.events] == [e.name for e in original.events]


def test_non_llm_spans_are_scanned_not_handed_over() -> None:
    """Ordinary spans cost a scan: counted, not returned."""
    body = request([span({"http.route": "/cart"}) for _ in range(50)]).SerializeToString()
    scan = Scanner().scan(body)
    assert scan.span_count == 50 and scan.spans == []


def test_every_truncation_of_a_request_is_a_decode_error_or_a_shorter_valid_message() -> None:
    """Cutting a request anywhere never crashes and never reads past the end."""
    body = _requests()[0]
    scanner = Scanner()
    for cut in range(0, len(body), max(1, len(body) // 300)):
        try:
            scanned = scanner.scan(body[:cut])
        except OtlpDecodeError:
            continue
        assert scanned.span_count <= len(_spans(ExportTraceServiceRequest.FromString(body)))


def test_invalid_utf8_in_a_string_is_refused() -> None:
    """protobuf requires proto3 strings to be UTF-8; so do we (the bytes go on to Tempo)."""
    good = request([span({"gen_ai.operation.name": "chat"})]).SerializeToString()
    bad = good.replace(b"chat", b"ch\xffa")
    with pytest.raises(OtlpDecodeError):
        Scanner().scan(bad)


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    return bytes([*out, number])


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, written by hand (so fields can repeat as no encoder writes them)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(number: int) -> bytes:
    return bytes([number << 3, 1])


# Where each ``dropped_attributes_count`` sits: the path of (field number) from the request down
# to its message, and the count's own field number (opentelemetry-proto trace.proto/common.proto).
_DROPPED_COUNTS = {
    "resource": ((1, 1), 2),
    "scope": ((1, 2, 1), 4),
    "span": ((1, 2, 2), 10),
    "event": ((1, 2, 2, 11), 4),
    "link": ((1, 2, 2, 13), 5),
}


@pytest.mark.parametrize("message", sorted(_DROPPED_COUNTS))
def test_a_dropped_count_of_the_wrong_wire_type_is_refused_at_the_gate(message: str) -> None:
    """Fuzz finding (tests/fuzz/protobuf.py): a ``dropped_attributes_count`` sent length-delimited
    passed ``validate`` but failed ``to_json`` later, after the request had been acknowledged."""
    path, count_field = _DROPPED_COUNTS[message]

    def wrapped(inner: bytes) -> bytes:
        for number in reversed(path):
            inner = _field(number, inner)
        return inner

    good, bad = wrapped(_varint_field(count_field)), wrapped(_field(count_field, b"x"))
    assert ExportTraceServiceRequest.FromString(good)  # both are protobuf (upb keeps the bad one as unknown)
    assert validate(good) == len(_spans(ExportTraceServiceRequest.FromString(good)))
    to_json(good)
    with pytest.raises(OtlpDecodeError, match="dropped"):
        validate(bad)
    with pytest.raises(OtlpDecodeError):
        to_json(bad)


@pytest.mark.parametrize("first", [b"\x67corrupt", _field(1, b"fine")], ids=["corrupt", "valid"])
def test_an_attribute_value_given_twice_is_refused(first: bytes) -> None:
    """Fuzz finding (tests/fuzz/protobuf.py): of two ``value`` fields in one KeyValue only the last
    was checked, so a corrupt first one (upb: "wire format was corrupt") was acknowledged and later
    refused by Tempo. protobuf would merge the two; no encoder writes it: refused, in every reader."""
    key_value = _field(1, b"k") + _field(2, first) + _field(2, _field(1, b"last"))
    body = _field(1, _field(2, _field(2, _field(9, key_value))))  # resource_spans.scope_spans.spans
    once = _field(1, _field(2, _field(2, _field(9, _field(1, b"k") + _field(2, _field(1, b"last"))))))
    assert validate(once) == 1 and to_json(once)
    for read in (validate, to_json, Scanner(extra_keys=["k"]).scan):
        with pytest.raises(OtlpDecodeError, match="given twice"):
            read(body)


def _string(text: str) -> bytes:
    return _field(1, text.encode())


def _array(*items: bytes) -> bytes:
    return _field(5, b"".join(_field(1, item) for item in items))


def _kvlist(**items: bytes) -> bytes:
    return _field(6, b"".join(_field(1, _field(1, key.encode()) + _field(2, value)) for key, value in items.items()))


# AnyValues whose oneof member appears more than once on the wire: protobuf keeps the last member,
# merging an array_value or kvlist_value into the same member before it (their items concatenate).
_REPEATED_MEMBERS = {
    "array twice": _array(_string("a"), _string("b")) + _array(_string("c")),
    "kvlist twice": _kvlist(x=_string("1")) + _kvlist(y=_string("2"), x=_string("3")),
    "array, string, array": _array(_string("a")) + _string("between") + _array(_string("c")),
    "array then kvlist": _array(_string("a")) + _kvlist(x=_string("1")),
    "nested arrays twice": _array(_array(_string("a")) + _array(_string("b"))) + _array(_string("c")),
    "string twice": _string("first") + _string("last"),
}


def test_an_any_value_member_given_again_reads_as_protobuf_merges_it() -> None:
    """The scanner's attribute values and the OTLP/JSON line agree with protobuf's parse of the same
    bytes: Tempo (which gets the bytes as they came) and the rules read the same value."""
    marker = sorted(candidates.MARKER_KEYS)[0]
    attributes = _field(9, _field(1, marker.encode()) + _field(2, _string("openai")))
    for key, value in _REPEATED_MEMBERS.items():
        attributes += _field(9, _field(1, key.encode()) + _field(2, value))
    span_bytes = _field(1, b"\x01" * 16) + _field(2, b"\x02" * 8) + _field(5, b"call") + attributes
    body = _field(1, _field(2, _field(2, span_bytes)))
    (parsed,) = _spans(ExportTraceServiceRequest.FromString(body))
    expected = {kv.key: decoded(kv.value) for kv in parsed.attributes if kv.key in _REPEATED_MEMBERS}
    assert expected["array twice"] == ["a", "b", "c"]  # the oracle merges, as documented
    (native,) = Scanner(extra_keys=list(_REPEATED_MEMBERS)).scan(body).spans
    assert {key: native.attributes[key] for key in _REPEATED_MEMBERS} == expected
    (line_span,) = orjson.loads(to_json(body))["resourceSpans"][0]["scopeSpans"][0]["spans"]
    reference = json_format.MessageToDict(parsed)
    assert line_span["attributes"] == reference["attributes"]


def test_invalid_utf8_in_a_resource_entity_ref_is_refused() -> None:
    """Fuzz finding (tests/fuzz/protobuf.py): ``Resource.entity_refs`` (newer in opentelemetry-proto) was
    skipped unread, so bad UTF-8 in it passed while protobuf's decoder refuses the request."""
    good = _field(1, _field(1, _field(3, _field(2, b"service") + _field(3, b"service.name"))))
    bad = good.replace(b"service.name", b"service.n\xbcme")
    ExportTraceServiceRequest.FromString(good)
    with pytest.raises(DecodeError):
        ExportTraceServiceRequest.FromString(bad)
    assert validate(good) == 0
    with pytest.raises(OtlpDecodeError, match="entity_ref"):
        validate(bad)


def _edits(scan_spans: list[Any]) -> dict[int, SpanEdit]:
    return {s.ordinal: ({}, [("otlp_enricher.cost_usd", 0.125), ("otlp_enricher.unpriced", False)]) for s in scan_spans}


@pytest.mark.parametrize("content", ["keep", "strip"])
def test_spliced_spans_decode_to_the_original_plus_the_enrichment(content: str) -> None:
    """Edited spans = original (content stripped if asked) + added attributes; all else byte-identical."""
    writer = SpanWriter(content, None)
    for body in _requests():
        scan = Scanner().scan(body)
        if not scan.spans:
            continue
        out, _, failed = writer.write(body, _edits(scan.spans))
        assert failed == 0
        before, after = (_spans(ExportTraceServiceRequest.FromString(b)) for b in (body, out))
        edited = {s.ordinal for s in scan.spans}
        assert len(before) == len(after)
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            if index not in edited:
                assert new == old
                continue
            expected = type(old)()
            expected.CopyFrom(old)
            if content == "strip":
                kept = [kv for kv in old.attributes if not _is_content(kv.key)]
                del expected.attributes[:]
                expected.attributes.extend(kept)
                for event in expected.events:
                    if event.name in keys.CONTENT_EVENTS or event.name.startswith(keys.CONTENT_EVENT_PREFIXES):
                        del event.attributes[:]
            expected.attributes.add(key="otlp_enricher.cost_usd").value.double_value = 0.125
            expected.attributes.add(key="otlp_enricher.unpriced").value.bool_value = False
            assert new == expected


def test_user_ids_are_replaced_or_dropped_in_place() -> None:
    """A replace edit rewrites the value; ``None`` drops the attribute."""
    body = request([span({"gen_ai.operation.name": "chat", "user.id": "bob@example.com", "llm.user": "x"})])
    out, _, _ = SpanWriter("keep", None).write(
        body.SerializeToString(), {0: ({"user.id": "h:1", "llm.user": None}, [])}
    )
    attributes = {
        kv.key: kv.value.string_value for kv in _spans(ExportTraceServiceRequest.FromString(out))[0].attributes
    }
    assert attributes == {"gen_ai.operation.name": "chat", "user.id": "h:1"}


def _reference_scrub(text: str) -> tuple[str, Counter[str]]:
    """The built-in scrubbers run by Python's ``re`` engine: the oracle for the native ones."""
    counts: Counter[str] = Counter()
    validators = {
        "": lambda m: True,
        "luhn": _luhn,
        "ip": _ip,
        "phone": lambda m: 9 <= sum(c.isdigit() for c in m) <= 15,
    }
    for name, (pattern, validator) in BUILTIN_PATTERNS.items():
        compiled = re.compile(pattern)
        marker = f"[REDACTED:{name}]"

        def replace(
            match: re.Match[str], name: str = name, marker: str = marker, check: Any = validators[validator]
        ) -> str:
            if not check(match.group(0)):
                return match.group(0)
            counts[name] += 1
            if "secret" in match.re.groupindex and match.group("secret") is not None:
                start, end = match.span("secret")
                offset = match.start(0)
                return match.group(0)[: start - offset] + marker + match.group(0)[end - offset :]
            return marker

        text = compiled.sub(replace, text)
    return text, counts


def _luhn(candidate: str) -> bool:
    digits = [int(c) for c in candidate if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


def _ip(candidate: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


def _content_strings() -> list[str]:
    texts: list[str] = []

    def walk(value: AnyValue) -> None:
        kind = value.WhichOneof("value")
        if kind == "string_value":
            texts.append(value.string_value)
        elif kind == "array_value":
            for item in value.array_value.values:
                walk(item)
        elif kind == "kvlist_value":
            for kv in value.kvlist_value.values:
                walk(kv.value)

    for body in _requests():
        for s in _spans(ExportTraceServiceRequest.FromString(body)):
            for kv in s.attributes:
                if _is_content(kv.key):
                    walk(kv.value)
    return texts


def test_native_redaction_equals_python_re_on_every_fixture_string_and_the_secret_corpus() -> None:
    """Same output and same match counts as Python's engine, on real prompts and on secrets."""
    redactor = Redactor(RedactionSettings())
    # Many candidates in one text: the native engine switches from anchored tries to one pass.
    crowded = " ".join(f"id {i} ref 12 34 v{i}.{i}.1 2001:db8::{i:x} x@y{i}.io" for i in range(200)) + " ".join(SECRETS)
    # Word boundaries the prefilter drops, next to ASCII and non-ASCII word characters.
    boundaries = [
        "mytoken abcdefghijklmnopqrstuv",
        "étoken abcdefghijklmnopqrstuv",
        "Ünïcödé — Bearer abcdefghijklmnopqrstuv",
    ]
    corpus = (
        _content_strings()
        + list(SECRETS)
        + [" ".join(SECRETS), "call +44 20 7946 0958 or 10.0.0.1 / ::1", crowded, *boundaries]
    )
    assert len(corpus) > 50
    for text in corpus:
        counts: Counter[str] = Counter()
        assert (redactor.scrub(text, counts), counts) == _reference_scrub(text), text[:200]


# Pieces of texts near every scrubber's edges: digit runs and separators (card, phone, ip) in
# ASCII and other scripts, word characters on either side of a match (the look-arounds and word
# boundaries the native prefilter drops), and non-ASCII letters and punctuation (on which \b and
# \w are Unicode).
_PIECES = (
    *"0123456789",
    "4111",
    "1111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "020 7946 0958",
    "12",
    "10.0.0.1",
    "::",
    "db8",
    "ff",
    "+44",
    "(20)",
    # \\d is every Unicode decimal digit: cards and phones in other scripts are validated alike.
    "٤١١١ ١١١١ ١١١١ ١١١١",
    "٠٢٠ ٧٩٤٦ ٠٩٥٨",
    "۹۱۲",
    "१२३४",
    "１２３",
    "٩",
    "x",
    "é",
    "ß",
    "Ω",
    "’",
    "—",
    "@",
    "bob",
    "example.com",
    "bob@example.com",
    "token",
    "Bearer",
    "abcdefghijklmnopqrstuvwx",
    "sk-",
    "AKIA",
    "ABCDEFGHIJKLMNOP",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----",
)
_SEPARATORS = ("", "", "", " ", "-", ".", ":", "\n", "_", "+")


def test_native_redaction_equals_python_re_on_generated_texts() -> None:
    """Same output and counts as Python's engine on texts built to sit at the scrubbers' edges,
    where a prefilter that missed a match would show (seeded: the same texts every run)."""
    import random

    pick = random.Random(20240617)
    redactor = Redactor(RedactionSettings())
    for _ in range(3000):
        pieces = pick.choices(_PIECES, k=pick.randint(1, 14))
        text = "".join(piece + pick.choice(_SEPARATORS) for piece in pieces)
        counts: Counter[str] = Counter()
        assert (redactor.scrub(text, counts), counts) == _reference_scrub(text), text
