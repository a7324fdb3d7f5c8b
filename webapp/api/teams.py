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
    team = teams.add_members(g.principal, body["team_id"],
                             member if isinstance(member, list) else [member])
    db.session.commit()
    return jsonify(teams.serialize(team))


@bp.post("/team/member_delete")
@declare(ANY_KEY)
def team_member_delete():
    body = dialect.parse(schemas.TEAM_MEMBER_DELETE, "team_member_delete")
    team = teams.remove_member(g.principal, body["team_id"], body.get("user_id"),
                               body.get("user_email"))
    db.session.commit()
    return jsonify(teams.serialize(team))
