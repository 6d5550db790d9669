"""Pin the fake provider's wire format and its log: what recorded fixtures are compared against."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from . import SCENARIO_HEADER, SCENARIOS, FakeProvider


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    """A fake provider serving on a free port for one test."""
    with FakeProvider() as provider:
        yield provider


def post(url: str, body: dict[str, Any], scenario: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` as JSON; returns status, lower-cased headers and the raw body, also for HTTP errors."""
    headers = {"content-type": "application/json"}
    if scenario is not None:
        headers[SCENARIO_HEADER] = scenario
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def sse(raw: bytes) -> list[tuple[str | None, Any]]:
    """Parse an event stream into (event name, decoded data) pairs; ``[DONE]`` stays a string."""
    events: list[tuple[str | None, Any]] = []
    for block in raw.decode().split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        data = fields["data"]
        events.append((fields.get("event"), data if data == "[DONE]" else json.loads(data)))
    return events


def test_openai_chat_returns_snapshot_model_tool_call_and_usage(fake: FakeProvider) -> None:
    """A chat completion names the dated model and carries the tool call and the scenario's usage."""
    status, headers, raw = post(
        fake.openai_base_url + "/chat/completions",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        "openai-chat-cached-tool",
    )
    body = json.loads(raw)
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "gpt-4o-2024-08-06"
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert body["usage"] == {
        "prompt_tokens": 2317,
        "completion_tokens": 41,
        "total_tokens": 2358,
        "prompt_tokens_details": {"cached_tokens": 1792, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    [sent] = fake.sent()
    assert (sent.scenario, sent.provider, sent.requested_model, sent.response_model) == (
        "openai-chat-cached-tool",
        "openai",
        "gpt-4o",
        "gpt-4o-2024-08-06",
    )
    assert (sent.streaming, sent.http_status, sent.request_id) == (False, 200, headers["x-request-id"])
    assert sent.response_id == body["id"]
    assert sent.usage == body["usage"]


def test_openai_stream_sends_usage_chunk_only_when_asked(fake: FakeProvider) -> None:
    """With ``include_usage`` the chunk before ``[DONE]`` has no choices and the usage; without, none has."""
    url = fake.openai_base_url + "/chat/completions"
    request = {"model": "gpt-4o-mini", "messages": [], "stream": True}
    status, headers, raw = post(url, {**request, "stream_options": {"include_usage": True}}, "openai-stream")
    events = sse(raw)
    assert status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert events[-1] == (None, "[DONE]")
    *chunks, (_, usage_chunk), _ = events
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens_details"]["cached_tokens"] == 384
    assert all(data["usage"] is None for _, data in chunks)
    text = "".join(data["choices"][0]["delta"].get("content", "") for _, data in chunks)
    assert text == SCENARIOS["openai-stream"].text
    assert {data["model"] for _, data in chunks} == {"gpt-4o-mini-2024-07-18"}

    _, _, raw_without = post(url, request, "openai-stream")
    assert all("usage" not in data for _, data in sse(raw_without)[:-1])

    with_usage, without_usage = fake.sent()
    assert with_usage.streaming and with_usage.usage == usage_chunk["usage"]
    assert with_usage.stream_usage == [usage_chunk["usage"]]
    assert without_usage.usage is None and without_usage.stream_usage == []


def test_openai_reasoning_usage_counts_reasoning_inside_completion(fake: FakeProvider) -> None:
    """o3-mini answers as its snapshot with reasoning tokens that are part of ``completion_tokens``."""
    _, _, raw = post(
        fake.openai_base_url + "/chat/completions", {"model": "o3-mini", "messages": []}, "openai-reasoning"
    )
    body = json.loads(raw)
    assert body["model"] == "o3-mini-2025-01-31"
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 1088
    assert body["usage"]["completion_tokens"] == 1264


def test_anthropic_message_input_tokens_exclude_cache(fake: FakeProvider) -> None:
    """A message has the tool_use block, and usage with cache reads/writes outside ``input_tokens``."""
    status, headers, raw = post(
        fake.base_url + "/v1/messages",
        {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": []},
        "anthropic-cache-write-tool",
    )
    body = json.loads(raw)
    assert status == 200
    assert body["model"] == "claude-sonnet-4-5-20250929"
    assert body["stop_reason"] == "tool_use"
    assert [block["type"] for block in body["content"]] == ["text", "tool_use"]
    assert body["usage"] == {
        "input_tokens": 213,
        "cache_creation_input_tokens": 3584,
        "cache_read_input_tokens": 4096,
        "cache_creation": {"ephemeral_5m_input_tokens": 1536, "ephemeral_1h_input_tokens": 2048},
        "output_tokens": 87,
        "service_tier": "standard",
    }
    [sent] = fake.sent()
    assert sent.usage == body["usage"]
    assert (sent.request_id, sent.response_id) == (headers["request-id"], body["id"])


def test_anthropic_stream_events_and_final_usage(fake: FakeProvider) -> None:
    """A stream sends the real event sequence; logged usage = message_start's + message_delta's."""
    status, _, raw = post(
        fake.base_url + "/v1/messages",
        {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": [], "stream": True},
        "anthropic-stream-thinking",
    )
    events = sse(raw)
    names = [name for name, _ in events]
    assert status == 200
    assert all(name == data["type"] for name, data in events)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 2
    start, delta = events[0][1], events[-2][1]
    assert start["message"]["model"] == "claude-haiku-4-5-20251001"
    assert start["message"]["usage"]["output_tokens"] == 1
    assert delta["usage"]["output_tokens"] == 143
    assert delta["usage"]["output_tokens_details"] == {"thinking_tokens": 96}
    [sent] = fake.sent()
    assert sent.streaming
    assert sent.usage == dict(SCENARIOS["anthropic-stream-thinking"].usage)
    assert sent.stream_usage == [start["message"]["usage"], delta["usage"]]


@pytest.mark.parametrize(
    ("path", "scenario", "status", "error"),
    [
        ("/v1/chat/completions", "openai-rate-limit", 429, {"type": "tokens", "code": "rate_limit_exceeded"}),
        ("/v1/messages", "anthropic-rate-limit", 429, {"type": "rate_limit_error"}),
        ("/v1/messages", "anthropic-prompt-too-long", 400, {"type": "invalid_request_error"}),
    ],
)
def test_error_scenarios_send_the_real_error_shapes(
    fake: FakeProvider, path: str, scenario: str, status: int, error: dict[str, str]
) -> None:
    """Error scenarios answer with the provider's status and error JSON, and are logged without usage."""
    got_status, headers, raw = post(fake.base_url + path, {"model": "gpt-4o", "messages": []}, scenario)
    body = json.loads(raw)
    assert got_status == status
    assert error.items() <= body["error"].items()
    assert body["error"]["message"]
    if path == "/v1/messages":
        assert body["type"] == "error"
        assert body["request_id"] == headers["request-id"]
    if status == 429:
        assert int(headers["retry-after"]) > 0
    [sent] = fake.sent()
    assert (sent.http_status, sent.usage, sent.response_model, sent.error) == (status, None, None, body)


def test_unknown_scenario_and_path_are_rejected(fake: FakeProvider) -> None:
    """A scenario of the other provider is a 400 invalid_request_error; an unknown path is a 404."""
    status, _, raw = post(fake.base_url + "/v1/messages", {"model": "x"}, "openai-stream")
    assert status == 400
    assert "known: anthropic-" in json.loads(raw)["error"]["message"]
    assert post(fake.base_url + "/v1/embeddings", {})[0] == 404


def test_scenario_token_counts_are_all_different() -> None:
    """No two non-zero token counts of any scenarios are equal, so sums over the wrong calls cannot match."""

    def counts(node: object) -> list[int]:
        if isinstance(node, dict):
            return [count for value in node.values() for count in counts(value)]
        return [node] if isinstance(node, int) and node > 0 else []

    every = [count for scenario in SCENARIOS.values() for count in counts(dict(scenario.usage))]
    assert len(every) >= 16
    assert len(every) == len(set(every))


def eventstream(raw: bytes) -> list[tuple[dict[str, str], Any]]:
    """Split an AWS event stream into (headers, decoded payload), checking both CRC32s of each message."""
    import struct
    import zlib

    messages, offset = [], 0
    while offset < len(raw):
        total, headers_length, prelude_crc = struct.unpack(">III", raw[offset : offset + 12])
        message = raw[offset : offset + total]
        assert zlib.crc32(message[:8]) == prelude_crc
        assert zlib.crc32(message[:-4]) == struct.unpack(">I", message[-4:])[0]
        headers, cursor = {}, 12
        while cursor < 12 + headers_length:
            name_length = message[cursor]
            name = message[cursor + 1 : cursor + 1 + name_length].decode()
            value_type, value_length = struct.unpack(
                ">BH", message[cursor + 1 + name_length : cursor + 4 + name_length]
            )
            assert value_type == 7  # string
            start = cursor + 4 + name_length
            headers[name] = message[start : start + value_length].decode()
            cursor = start + value_length
        messages.append((headers, json.loads(message[12 + headers_length : -4])))
        offset += total
    return messages


def test_bedrock_converse_stream_is_framed_with_usage_excluding_cache_last(fake: FakeProvider) -> None:
    """ConverseStream: event-stream messages with valid CRCs; the metadata event carries the usage."""
    path = "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse-stream"
    status, headers, raw = post(fake.base_url + path, {"messages": []}, "bedrock-converse-stream")
    assert (status, headers["content-type"]) == (200, "application/vnd.amazon.eventstream")
    messages = eventstream(raw)
    assert [h[":event-type"] for h, _ in messages][:1] + [h[":event-type"] for h, _ in messages][-2:] == [
        "messageStart",
        "messageStop",
        "metadata",
    ]
    usage = messages[-1][1]["usage"]
    assert usage == dict(SCENARIOS["bedrock-converse-stream"].usage)
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] + usage["cacheReadInputTokens"]
    (entry,) = fake.sent()
    assert (entry.provider, entry.requested_model, entry.usage) == (
        "bedrock",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        usage,
    )


def test_bedrock_throttle_and_gemini_quota_errors(fake: FakeProvider) -> None:
    """Bedrock names the error in x-amzn-ErrorType; Gemini sends the google.rpc error body."""
    status, headers, raw = post(fake.base_url + "/model/m/converse", {}, "bedrock-throttled")
    assert (status, headers["x-amzn-errortype"].split(":")[0]) == (429, "ThrottlingException")
    assert "message" in json.loads(raw)
    status, _, raw = post(fake.base_url + "/v1beta/models/gemini-2.5-pro:generateContent", {}, "gemini-rate-limit")
    assert (status, json.loads(raw)["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")


def test_openai_responses_api_body_stream_and_log(fake: FakeProvider) -> None:
    """``/v1/responses``: a ``response`` object with its output items, or named events ending in
    ``response.completed``, the only one with usage; the log reads the usage back from either."""
    url = fake.openai_base_url + "/responses"
    status, _, raw = post(url, {"model": "gpt-4.1", "input": "hi"}, "openai-responses-cached-tool")
    body = json.loads(raw)
    assert (status, body["object"], body["model"], body["id"]) == (
        200,
        "response",
        "gpt-4.1-2025-04-14",
        "resp_fake000001",
    )
    assert [item["type"] for item in body["output"]] == ["function_call"]
    assert body["usage"]["input_tokens_details"]["cached_tokens"] == 2304
    status, _, raw = post(url, {"model": "o4-mini", "input": "hi", "stream": True}, "openai-responses-reasoning-stream")
    events = sse(raw)
    assert all(name == data["type"] for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert events[0][0] == "response.created" and events[-1][0] == "response.completed"
    assert [name for name, data in events if data.get("response", {}).get("usage")] == ["response.completed"]
    text = "".join(data["delta"] for name, data in events if name == "response.output_text.delta")
    assert text == SCENARIOS["openai-responses-reasoning-stream"].text
    first, second = fake.sent()
    assert (first.path, first.usage) == ("/v1/responses", body["usage"])
    assert second.streaming and second.usage == events[-1][1]["response"]["usage"]
    assert isinstance(second.usage, dict) and second.usage["output_tokens_details"] == {"reasoning_tokens": 768}
