"""The operation registry: adding a proxied route is one module and one line here. Providers
name the operations they support; naming one that is not registered fails at start-up, so an
unknown operation cannot reach a call."""
from webapp.operations.audio import Speech, Transcriptions
from webapp.operations.base import USAGE_FIELDS, Operation
from webapp.operations.chat import ChatCompletions
from webapp.operations.completions import Completions
from webapp.operations.embeddings import Embeddings
from webapp.operations.images import ImageGenerations
from webapp.operations.messages import CountTokens, Messages
from webapp.operations.moderations import Moderations
from webapp.operations.responses import Responses

_OPERATIONS: dict[str, Operation] = {}
_CLAIMED_MODES: set[str] = set()  # the modes some operation needs


def register(operation: Operation):
    _OPERATIONS[operation.name] = operation
    _CLAIMED_MODES.update(operation.modes)


register(ChatCompletions())
register(Embeddings())
register(Messages())
register(CountTokens())
register(Completions())
register(ImageGenerations())
register(Speech())
register(Transcriptions())
register(Moderations())
register(Responses())


def get(name: str) -> Operation:
    return _OPERATIONS[name]


def registered() -> list[Operation]:
    return list(_OPERATIONS.values())


def serves(operation: Operation, mode: str | None) -> bool:
    """Whether a deployment of this model_info.mode serves the operation: one that needs a mode
    (images, audio, moderations) only deployments of that mode; any other, every deployment
    whose mode no operation claims (an image model is no chat model)."""
    if operation.modes:
        return mode in operation.modes
    return mode not in _CLAIMED_MODES


CHAT = get("chat")

__all__ = ["CHAT", "USAGE_FIELDS", "Operation", "get", "register", "registered", "serves"]
