"""Cost to the cent, against the providers' published list prices (USD per million tokens).

Expected figures are computed here from the public price pages, not from the code under test:
gpt-4o $2.50 in / $1.25 cached in / $10 out; o3-mini $1.10 / $0.55 / $4.40;
claude-sonnet-4-5 $3 in / $0.30 cache read / $3.75 5-minute write / $6 1-hour write / $15 out,
and above 200k input tokens $6 / $0.60 / $7.50 / $12 / $22.50.
"""

from __future__ import annotations

import sys
import tracemalloc

import pytest

from otlp_enricher.model import Tokens
from otlp_enricher.processor.pricing import MAX_MODEL_NAME, PriceBook, PriceOverride, PricingSettings

M = 1_000_000


def book(**settings: object) -> PriceBook:
    """A price book over genai-prices with optional aliases/overrides/discounts."""
    defaults: dict[str, object] = {"aliases": {}, "overrides": {}, "discounts": {}}
    defaults.update(settings)
    return PriceBook(PricingSettings(**defaults))  # type: ignore[arg-type]


def test_openai_cached_input_is_a_subset_priced_at_the_cached_rate() -> None:
    """OpenAI's prompt_tokens include cached ones: 1000 in, 400 of them cached, 300 out."""
    card = book().card("openai", "gpt-4o-2024-08-06")
    assert card is not None
    cost = card.cost(Tokens(input=1000, output=300, cache_read=400))
    assert cost == pytest.approx((600 * 2.50 + 400 * 1.25 + 300 * 10.0) / M, abs=1e-12)


def test_reasoning_tokens_are_inside_output_and_not_paid_twice() -> None:
    """o3-mini: 500 output tokens of which 320 reasoning cost 500 output tokens, not 820."""
    card = book().card("openai", "o3-mini-2025-01-31")
    assert card is not None
    cost = card.cost(Tokens(input=200, output=500, reasoning=320))
    assert cost == pytest.approx((200 * 1.10 + 500 * 4.40) / M, abs=1e-12)


def test_anthropic_cache_reads_and_both_write_ttls() -> None:
    """Input total 10 000 = 1 000 fresh + 6 000 read + 2 000 5-minute write + 1 000 1-hour write."""
    card = book().card("anthropic", "claude-sonnet-4-5-20250929")
    assert card is not None
    tokens = Tokens(input=10_000, output=800, cache_read=6_000, cache_write_5m=2_000, cache_write_1h=1_000)
    expected = (1_000 * 3.0 + 6_000 * 0.30 + 2_000 * 3.75 + 1_000 * 6.0 + 800 * 15.0) / M
    assert card.cost(tokens) == pytest.approx(expected, abs=1e-12)


def test_long_context_tier_reprices_every_token_above_200k() -> None:
    """Past 200 000 input tokens (cache included) the whole request moves to the higher tier."""
    card = book().card("anthropic", "claude-sonnet-4-5")
    assert card is not None
    at_limit = card.cost(Tokens(input=200_000, output=1_000))
    above = card.cost(Tokens(input=200_001, output=1_000, cache_read=100_000))
    assert at_limit == pytest.approx((200_000 * 3.0 + 1_000 * 15.0) / M, abs=1e-12)
    assert above == pytest.approx((100_001 * 6.0 + 100_000 * 0.60 + 1_000 * 22.50) / M, abs=1e-12)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-2024-08-06"),
        ("openai", "openai/gpt-4o"),
        ("", "openai/gpt-4o"),
        ("azure.ai.openai", "gpt-4o"),
    ],
)
def test_model_names_resolve_through_snapshots_and_prefixes(provider: str, model: str) -> None:
    """Dated snapshots, provider prefixes and Azure all land on gpt-4o's price."""
    card = book().card(provider, model)
    assert card is not None
    assert card.cost(Tokens(input=M, output=0)) == pytest.approx(2.50)


