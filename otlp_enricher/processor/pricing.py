"""Cost in USD of one call, from the genai-prices database plus the operator's overrides.

Prices are resolved once per (provider, model) into a :class:`PriceCard` of per-token rates, so the
per-call cost is arithmetic only. Token semantics follow ``model.Tokens``: input includes cache
reads and writes, output includes reasoning; each subset is priced at its own rate and taken out of
its parent so nothing is paid twice (the leaf model genai-prices uses too). Long-context tiers
reprice *every* token of a request once its input total passes the tier start, as providers bill.

Model names are resolved the way providers spell them: dated snapshots, ``provider/model``,
Bedrock ids (``us.anthropic.claude-sonnet-4-5-20250929-v1:0``, even with no provider attribute),
OpenAI fine-tunes (``ft:gpt-4o-…:org::id``, priced at OpenAI's fine-tuned rates) and Gemini
resource names (``models/gemini-2.5-flash``). The provider the price was found under is the call's
provider from then on (:attr:`PriceCard.provider`), so its overrides and discounts apply even when
the span named none. OpenAI service tiers (``priority``, ``flex``; ``batch`` processing) use
genai-prices' price variants when the span carries the tier.
"""

from __future__ import annotations

import bisect
import re
import sys
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import data_snapshot
from genai_prices import types as gp

from otlp_enricher.model import CostSource, Tokens
from otlp_enricher.semconv.providers import PRICE_PROVIDER_IDS, provider_for_price_id

_MTOK = 1_000_000.0
# Bedrock model ids: optional cross-region profile prefix, vendor, model, version suffix.
_BEDROCK_ID = re.compile(
    r"^(?:(?:us|eu|apac|au|jp|ca|us-gov|global)\.)?"
    r"(?:anthropic|amazon|meta|mistral|cohere|ai21|deepseek|openai|qwen|writer|twelvelabs)\.[\w.:-]+$"
)
_UNKNOWN_PROVIDERS = frozenset({"", "unknown"})
# OpenAI's service_tier values with their own prices (genai-prices price variants); "default" and
# "auto" are the list price. Batch is a processing mode there, not a tier.
_TIER_CONTEXTS: dict[str, Mapping[str, str]] = {
    "priority": {"service_tier": "priority"},
    "flex": {"service_tier": "flex"},
    "batch": {"processing": "batch"},
}
RATE_FIELDS = ("input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning")


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token for each token kind, and USD per request."""

    input: float
    output: float
    cache_read: float
    cache_write_5m: float
    cache_write_1h: float
    reasoning: float
    per_request: float = 0.0

    def cost(self, tokens: Tokens) -> float:
        """USD for ``tokens`` at these rates (subsets priced once, at their own rate)."""
        uncached_input = max(tokens.input - tokens.cache_read - tokens.cache_write, 0)
        plain_output = max(tokens.output - tokens.reasoning, 0)
        return (
            uncached_input * self.input
            + tokens.cache_read * self.cache_read
            + tokens.cache_write_5m * self.cache_write_5m
            + tokens.cache_write_1h * self.cache_write_1h
            + plain_output * self.output
            + tokens.reasoning * self.reasoning
            + self.per_request
        )


@dataclass(frozen=True, slots=True)
class PriceCard:
    """Everything needed to price calls of one model: base rates and long-context tiers."""

    provider_id: str
    model_id: str
    source: CostSource
    base: Rates
    tier_starts: tuple[int, ...] = ()
    tier_rates: tuple[Rates, ...] = ()
    provider: str = ""  # the OTel provider name the price belongs to ("" when not known)

    def rates_for(self, input_tokens: int) -> Rates:
        """The rates that apply to a request with ``input_tokens`` input tokens in all."""
        if not self.tier_starts:
            return self.base
        index = bisect.bisect_left(self.tier_starts, input_tokens) - 1  # tier applies when input > start
        return self.base if index < 0 else self.tier_rates[index]

    def cost(self, tokens: Tokens) -> float:
        """USD for one call's tokens."""
        return self.rates_for(tokens.input).cost(tokens)


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """Operator-supplied prices in USD per million tokens; unset fields keep the database price."""

    input_mtok: float | None = None
    output_mtok: float | None = None
    cache_read_mtok: float | None = None
    cache_write_mtok: float | None = None
    cache_write_1h_mtok: float | None = None
    output_reasoning_mtok: float | None = None
    request_usd: float | None = None


