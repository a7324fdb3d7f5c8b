"""The OpenAI-compatible routes: chat completions, embeddings and the model list."""
import time

from flask import Blueprint, g, jsonify

from webapp.auth.access import ANY_KEY, declare
from webapp.proxy import calls, hops
from webapp.services import resolver

bp = Blueprint("proxy", __name__)
bp.after_request(hops.name_answer)


@bp.post("/v1/chat/completions")
@bp.post("/chat/completions")
@declare(ANY_KEY)
def chat_completions():
    return calls.handle("chat")


@bp.post("/v1/embeddings")
@bp.post("/embeddings")
@declare(ANY_KEY)
def embeddings():
    return calls.handle("embeddings")


@bp.get("/v1/models")
@bp.get("/models")
@declare(ANY_KEY)
def models():
    created = int(time.time())
    names = resolver.callable_names(g.principal)
    return jsonify({"object": "list", "data": [
        {"id": name, "object": "model", "created": created, "owned_by": "teamgate"}
        for name in names]})