def test_bedrock_model_ids_resolve() -> None:
    """A Bedrock cross-region inference profile id resolves to the Claude 3.5 Sonnet price."""
    card = book().card("aws.bedrock", "us.anthropic.claude-3-5-sonnet-20240620-v1:0")
    assert card is not None
    assert card.cost(Tokens(input=M, output=M)) == pytest.approx(3.0 + 15.0)


def test_unknown_model_is_unpriced_not_free() -> None:
    """A model nobody prices gives no card at all (never a $0 one)."""
    assert book().card("openai", "my-finetune-that-does-not-exist") is None


def test_alias_maps_an_azure_deployment_name() -> None:
    """A deployment name means nothing to a price table until an alias names the model."""
    assert book().card("azure.ai.openai", "prod-chat-east") is None
    card = book(aliases={"prod-chat-east": "openai/gpt-4o-mini"}).card("azure.ai.openai", "prod-chat-east")
    assert card is not None
    assert card.cost(Tokens(input=M, output=M)) == pytest.approx(0.15 + 0.60)


def test_override_prices_a_self_hosted_model_and_a_discount_applies() -> None:
    """A self-hosted model at a price we set, and a 20 % negotiated discount on OpenAI."""
    overrides = {"llama-3-70b-local": PriceOverride(input_mtok=0.0, output_mtok=0.0)}
    priced = book(overrides=overrides, discounts={"openai": 0.2})
    local = priced.card("vllm", "llama-3-70b-local")
    assert local is not None and local.source == "override"
    assert local.cost(Tokens(input=1000, output=1000)) == 0.0
    discounted = priced.card("openai", "gpt-4o")
    assert discounted is not None
    assert discounted.cost(Tokens(input=M, output=0)) == pytest.approx(2.50 * 0.8)


def test_partial_override_keeps_database_prices_for_the_rest() -> None:
    """Overriding only the output price of gpt-4o keeps its input and cached-input prices."""
    card = book(overrides={"openai/gpt-4o": PriceOverride(output_mtok=5.0)}).card("openai", "gpt-4o")
    assert card is not None
    cost = card.cost(Tokens(input=1000, output=1000, cache_read=500))
    assert cost == pytest.approx((500 * 2.50 + 500 * 1.25 + 1000 * 5.0) / M, abs=1e-12)


def test_resolution_cache_is_bounded() -> None:
    """A million distinct model names cannot grow the cache past its bound."""
    priced = book(max_cached_models=50)
    for index in range(500):
        priced.card("openai", f"unknown-model-{index}")
    assert len(priced._cache) == 50


def test_resolution_cache_is_bounded_by_bytes_and_genai_prices_keeps_nothing() -> None:
    """Distinct long model names (40 × 3 × 500 characters here; 40 × 4 MiB once kept ~500 MB)
    leave at most ``max_cached_bytes`` in the cache, and genai-prices' own lookup caches hold none."""
    bound = 16 << 10
    priced = book(max_cached_bytes=bound)
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        for index in range(40):
            for provider in ("openai", "", "unknown"):
                priced.card(provider, f"gpt-4o-{index}-".ljust(MAX_MODEL_NAME, "x"))
        retained, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert 0 < priced.cached_bytes <= bound
    assert priced.cached_bytes == sum(sys.getsizeof(p) + sys.getsizeof(m) + 1024 for p, m in priced._cache)
    snapshot = priced._snapshot
    assert not snapshot._lookup_cache and not snapshot._provider_cache and not snapshot._provider_misses
    assert retained - before < 2 * bound  # the names asked about: 60 KB


def test_a_model_name_too_long_to_be_one_is_unpriced_without_a_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each lookup matches the name against every model's patterns: a 4 MiB name cost seconds."""
    priced = book()
    lookups: list[str] = []
    find = priced._find

    def counted(provider: str, model: str) -> object:
        lookups.append(model)
        return find(provider, model)

    monkeypatch.setattr(priced, "_find", counted)
    assert priced.card("openai", "gpt-4o") is not None
    assert priced.card("openai", "gpt-4o" + "x" * MAX_MODEL_NAME) is None
    assert lookups == ["gpt-4o"] and list(priced._cache) == [("openai", "gpt-4o")]


