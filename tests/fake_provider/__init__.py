"""A small stdlib-only fake of the OpenAI and Anthropic HTTP APIs, for recording and testing LLM spans.

Start it with ``with FakeProvider() as fake:``, point the real SDKs at ``fake.openai_base_url`` /
``fake.base_url``, pick a scenario per request with the ``x-fake-scenario`` header, and read what it
answered from ``fake.sent()``.
"""

from .scenarios import SCENARIO_HEADER, SCENARIOS, Scenario, response_model
from .server import FakeProvider, SentResponse

__all__ = ["SCENARIOS", "SCENARIO_HEADER", "FakeProvider", "Scenario", "SentResponse", "response_model"]