@dataclass(frozen=True, slots=True)
class PricingSettings:
    """The validated ``processors.genai.pricing`` config."""

    aliases: Mapping[str, str]
    overrides: Mapping[str, PriceOverride]
    discounts: Mapping[str, float]
    prefer_span_cost: bool = True
    max_cached_models: int = 10_000
    max_cached_bytes: int = 8 << 20  # model and provider names plus a per-entry overhead


MAX_MODEL_NAME = 512
"""Longer names are not model ids (Bedrock inference-profile ARNs are far shorter): unpriced, never
looked up, since each lookup matches the name against every model's patterns."""
_ENTRY_BYTES = 1024
"""What one cached resolution costs besides its names (the key tuple, the resolution, its cards)."""


class _Forgetful(dict[Any, Any]):
    """A dict that keeps nothing: genai-prices' lookup caches, keyed by every model name asked
    about, found or not, would otherwise grow without bound (:class:`PriceBook` caches instead)."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _ForgetfulSet(set[Any]):
    def add(self, item: Any) -> None:
        pass


def _uncached_snapshot() -> data_snapshot.DataSnapshot:
    """genai-prices' bundled price data behind lookups that cache nothing."""
    bundled = data_snapshot.get_snapshot()
    snapshot = data_snapshot.DataSnapshot(
        providers=bundled.providers, from_auto_update=bundled.from_auto_update, _lookup_cache=_Forgetful()
    )
    snapshot._provider_cache = _Forgetful()
    snapshot._provider_misses = _ForgetfulSet()
    return snapshot