def test_an_entry_larger_than_the_whole_cache_is_priced_but_not_kept() -> None:
    """A provider name is not length-capped: a huge one is resolved each time, never cached."""
    priced = book(max_cached_bytes=64 << 10)
    assert priced.card("openai", "gpt-4o") is not None
    assert priced.card("p" * (128 << 10), "gpt-4o") is not None  # found by its model name alone
    assert list(priced._cache) == [("openai", "gpt-4o")] and priced.cached_bytes < 64 << 10


NOV_2026_NS = 1_793_491_200 * 1_000_000_000  # 2026-11-01: OpenAI's tier prices are in the table by then


@pytest.mark.parametrize(
    ("provider", "model", "card_provider", "per_mtok_in_out"),
    [
        # Bedrock cross-region (geo) profile: Claude Sonnet 4.5 at $3.30 / $16.50 (10 % over global)
        ("unknown", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock", (3.30, 16.50)),
        ("aws.bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "aws.bedrock", (3.30, 16.50)),
        # OpenAI fine-tuned gpt-4o (2024-08-06): $3.75 / $15; gpt-4o-mini: $0.30 / $1.20
        ("unknown", "ft:gpt-4o-2024-08-06:acme::A1b2C3", "openai", (3.75, 15.0)),
        ("openai", "ft:gpt-4o-mini-2024-07-18:acme:support:X9", "openai", (0.30, 1.20)),
        # Gemini API resource names: gemini-2.5-flash $0.30 / $2.50
        ("unknown", "models/gemini-2.5-flash", "gcp.gemini", (0.30, 2.50)),
        ("gcp.gemini", "models/gemini-2.5-flash", "gcp.gemini", (0.30, 2.50)),
        # provider/model with no provider attribute: the label follows the price
        ("unknown", "openai/gpt-4o", "openai", (2.50, 10.0)),
    ],
)
def test_model_ids_resolve_and_the_provider_follows_the_price(
    provider: str, model: str, card_provider: str, per_mtok_in_out: tuple[float, float]
) -> None:
    """Ids providers really return, with or without a provider attribute, resolve to their list price."""
    card = book().card(provider, model)
    assert card is not None
    assert card.provider == card_provider
    assert card.cost(Tokens(input=M, output=M)) == pytest.approx(sum(per_mtok_in_out))


def test_discounts_and_overrides_follow_the_resolved_provider() -> None:
    """``openai/gpt-4o`` with no provider attribute gets the openai discount and openai/ override."""
    discounted = book(discounts={"openai": 0.2}).card("unknown", "openai/gpt-4o")
    assert discounted is not None and discounted.cost(Tokens(input=M)) == pytest.approx(2.50 * 0.8)
    bedrock = book(
        overrides={"aws.bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0": PriceOverride(input_mtok=2.0)}
    )
    card = bedrock.card("unknown", "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    assert card is not None and card.cost(Tokens(input=M)) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("model", "tier", "per_mtok_in_out"),
    [
        ("gpt-4o", "priority", (4.25, 17.0)),  # OpenAI priority processing
        ("gpt-4o", "default", (2.50, 10.0)),
        ("gpt-4o", "auto", (2.50, 10.0)),
        ("o3", "flex", (1.00, 4.00)),  # flex: half of o3's $2 / $8
        ("gpt-4o", "batch", (1.25, 5.00)),  # Batch API: half price
    ],
)
def test_openai_service_tiers_are_priced(model: str, tier: str, per_mtok_in_out: tuple[float, float]) -> None:
    """The tier a span carries picks OpenAI's tier price; the list price otherwise."""
    card = book().card("openai", model, NOV_2026_NS, tier)
    assert card is not None
    assert card.cost(Tokens(input=M, output=M)) == pytest.approx(sum(per_mtok_in_out))
