"""Provider names from every vocabulary → the OTel ``gen_ai.provider.name`` values.

Older OTel releases and OpenLLMetry before semconv-ai 0.5 used other spellings (``az.ai.openai``,
``vertex_ai``, capitalised ``Anthropic``); OpenInference separates the product (``llm.system``) from
the host (``llm.provider``); the Vercel AI SDK writes ``openai.chat``-style ids.
"""

from __future__ import annotations

_ALIASES = {
    "az.ai.openai": "azure.ai.openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "azure-openai": "azure.ai.openai",
    "az.ai.inference": "azure.ai.inference",
    "vertex_ai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "google-vertex": "gcp.vertex_ai",
    "gemini": "gcp.gemini",
    "google": "gcp.gemini",
    "google.generative-ai": "gcp.gemini",
    "aws": "aws.bedrock",
    "bedrock": "aws.bedrock",
    "amazon-bedrock": "aws.bedrock",
    "xai": "x_ai",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "watsonx": "ibm.watsonx.ai",
    "ibm.watson.ai": "ibm.watsonx.ai",
}

# OTel provider name → the provider id genai-prices files prices under.
PRICE_PROVIDER_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "perplexity": "perplexity",
    "x_ai": "x-ai",
}


def normalise_provider(raw: str) -> str:
    """Map any vocabulary's provider value to the OTel spelling (lower-case, dotted)."""
    name = raw.strip().lower()
    if "." in name and name.split(".", 1)[1] in {"chat", "messages", "completion", "responses", "embedding"}:
        name = name.split(".", 1)[0]  # Vercel AI SDK: "openai.chat", "anthropic.messages"
    return _ALIASES.get(name, name)


# genai-prices provider id → the OTel provider name a call priced under it is labelled with.
_PROVIDER_FOR_PRICE_ID = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws": "aws.bedrock",
    "azure": "azure.ai.openai",
    "google": "gcp.gemini",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral_ai",
    "perplexity": "perplexity",
    "x-ai": "x_ai",
}


def provider_for_price_id(price_provider_id: str) -> str:
    """The OTel provider name for a genai-prices provider id (unknown ids pass through)."""
    return _PROVIDER_FOR_PRICE_ID.get(price_provider_id, price_provider_id)
