"""/user/new, /user/info, /user/update, /user/list, /user/delete: LiteLLM's users, which are
Teamgate's dashboard users (services/accounts.py)."""
from flask import g, jsonify, request

from webapp.api import bp
from webapp.auth.access import ADMIN, ANY_KEY, declare
from webapp.errors import APIError
from webapp.extensions import db
from webapp.services import accounts, dialect, schemas


@bp.post("/user/new")
@declare(ADMIN)
def user_new():
    body = dialect.parse(schemas.USER_NEW, "user_new")
    result, ignored = accounts.create(g.principal, body)
    db.session.commit()
    return dialect.answer(result, "user_new", body, also=ignored)


@bp.get("/user/info")
@declare(ANY_KEY)
def user_info():
    return jsonify(accounts.info(g.principal, request.args.get("user_id")))


@bp.post("/user/update")
@declare(ADMIN)
def user_update():
    body = dialect.parse(schemas.USER_UPDATE, "user_update")
    if not body.get("user_id") and not body.get("user_email"):
        raise APIError(400, "Give user_id or user_email of the user to update.", param="user_id")
    user = accounts.update(g.principal, body)
    db.session.commit()
    return dialect.answer({"user_id": user.id, "data": accounts.serialize(user)},
                          "user_update", body)


MOST_PAGES = 1_000_000  # beyond it an offset outgrows what the database's integers hold


def _page_argument(name: str, default: int, most: int | None = None) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1 or (most and int(text) > most):
        raise APIError(400, f"{name} must be a whole number from 1" +
                       (f" to {most}." if most else "."), param=name)
    return int(text)


@bp.get("/user/list")
@declare(ADMIN)
def user_list():
    ids = [i for i in (request.args.get("user_ids") or "").split(",") if i]
    return jsonify(accounts.listed(request.args.get("role"), ids,
                                   _page_argument("page", 1, MOST_PAGES),
                                   _page_argument("page_size", 25, 100)))


@bp.post("/user/delete")
@declare(ADMIN)
def user_delete():
    body = dialect.parse(schemas.USER_DELETE, "user_delete")
    deleted = accounts.delete(g.principal, body["user_ids"])
    db.session.commit()
    return jsonify({"deleted_users": deleted})