class PriceBook:
    """Resolves (provider, model) to a :class:`PriceCard` once, and prices calls from it.

    Resolutions are cached least recently used first out, bounded by ``max_cached_models`` entries
    and ``max_cached_bytes`` (names plus a fixed overhead per entry), so distinct model names cannot
    grow memory; genai-prices' own lookup caches are switched off (:func:`_uncached_snapshot`).
    """

    def __init__(self, settings: PricingSettings) -> None:
        self._settings = settings
        self._snapshot = _uncached_snapshot()
        self._cache: OrderedDict[tuple[str, str], _Resolution | None] = OrderedDict()
        self.cached_bytes = 0

    def card(self, provider: str, model: str, at_ns: int = 0, service_tier: str = "") -> PriceCard | None:
        """The price card for a call of ``model`` at ``provider`` starting at ``at_ns`` (in
        ``service_tier`` when the span names one), if priced."""
        if len(model) > MAX_MODEL_NAME:
            return None
        key = (provider, model)
        cache = self._cache
        if key in cache:
            cache.move_to_end(key)
            resolution = cache[key]
        else:
            resolution = self._resolve(provider, model)
            self._remember(key, resolution)
        return None if resolution is None else resolution.card_at(at_ns, service_tier)

    def _remember(self, key: tuple[str, str], resolution: _Resolution | None) -> None:
        size = _entry_bytes(key)
        settings = self._settings
        if size > settings.max_cached_bytes:
            return  # resolved again each time, never kept
        cache = self._cache
        cache[key] = resolution
        self.cached_bytes += size
        while len(cache) > settings.max_cached_models or self.cached_bytes > settings.max_cached_bytes:
            oldest, _ = cache.popitem(last=False)
            self.cached_bytes -= _entry_bytes(oldest)

    def _resolve(self, provider: str, model: str) -> _Resolution | None:
        settings = self._settings
        target = settings.aliases.get(model) or settings.aliases.get(f"{provider}/{model}")
        if target:
            provider, model = _split_ref(target, provider)
        found = self._find(provider, model)
        if found is not None and provider in _UNKNOWN_PROVIDERS:
            provider = provider_for_price_id(found[0].id)  # overrides and discounts follow the price
        override = settings.overrides.get(f"{provider}/{model}") or settings.overrides.get(model)
        discount = settings.discounts.get(f"{provider}/{model}", settings.discounts.get(provider, 0.0))
        if found is None:
            if override is None or override.input_mtok is None or override.output_mtok is None:
                return None  # a partial override cannot price a model the database does not know
            base = _apply_override(_ZERO_RATES, override, discount)
            card = PriceCard(
                provider, model, "override", base, provider="" if provider in _UNKNOWN_PROVIDERS else provider
            )
            return _Resolution(card, None, override, discount, card.provider)
        price_provider, info = found
        return _Resolution(None, (price_provider.id, info), override, discount, provider)

    def _find(self, provider: str, model: str) -> tuple[Any, Any] | None:
        provider_id = PRICE_PROVIDER_IDS.get(provider)
        candidates: list[tuple[str | None, str]] = []
        if "/" in model:
            prefix, bare = model.split("/", 1)
            if prefix == "models":  # Gemini API resource name: models/gemini-2.5-flash
                candidates.append((provider_id or "google", bare))
            else:
                candidates.append((PRICE_PROVIDER_IDS.get(prefix, prefix), bare))
        if provider_id:
            candidates.append((provider_id, model))
        if provider in ("azure.ai.openai", "azure.ai.inference"):
            candidates.append(("openai", model))  # Azure serves OpenAI models at OpenAI's list price
        if model.startswith("ft:"):
            candidates.append(("openai", model))  # OpenAI fine-tune ids: ft:<base>:<org>:<name>:<id>
        if _BEDROCK_ID.match(model):
            candidates.append(("aws", model))
        candidates.append((None, model))
        for candidate_provider, candidate_model in candidates:
            try:
                return self._snapshot.find_provider_model(candidate_model, None, candidate_provider, None)
            except LookupError:
                continue
        return None


class _Resolution:
    """A resolved model: a fixed card, or genai-prices' dated price sets turned into cards lazily."""

    __slots__ = ("_cards", "_discount", "_fixed", "_info", "_override", "_provider")

    def __init__(
        self,
        fixed: PriceCard | None,
        info: tuple[str, Any] | None,
        override: PriceOverride | None,
        discount: float,
        provider: str,
    ) -> None:
        self._fixed = fixed
        self._info = info
        self._override = override
        self._discount = discount
        self._provider = "" if provider in _UNKNOWN_PROVIDERS else provider
        self._cards: dict[tuple[int, str, tuple[bool, ...]], PriceCard] = {}

    def card_at(self, at_ns: int, service_tier: str = "") -> PriceCard | None:
        if self._fixed is not None:
            return self._fixed
        assert self._info is not None
        provider_id, info = self._info
        context = _TIER_CONTEXTS.get(service_tier) if info.price_variants else None
        if isinstance(info.prices, gp.ModelPrice) and context is None:
            card = self._card(provider_id, info, info.prices, (id(info.prices), "", ()))
        else:  # dated or time-of-day price sets, tiers: pick the one in force when the call started
            when = datetime.fromtimestamp(at_ns / 1e9, UTC) if at_ns else datetime.now(UTC)
            standard = info.get_prices(when)
            if context is None:
                card = self._card(provider_id, info, standard, (id(standard), "", ()))
            else:
                active = tuple(v.constraint is None or v.constraint.active(when) for v in info.price_variants)
                key = (id(standard), service_tier, active)
                card = self._cards.get(key) or self._card(provider_id, info, info.get_prices(when, context), key)
        return card if _has_token_prices(card) else None

    def _card(self, provider_id: str, info: Any, model_price: Any, key: tuple[int, str, tuple[bool, ...]]) -> PriceCard:
        card = self._cards.get(key)
        if card is None:
            card = _card_from_model_price(provider_id, info.id, model_price, self._override, self._discount)
            card = replace(card, provider=self._provider or provider_for_price_id(provider_id))
            self._cards[key] = card
        return card


