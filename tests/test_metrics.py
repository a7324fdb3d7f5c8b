"""/metrics for Prometheus: after calls it shows their requests, errors, tokens, spend, latency
and overhead for that team, model and deployment; only the proxy admin's key reads it; under
gunicorn the counts of all workers are summed."""
import re
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ADMIN, bearer
from tests.fake_upstream import FakeUpstream, Reply
from tests.test_served import MASTER, served

IN, OUT = 0.000003, 0.000015  # the fake upstream answers 12 prompt and 5 completion tokens


def samples(text: str) -> dict:
    """(sample name, frozenset of labels) -> value."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def scrape(client) -> dict:
    response = client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


def test_calls_show_in_the_metrics_of_their_team_model_and_deployment(
        client, seed, upstream, live):
    team_id, key = seed.team_with_model(upstream.url, input_cost_per_token=IN,
                                        output_cost_per_token=OUT)
    deployment = client.get("/model/info", headers=bearer(key)).json["data"][0]["model_info"]["id"]
    caller = openai.OpenAI(api_key=key, base_url=live.url + "/v1", max_retries=0)
    for _ in range(2):
        caller.chat.completions.create(model="my-team-model",
                                       messages=[{"role": "user", "content": "hi"}])
    upstream.reply(Reply(status=400, body={"error": {"message": "bad", "type": "invalid"}}))
    with pytest.raises(openai.BadRequestError):
        caller.chat.completions.create(model="my-team-model",
                                       messages=[{"role": "user", "content": "hi"}])
    labels = {"team": team_id, "model": "my-team-model", "deployment": deployment}
    found = scrape(client)
    assert value(found, "teamgate_requests_total", status="200", **labels) == 2
    assert value(found, "teamgate_requests_total", status="400", **labels) == 1
    assert sum(v for (name, lbl), v in found.items() if name == "teamgate_errors_total"
               and dict(lbl).get("team") == team_id) == 1
    assert value(found, "teamgate_tokens_total", kind="prompt", **labels) == 24
    assert value(found, "teamgate_tokens_total", kind="completion", **labels) == 10
    assert value(found, "teamgate_spend_usd_total", **labels) == pytest.approx(
        2 * (12 * IN + 5 * OUT))
    assert value(found, "teamgate_request_duration_seconds_count", **labels) == 3
    assert value(found, "teamgate_overhead_seconds_count", **labels) == 3
    assert value(found, "teamgate_overhead_seconds_bucket", le="+Inf", **labels) == 3


def test_a_name_that_resolves_to_nothing_makes_no_series_of_its_own(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    for n in range(3):
        response = client.post("/v1/chat/completions", headers=bearer(key), json={
            "model": f"no-such-model-{n}", "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 400
    text = client.get("/metrics", headers=ADMIN).get_data(as_text=True)
    assert "no-such-model" not in text
    found = samples(text)
    assert value(found, "teamgate_requests_total", team=team_id, model="", deployment="",
                 status="400") == 3


def test_only_the_proxy_admin_reads_the_metrics(client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)
    client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]})
    assert client.get("/metrics").status_code == 401
    refused = client.get("/metrics", headers=bearer(key))
    assert refused.status_code == 403
    assert team_id not in refused.get_data(as_text=True)
    assert client.get("/metrics", headers=bearer("sk-not-a-key")).status_code == 401


def test_under_gunicorn_the_counts_of_both_workers_are_summed(tmp_path, database_url,
                                                              monkeypatch):
    directory = tmp_path / "prometheus"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    upstream, calls = FakeUpstream(), 60
    try:
        with served(tmp_path, database_url, workers=2) as (base, _):
            admin = bearer(MASTER)
            team = requests.post(base + "/team/new", json={"team_alias": "metrics"},
                                 headers=admin).json()["team_id"]
            key = requests.post(base + "/key/generate", json={"team_id": team},
                                headers=admin).json()["key"]
            created = requests.post(base + "/model/new", headers=bearer(key), json={
                "model_name": "served-model", "model_info": {"team_id": team},
                "litellm_params": {"model": "openai/gpt-4o", "api_base": upstream.url,
                                   "api_key": "sk-provider-served"}})
            assert created.status_code == 200, created.text

            def call(_):  # a connection each, so that both workers take some
                return requests.post(base + "/v1/chat/completions", headers=bearer(key),
                                     timeout=10, json={"model": "served-model", "messages": [
                                         {"role": "user", "content": "hi"}]}).status_code

            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(call, range(calls))) == [200] * calls
            workers = {re.sub(r"\D", "", p.name) for p in directory.glob("counter_*.db")}
            assert len(workers) == 2, "both workers should have counted calls"
            for _ in range(4):  # whichever worker answers the scrape
                found = samples(requests.get(base + "/metrics", headers=admin,
                                             timeout=10).text)
                totals = {name: v for (name, lbl), v in found.items()
                          if dict(lbl).get("team") == team and dict(lbl).get("status") == "200"}
                assert totals == {"teamgate_requests_total": calls}
                tokens = sum(v for (name, lbl), v in found.items()
                             if name == "teamgate_tokens_total" and dict(lbl)["team"] == team
                             and dict(lbl)["kind"] == "prompt")
                assert tokens == 12 * calls
            assert requests.get(base + "/metrics", headers=bearer(key),
                                timeout=10).status_code == 403
    finally:
        upstream.close()
