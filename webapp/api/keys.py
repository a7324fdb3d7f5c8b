"""/key/generate, /key/info, /key/list, /key/update, /key/delete."""
from flask import g, jsonify, request

from webapp.api import bp
from webapp.auth.access import ANY_KEY, declare
from webapp.errors import APIError
from webapp.extensions import db
from webapp.services import dialect, keys, schemas, spend


@bp.post("/key/generate")
@declare(ANY_KEY)
def key_generate():
    body = dialect.parse(schemas.KEY_GENERATE, "key_generate")
    result = keys.generate(g.principal, body)
    db.session.commit()
    return dialect.answer(result, "key_generate", body)


@bp.get("/key/info")
@declare(ANY_KEY)
def key_info():
    key = request.args.get("key")
    if not key:
        if not g.principal.key_token:
            raise APIError(400, "Missing query parameter key.", param="key")
        key = g.principal.key_token
    row = keys.find(g.principal, key)
    return jsonify({"key": row.token, "info": {**keys.serialize(row), **spend.for_key(row)}})


@bp.get("/key/list")
@declare(ANY_KEY)
def key_list():
    rows = keys.visible(g.principal)
    return jsonify({"keys": [r.token for r in rows], "data": [keys.serialize(r) for r in rows],
                    "total_count": len(rows)})


@bp.post("/key/update")
@declare(ANY_KEY)
def key_update():
    body = dialect.parse(schemas.KEY_UPDATE, "key_update")
    result = keys.update(g.principal, body)
    db.session.commit()
    return dialect.answer(result, "key_update", body)


@bp.post("/key/regenerate")
@bp.post("/key/<path:key>/regenerate")
@declare(ANY_KEY)
def key_regenerate(key=None):
    empty = not request.get_data(cache=True).strip()  # the path form may come without a body
    body = dialect.parse(schemas.KEY_REGENERATE, "key_regenerate", {} if empty else None)
    if key:
        body["key"] = key
    if not body.get("key"):
        raise APIError(400, "Give the key to regenerate (in the body or the path).",
                       param="key")
    result = keys.regenerate(g.principal, body)
    db.session.commit()
    return dialect.answer(result, "key_regenerate", body)


@bp.post("/key/block")
@declare(ANY_KEY)
def key_block():
    body = dialect.parse(schemas.KEY_BLOCK, "key_block")
    result = keys.set_blocked(g.principal, body["key"], True)
    db.session.commit()
    return jsonify(result)


@bp.post("/key/unblock")
@declare(ANY_KEY)
def key_unblock():
    body = dialect.parse(schemas.KEY_UNBLOCK, "key_unblock")
    result = keys.set_blocked(g.principal, body["key"], False)
    db.session.commit()
    return jsonify(result)


@bp.post("/key/delete")
@declare(ANY_KEY)
def key_delete():
    body = dialect.parse(schemas.KEY_DELETE, "key_delete")
    if not body.get("keys") and not body.get("key_aliases"):
        raise APIError(400, "Give keys or key_aliases to delete.", param="keys")
    rows = [keys.find(g.principal, k) for k in body.get("keys") or []]
    rows += [keys.find_by_alias(g.principal, a) for a in body.get("key_aliases") or []]
    deleted = keys.delete(g.principal, rows)
    db.session.commit()
    return jsonify({"deleted_keys": deleted})