_ZERO_RATES = Rates(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _entry_bytes(key: tuple[str, str]) -> int:
    return sys.getsizeof(key[0]) + sys.getsizeof(key[1]) + _ENTRY_BYTES


def _split_ref(ref: str, default_provider: str) -> tuple[str, str]:
    if "/" in ref:
        provider, model = ref.split("/", 1)
        return provider, model
    return default_provider, ref


def _has_token_prices(card: PriceCard) -> bool:
    return card.source == "override" or card.base.input > 0 or card.base.output > 0


def _card_from_model_price(
    provider_id: str, model_id: str, price: Any, override: PriceOverride | None, discount: float
) -> PriceCard:
    starts = sorted(
        {tier.start for value in vars(price).values() if isinstance(value, gp.TieredPrices) for tier in value.tiers}
    )
    base = _rates_at(price, -1)
    tiers = tuple(_rates_at(price, start) for start in starts)
    if override is not None or discount:
        base = _apply_override(base, override, discount)
        tiers = tuple(_apply_override(rates, override, discount) for rates in tiers)
    source: CostSource = "override" if override is not None else "price_table"
    return PriceCard(provider_id, model_id, source, base, tuple(starts), tiers)


def _rates_at(price: Any, tier_start: int) -> Rates:
    """Per-token rates of a genai-prices ``ModelPrice`` for requests in the tier starting at ``tier_start``."""

    def rate(*price_keys: str) -> float | None:
        for key in price_keys:
            value = getattr(price, key, None)
            if value is None:
                continue
            if isinstance(value, gp.TieredPrices):
                chosen: Decimal = value.base
                for tier in value.tiers:
                    if tier.start <= tier_start:
                        chosen = tier.price
                value = chosen
            return float(value) / _MTOK
        return None

    input_rate = rate("input_mtok") or 0.0
    output_rate = rate("output_mtok") or 0.0
    cache_write = rate("cache_write_mtok")
    requests = rate("requests_kcount")
    return Rates(
        input=input_rate,
        output=output_rate,
        cache_read=_first(rate("cache_read_mtok"), input_rate),
        cache_write_5m=_first(rate("cache_write_5m_mtok"), cache_write, input_rate),
        cache_write_1h=_first(rate("cache_write_1h_mtok"), cache_write, input_rate),
        reasoning=_first(rate("output_reasoning_mtok"), output_rate),
        per_request=0.0 if requests is None else requests * _MTOK / 1000.0,
    )


def _first(*values: float | None) -> float:
    for value in values:
        if value is not None:
            return value
    return 0.0


def _apply_override(rates: Rates, override: PriceOverride | None, discount: float) -> Rates:
    if override is not None:
        changes: dict[str, float] = {}
        pairs = (
            ("input", override.input_mtok),
            ("output", override.output_mtok),
            ("cache_read", override.cache_read_mtok),
            ("cache_write_5m", override.cache_write_mtok),
            ("cache_write_1h", override.cache_write_1h_mtok or override.cache_write_mtok),
            ("reasoning", override.output_reasoning_mtok or override.output_mtok),
        )
        for name, value in pairs:
            if value is not None:
                changes[name] = value / _MTOK
        if override.request_usd is not None:
            changes["per_request"] = override.request_usd
        if override.input_mtok is not None and override.cache_read_mtok is None and rates.cache_read == 0:
            changes["cache_read"] = override.input_mtok / _MTOK
        rates = replace(rates, **changes)
    if discount:
        keep = 1.0 - discount
        rates = Rates(*(getattr(rates, name) * keep for name in (*RATE_FIELDS, "per_request")))
    return rates
