"""The operation registry: adding a proxied route is one module and one line here. Providers
name the operations they support; naming one that is not registered fails at start-up, so an
unknown operation cannot reach a call."""
from webapp.operations.base import USAGE_FIELDS, Operation
from webapp.operations.chat import ChatCompletions
from webapp.operations.embeddings import Embeddings
from webapp.operations.messages import CountTokens, Messages
from webapp.operations.responses import Responses

_OPERATIONS: dict[str, Operation] = {}


def register(operation: Operation):
    _OPERATIONS[operation.name] = operation


register(ChatCompletions())
register(Embeddings())
register(Messages())
register(CountTokens())
register(Responses())


def get(name: str) -> Operation:
    return _OPERATIONS[name]


def registered() -> list[Operation]:
    return list(_OPERATIONS.values())


CHAT = get("chat")

__all__ = ["CHAT", "USAGE_FIELDS", "Operation", "get", "register", "registered"]
