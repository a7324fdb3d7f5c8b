"""What one call costs: the deployment's own prices (litellm_params input_cost_per_token,
output_cost_per_token, cache_read_input_token_cost, cache_creation_input_token_cost) where set,
else the vendored price map (webapp/data/model_prices.json, a dated snapshot of LiteLLM's
MIT-licensed model_prices_and_context_window.json) by upstream model name. A model priced by
neither is unpriced: its calls cost None, never 0.

prompt_tokens counts cached tokens too (OpenAI's convention, which every answer follows): cache
reads and writes are billed at their own price and the rest of the prompt at the input price."""
import json
import threading
from dataclasses import dataclass
from pathlib import Path

from webapp.extensions import db
from webapp.models import Deployment
from webapp.services.cache import routing_cache

MAP_PATH = Path(__file__).resolve().parent.parent / "data" / "model_prices.json"
PRICE_FIELDS = ("input_cost_per_token", "output_cost_per_token",
                "cache_read_input_token_cost", "cache_creation_input_token_cost")
KEPT_FIELDS = PRICE_FIELDS + ("max_tokens", "max_input_tokens", "max_output_tokens", "mode")
_map_lock = threading.Lock()
_map: dict | None = None


@dataclass(frozen=True)
class Prices:
    """USD per token; cache prices None mean the input price."""
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None

    def cost(self, prompt: int | None, completion: int | None, cache_read: int | None = None,
             cache_write: int | None = None) -> float:
        cache_read, cache_write = cache_read or 0, cache_write or 0
        plain = max(0, (prompt or 0) - cache_read - cache_write)
        read_price = self.input if self.cache_read is None else self.cache_read
        write_price = self.input if self.cache_write is None else self.cache_write
        return (plain * self.input + cache_read * read_price + cache_write * write_price
                + (completion or 0) * self.output)


@dataclass(frozen=True)
class Priced:
    """What the request log needs of a deployment: its prices (None: unpriced) and whether it
    is a team's own model (spent on apart from global models)."""
    prices: Prices | None
    team_id: str | None


def slim(full: dict) -> dict:
    """LiteLLM's map cut to the fields Teamgate reads, for models that have a token price."""
    out = {}
    for name, entry in full.items():
        if name == "sample_spec" or not isinstance(entry, dict):
            continue
        kept = {k: entry[k] for k in KEPT_FIELDS if entry.get(k) is not None}
        if "input_cost_per_token" in kept or "output_cost_per_token" in kept:
            out[name] = kept
    return dict(sorted(out.items()))


def price_map() -> dict:
    """The vendored map, read once per process."""
    global _map
    if _map is None:
        with _map_lock:
            if _map is None:
                _map = json.loads(MAP_PATH.read_text())["models"]
    return _map


def reload_map():
    global _map
    with _map_lock:
        _map = None


def known(model: str | None) -> dict:
    """The map's entry for an upstream model name ("gpt-4o", "openai/gpt-4o"), or {}."""
    if not model:
        return {}
    models = price_map()
    for name in (model, model.split("/", 1)[-1]):
        if name in models:
            return models[name]
    return {}


def prices_of(params: dict, model_info: dict | None = None) -> Prices | None:
    """A deployment's prices: each field its own where set, else the map's for its model."""
    entry = known((model_info or {}).get("base_model")) or known(params.get("model"))
    values = {f: params[f] if params.get(f) is not None else entry.get(f) for f in PRICE_FIELDS}
    if values["input_cost_per_token"] is None and values["output_cost_per_token"] is None:
        return None
    return Prices(float(values["input_cost_per_token"] or 0),
                  float(values["output_cost_per_token"] or 0),
                  values["cache_read_input_token_cost"], values["cache_creation_input_token_cost"])


def output_limit(params: dict, model_info: dict | None = None) -> int | None:
    """The most tokens the deployment's model writes in one answer: model_info's
    max_output_tokens (or max_tokens, LiteLLM's older name), else the map's; None if unknown."""
    info = model_info or {}
    entry = known(info.get("base_model")) or known(params.get("model"))
    for value in (info.get("max_output_tokens"), info.get("max_tokens"),
                  entry.get("max_output_tokens"), entry.get("max_tokens")):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def for_deployment(deployment_id: str | None) -> Priced:
    """The deployment's prices, cached until the next routing change."""
    def load():
        row = db.session.get(Deployment, deployment_id)
        if row is None:
            return Priced(None, None)
        return Priced(prices_of(row.params or {}, row.model_info or {}), row.team_id)

    if not deployment_id:
        return Priced(None, None)
    return routing_cache().get(("prices", deployment_id), load)


def dump(models: dict, source: str, taken: str) -> str:
    """The vendored file's text: one model per line, so a refresh reads as a diff."""
    lines = [f'{json.dumps(name)}:{json.dumps(entry, separators=(",", ":"))}'
             for name, entry in models.items()]
    return (f'{{"source":{json.dumps(source)},"taken":{json.dumps(taken)},"models":{{\n'
            + ",\n".join(lines) + "\n}}\n")
