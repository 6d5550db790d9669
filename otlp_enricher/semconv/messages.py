"""Prompt and completion content from any vocabulary → OTel ``gen_ai`` message form.

The output shape is the OTel v1.37+ one: ``[{"role": ..., "parts": [...], "finish_reason"?}]`` with
parts ``{"type": "text", "content"}`` and ``{"type": "tool_call", "id", "name", "arguments"}`` and
``{"type": "tool_call_response", "id", "response"}``. Read by the prompt-log connector only, so
spans are never decoded for content unless a prompt log is written.
"""

from __future__ import annotations

from typing import Any

import orjson

from otlp_enricher.semconv.attributes import Attributes

Message = dict[str, Any]


def input_messages(attrs: Attributes) -> list[Message]:
    """The prompt of a call: system instructions first, then the conversation sent."""
    system = _structured(attrs.get("gen_ai.system_instructions"))
    messages = _structured(attrs.get("gen_ai.input.messages"))
    if messages is not None:
        prefix = [{"role": "system", "parts": system}] if system else []
        return prefix + _as_messages(messages)
    for flat_prefix in ("llm.input_messages.", "gen_ai.prompt."):
        flat = _unflatten(attrs.with_prefix(flat_prefix))
        if flat:
            return [_openai_style(item) for item in flat]
    vercel = _structured(attrs.get("ai.prompt.messages"))
    if isinstance(vercel, list):
        return [_openai_style(item) for item in vercel if isinstance(item, dict)]
    return []


def output_messages(attrs: Attributes) -> list[Message]:
    """The completion of a call, with finish reasons and tool calls where recorded."""
    messages = _structured(attrs.get("gen_ai.output.messages"))
    if messages is not None:
        return _as_messages(messages)
    for prefix in ("llm.output_messages.", "gen_ai.completion."):
        flat = _unflatten(attrs.with_prefix(prefix))
        if flat:
            return [_openai_style(item) for item in flat]
    text = attrs.get("ai.response.text")
    tool_calls = _structured(attrs.get("ai.response.toolCalls"))
    if isinstance(text, str) or isinstance(tool_calls, list):
        parts: list[dict[str, Any]] = [{"type": "text", "content": text}] if isinstance(text, str) else []
        for call in tool_calls if isinstance(tool_calls, list) else []:
            if isinstance(call, dict):
                parts.append(_tool_call(call.get("toolCallId"), call.get("toolName"), call.get("args")))
        return [{"role": "assistant", "parts": parts}]
    return []


def _structured(value: Any) -> Any:
    """A JSON string decoded, a structured (array/kvlist) attribute as it is, else ``None``."""
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return value


def _as_messages(value: Any) -> list[Message]:
    if not isinstance(value, list):
        return []
    return [item if "parts" in item else _openai_style(item) for item in value if isinstance(item, dict)]


def _unflatten(flat: dict[str, Any]) -> list[dict[str, Any]]:
    """``{"0.message.role": "user", ...}`` → ``[{"message": {"role": "user"}}]`` (lists by index)."""
    root: dict[str, Any] = {}
    for path, value in flat.items():
        node = root
        parts = path.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    converted = _lists(root)
    return [item for item in converted if isinstance(item, dict)] if isinstance(converted, list) else []


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_lists(node[key]) for key in sorted(node, key=int)]
    return {key: _lists(value) for key, value in node.items()}


def _openai_style(item: dict[str, Any]) -> Message:
    """One message in OpenAI / OpenInference / OpenLLMetry / Vercel shape → OTel parts form."""
    message = item.get("message", item)
    if not isinstance(message, dict):
        return {"role": "unknown", "parts": []}
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        parts.extend(_content_part(part) for part in content if isinstance(part, dict))
    for part in _contents_list(message.get("contents")):
        parts.append(part)
    tool_calls = message.get("tool_calls")
    for call in tool_calls if isinstance(tool_calls, list) else []:
        if isinstance(call, dict):
            call = call.get("tool_call", call)
            function = call.get("function") if isinstance(call.get("function"), dict) else call
            parts.append(_tool_call(call.get("id"), function.get("name"), function.get("arguments")))
    tool_call_id = message.get("tool_call_id")
    if tool_call_id and message.get("role") == "tool":
        parts = [{"type": "tool_call_response", "id": tool_call_id, "response": content}]
    result: Message = {"role": str(message.get("role", "unknown")), "parts": parts}
    if "finish_reason" in item or "finish_reason" in message:
        result["finish_reason"] = item.get("finish_reason", message.get("finish_reason"))
    return result


def _contents_list(contents: Any) -> list[dict[str, Any]]:
    if not isinstance(contents, list):
        return []
    parts = []
    for entry in contents:
        body = entry.get("message_content", entry) if isinstance(entry, dict) else None
        if isinstance(body, dict) and isinstance(body.get("text"), str):
            parts.append({"type": "text", "content": body["text"]})
    return parts


def _content_part(part: dict[str, Any]) -> dict[str, Any]:
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "content": part.get("text", part.get("content"))}
    if kind in ("tool-call", "tool_use"):
        return _tool_call(
            part.get("toolCallId", part.get("id")),
            part.get("toolName", part.get("name")),
            part.get("args", part.get("input")),
        )
    if kind in ("tool-result", "tool_result"):
        return {
            "type": "tool_call_response",
            "id": part.get("toolCallId", part.get("tool_use_id")),
            "response": part.get("result", part.get("output", part.get("content"))),
        }
    return {"type": str(kind or "unknown")}


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}
