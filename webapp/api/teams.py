"""/team/new, /team/info, /team/list, /team/update, /team/delete, /team/member_add|delete."""
from flask import g, jsonify, request

from webapp.api import bp
from webapp.auth.access import ADMIN, ANY_KEY, declare
from webapp.errors import APIError
from webapp.extensions import db
from webapp.services import dialect, schemas, spend, teams


@bp.post("/team/new")
@declare(ADMIN)
def team_new():
    body = dialect.parse(schemas.TEAM_NEW, "team_new")
    team = teams.create(g.principal, body)
    db.session.commit()
    return dialect.answer(teams.serialize(team), "team_new", body)


@bp.get("/team/info")
@declare(ANY_KEY)
def team_info():
    team_id = request.args.get("team_id")
    if not team_id:
        raise APIError(400, "Missing query parameter team_id.", param="team_id")
    info = teams.info(teams.get_team_or_404(g.principal, team_id))
    info["team_info"].update(spend.for_team(info["team_id"]))
    info["team_memberships"] = spend.for_members(info["team_id"])
    return jsonify(info)


@bp.get("/team/list")
@declare(ANY_KEY)
def team_list():
    return jsonify([teams.serialize(t) for t in teams.visible(g.principal)])


@bp.post("/team/update")
@declare(ANY_KEY)
def team_update():
    body = dialect.parse(schemas.TEAM_UPDATE, "team_update")
    team = teams.update(g.principal, body)
    db.session.commit()
    return dialect.answer({"data": teams.serialize(team)}, "team_update", body)


@bp.post("/team/block")
@declare(ADMIN)
def team_block():
    """Block a team: its keys answer 401 at once everywhere."""
    body = dialect.parse(schemas.TEAM_BLOCK, "team_block")
    team = teams.update(g.principal, {"team_id": body["team_id"], "blocked": True})
    db.session.commit()
    return jsonify(teams.serialize(team))


@bp.post("/team/unblock")
@declare(ADMIN)
def team_unblock():
    body = dialect.parse(schemas.TEAM_UNBLOCK, "team_unblock")
    team = teams.update(g.principal, {"team_id": body["team_id"], "blocked": False})
    db.session.commit()
    return jsonify(teams.serialize(team))


@bp.post("/team/delete")
@declare(ADMIN)
def team_delete():
    body = dialect.parse(schemas.TEAM_DELETE, "team_delete")
    deleted = teams.delete(g.principal, body["team_ids"])
    db.session.commit()
    return jsonify({"deleted_teams": deleted})


@bp.post("/team/member_add")
@declare(ANY_KEY)
def team_member_add():
    body = dialect.parse(schemas.TEAM_MEMBER_ADD, "team_member_add")
    member = body["member"]
    members = member if isinstance(member, list) else [member]
    team = teams.add_members(g.principal, body["team_id"], members,
                             body.get("max_budget_in_team"))
    db.session.commit()
    added = {m.get("user_id") for m in members} | {(m.get("user_email") or "").lower()
                                                   for m in members}
    updated = [m for m in teams.members(team) if m["user_id"] in added
               or (m["user_email"] or "") in added]
    memberships = [m for m in spend.for_members(team.id)
                   if m["user_id"] in {u["user_id"] for u in updated}]
    # LiteLLM's TeamAddMemberResponse: the team, and the users and memberships it touched
    return jsonify({**teams.serialize(team), "updated_users": updated,
                    "updated_team_memberships": memberships})


@bp.post("/team/member_update")
@declare(ANY_KEY)
def team_member_update():
    body = dialect.parse(schemas.TEAM_MEMBER_UPDATE, "team_member_update")
    result = teams.update_member(g.principal, body)
    db.session.commit()
    return dialect.answer(result, "team_member_update", body)


@bp.post("/team/member_delete")
@declare(ANY_KEY)
def team_member_delete():
    body = dialect.parse(schemas.TEAM_MEMBER_DELETE, "team_member_delete")
    team = teams.remove_member(g.principal, body["team_id"], body.get("user_id"),
                               body.get("user_email"))
    db.session.commit()
    return jsonify(teams.serialize(team))
