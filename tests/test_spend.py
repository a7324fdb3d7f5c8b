"""Spend where users look: each call's cost on its request-log row (the deployment's prices,
else the price map; unpriced as null), spend in /key/info and /team/info (own and global models
apart), /spend/logs and /global/spend/report in LiteLLM's shapes, and the usage page's money
and CSV."""
import pytest
from sqlalchemy import select

from tests.conftest import ADMIN, bearer
from webapp.extensions import db
from webapp.models import RequestLogEntry

# the fake upstream answers 12 prompt and 5 completion tokens
IN, OUT = 0.000003, 0.000015
COST = 12 * IN + 5 * OUT


def chat(client, key, model="my-team-model"):
    response = client.post("/v1/chat/completions", headers=bearer(key), json={
        "model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.json
    return response


def flush(app):
    with app.app_context():
        app.extensions["teamgate.request_log"].flush()


def rows(app, team_id):
    with app.app_context():
        return list(db.session.scalars(select(RequestLogEntry).where(
            RequestLogEntry.team_id == team_id).order_by(RequestLogEntry.id)))


@pytest.fixture
def priced(seed, upstream):
    team_id, key = seed.team_with_model(upstream.url, input_cost_per_token=IN,
                                        output_cost_per_token=OUT)
    return team_id, key


def test_a_call_costs_its_tokens_times_the_deployments_prices(app, client, priced):
    team_id, key = priced
    chat(client, key)
    chat(client, key)
    flush(app)
    logged = rows(app, team_id)
    assert [(r.prompt_tokens, r.completion_tokens) for r in logged] == [(12, 5), (12, 5)]
    assert [r.cost for r in logged] == [pytest.approx(COST, abs=1e-12)] * 2
    info = client.get("/key/info", headers=bearer(key)).json["info"]
    assert info["spend"] == pytest.approx(2 * COST)
    team = client.get(f"/team/info?team_id={team_id}", headers=ADMIN).json["team_info"]
    assert team["spend"] == pytest.approx(2 * COST)
    assert team["spend_team_models"] == pytest.approx(2 * COST)
    assert team["spend_global_models"] == 0.0


def test_a_model_without_its_own_prices_is_priced_from_the_map(app, client, seed, upstream):
    team_id, key = seed.team_with_model(upstream.url)  # openai/gpt-4o, no prices given
    chat(client, key)
    flush(app)
    # the vendored map's gpt-4o: 2.5 USD per million input tokens, 10 per million output
    assert rows(app, team_id)[0].cost == pytest.approx(12 * 2.5e-6 + 5 * 1e-5, abs=1e-12)


def test_an_unknown_model_is_unpriced_never_zero(app, client, seed, upstream):
    team_id = seed.team()
    key = seed.key(team_id)
    seed.model(key, team_id, upstream.url, model="openai/teamgate-private-model-x")
    chat(client, key)
    flush(app)
    assert rows(app, team_id)[0].cost is None
    logs = client.get("/spend/logs", headers=bearer(key)).json
    assert logs[0]["spend"] is None and logs[0]["unpriced"] is True
    assert client.get("/key/info", headers=bearer(key)).json["info"]["spend"] == 0.0


def test_spend_logs_in_litellms_shape_and_scoped_to_the_callers_team(app, client, seed,
                                                                    priced, upstream_b):
    team_id, key = priced
    other_team, other_key = seed.team_with_model(upstream_b.url)
    chat(client, key)
    chat(client, other_key)
    flush(app)
    mine = client.get("/spend/logs", headers=bearer(key)).json
    assert len(mine) == 1
    row = mine[0]
    assert row["call_type"] == "acompletion" and row["team_id"] == team_id
    assert row["spend"] == pytest.approx(COST)
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (12, 5, 17)
    assert row["api_key"] == client.get("/key/info", headers=bearer(key)).json["key"]
    assert row["model"] == "my-team-model" and row["startTime"] <= row["endTime"]
    everything = client.get("/spend/logs", headers=ADMIN).json
    assert {r["team_id"] for r in everything} >= {team_id, other_team}
    only = client.get(f"/spend/logs?team_id={other_team}", headers=ADMIN).json
    assert {r["team_id"] for r in only} == {other_team}
    refused = client.get(f"/spend/logs?team_id={other_team}", headers=bearer(key))
    assert refused.status_code == 403
    assert client.get("/spend/logs?start_date=2000-01-01&end_date=2000-01-02",
                      headers=ADMIN).json == []


def test_global_spend_report_per_day_and_team(app, client, priced):
    team_id, key = priced
    chat(client, key)
    chat(client, key)
    flush(app)
    report = client.get(f"/global/spend/report?team_id={team_id}", headers=ADMIN).json
    assert len(report) == 1 and report[0]["group_by_day"].endswith("T00:00:00+00:00")
    (team,) = report[0]["teams"]
    assert team["team_name"] == "Team A" and team["total_spend"] == pytest.approx(2 * COST)
    assert team["metadata"] == [{"model": "my-team-model", "spend": pytest.approx(2 * COST),
                                 "total_tokens": 34, "unpriced_requests": 0}]
    by_key = client.get("/global/spend/report?group_by=api_key", headers=bearer(key)).json
    assert by_key[0]["api_keys"][0]["total_cost"] == pytest.approx(2 * COST)
    assert client.get("/global/spend/report?group_by=customer",
                      headers=ADMIN).status_code == 400


def test_own_and_global_models_apart_and_the_usage_page(app, client, world, as_user):
    key = world.team_a_key
    chat(client, key)  # the team's own gpt-4o
    chat(client, key, "global-model")  # gpt-4o-mini, everyone's
    flush(app)
    own, shared = 12 * 2.5e-6 + 5 * 1e-5, 12 * 1.5e-7 + 5 * 6e-7
    team = client.get(f"/team/info?team_id={world.team_a}", headers=ADMIN).json["team_info"]
    assert team["spend"] == pytest.approx(own + shared)
    assert team["spend_team_models"] == pytest.approx(own)
    assert team["spend_global_models"] == pytest.approx(shared)
    member = as_user("member")
    page = member.get(f"/ui/teams/{world.team_a}/usage")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"${own:.4f}" in text and f"${shared:.4f}" in text and "Export CSV" in text
    exported = member.get(f"/ui/teams/{world.team_a}/usage.csv?period=7d")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    lines = exported.get_data(as_text=True).splitlines()
    assert lines[0].startswith("request_id,time,key,model,status")
    assert lines[1].endswith(f",12,5,,,{own:.8f}") and ",global-model," in lines[2]
    assert as_user("other").get(f"/ui/teams/{world.team_a}/usage.csv").status_code in (403, 404)


def test_the_usage_page_says_unpriced(app, client, world, as_user, upstream):
    with app.app_context():
        from webapp.models import Deployment
        row = db.session.get(Deployment, world.model_a["model_id"])
        row.params = {**row.params, "model": "openai/teamgate-private-model-x"}
        db.session.commit()
        from webapp.services.cache import routing_changed
        routing_changed()
        db.session.commit()
    chat(client, world.team_a_key)
    flush(app)
    text = as_user("member").get(f"/ui/teams/{world.team_a}/usage").get_data(as_text=True)
    assert "unpriced" in text and "$0.0000</td>" not in text


def test_spend_reaches_the_keys_user_from_the_call_or_from_an_older_spooled_row(app, seed,
                                                                                  priced):
    """A call's row names its key's user, so its batch needs no look-up; a row spooled by an
    older Teamgate, without that name, is still counted for the key's user and member."""
    from webapp.models import VirtualKey
    from webapp.services import spend

    team_id, _ = priced
    seed.key(team_id, user_id="someone")
    with app.app_context():
        token = db.session.scalars(select(VirtualKey.token).where(
            VirtualKey.user_id == "someone")).one()
        with db.engine.connect() as connection:
            older = spend._totals(connection, [{"cost": 0.5, "team_id": team_id,
                                                "key_token": token}])
            newer = spend._totals(connection, [{"cost": 0.5, "team_id": team_id,
                                                "key_token": token, "key_user_id": "other"}])
    member = spend.member_id(team_id, "someone")
    assert older[("user", "someone")] == 0.5 and older[("member", member)] == 0.5
    assert newer[("user", "other")] == 0.5 and ("user", "someone") not in newer
