"""Prices: the deployment's own per field, else the vendored map's; cache reads and writes at
their own price; the vendored snapshot is dated and licensed; refresh-prices replaces it."""
import json

import pytest

from webapp.services import prices
from webapp.services.prices import Prices


def test_cache_tokens_are_billed_at_their_own_price():
    price = Prices(input=2e-6, output=8e-6, cache_read=5e-7, cache_write=2.5e-6)
    # 1,000 prompt tokens of which 600 read from the cache and 100 written to it
    assert price.cost(1000, 50, cache_read=600, cache_write=100) == pytest.approx(
        300 * 2e-6 + 600 * 5e-7 + 100 * 2.5e-6 + 50 * 8e-6, abs=1e-15)
    assert Prices(1e-6, 2e-6).cost(10, 10, cache_read=5) == pytest.approx(30e-6)


def test_a_deployments_own_prices_win_field_by_field():
    own = prices.prices_of({"model": "openai/gpt-4o", "input_cost_per_token": 1e-6})
    assert (own.input, own.output, own.cache_read) == (1e-6, 1e-5, 1.25e-6)
    mapped = prices.prices_of({"model": "azure/my-deployment"}, {"base_model": "gpt-4o"})
    assert (mapped.input, mapped.output) == (2.5e-6, 1e-5)
    assert prices.prices_of({"model": "openai/teamgate-private-model-x"}) is None
    custom = prices.prices_of({"model": "openai/teamgate-private-model-x",
                               "output_cost_per_token": 3e-6})
    assert (custom.input, custom.output) == (0.0, 3e-6)


def test_the_vendored_map_is_dated_licensed_and_small():
    data = json.loads(prices.MAP_PATH.read_text())
    assert data["taken"] == "2026-12-02" and "LiteLLM" in data["source"]
    assert "MIT License" in (prices.MAP_PATH.parent / "LICENSE-model-prices").read_text()
    assert len(data["models"]) > 1000
    kept = {field for entry in data["models"].values() for field in entry}
    assert kept <= set(prices.KEPT_FIELDS)
    assert prices.MAP_PATH.stat().st_size < 1_000_000


def test_refresh_prices_rewrites_the_map_from_litellms_file(runner, tmp_path, monkeypatch):
    target = tmp_path / "model_prices.json"
    monkeypatch.setattr(prices, "MAP_PATH", target)
    source = tmp_path / "litellm.json"
    source.write_text(json.dumps({
        "sample_spec": {"input_cost_per_token": 0},
        "new-model": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
                      "litellm_provider": "openai", "supports_vision": True, "mode": "chat"},
        "image-model": {"output_cost_per_image": 0.04}}))
    result = runner.invoke(args=["refresh-prices", str(source)])
    assert result.exit_code == 0, result.output
    assert "Wrote 1 model prices" in result.output
    written = json.loads(target.read_text())
    assert written["models"] == {"new-model": {"input_cost_per_token": 1e-6,
                                               "output_cost_per_token": 2e-6, "mode": "chat"}}
    assert prices.known("openai/new-model")["output_cost_per_token"] == 2e-6
    source.write_text("[1, 2]")
    refused = runner.invoke(args=["refresh-prices", str(source)])
    assert refused.exit_code != 0 and json.loads(target.read_text()) == written
    prices.reload_map()


@pytest.fixture(autouse=True)
def fresh_map():
    prices.reload_map()
    yield
    prices.reload_map()

