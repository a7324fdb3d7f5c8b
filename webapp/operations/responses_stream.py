"""A chat completions stream as the Responses API's event stream: response.created and
response.in_progress at once, then per output item response.output_item.added, for text
response.content_part.added / response.output_text.delta / .done / response.content_part.done,
for a function call response.function_call_arguments.delta / .done, then
response.output_item.done; at the end response.completed (response.incomplete when the model
ran out of tokens) with the whole output and usage. Every event has its sequence_number. A
failure the relay turned into an error event becomes `error` and `response.failed`."""
import json
import time

from webapp.operations import responses_chat as chat
from webapp.operations.base import ChatStreamTranslation


class ResponseStream(ChatStreamTranslation):
    def __init__(self, model: str, response_id: str | None = None):
        self.model = model
        self.id = response_id or chat.new_id("resp")
        self.created = int(time.time())
        self.sequence = 0
        self.output: list[dict] = []  # every item, as it stands
        self.text_index: int | None = None  # the message item being written, if any
        self.tools: dict[int, int] = {}  # chat tool-call index -> output index
        self.open: list[int] = []  # output indexes not yet done, in order
        self.finish = None
        self.usage = None

    def _event(self, kind: str, **payload) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **payload}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + json.dumps(data).encode() + b"\n\n"

    def _response(self, status: str, **fields) -> dict:
        return chat.response(self.id, self.model, fields.pop("output", []), status,
                             created=self.created, **fields)

    def opening(self) -> bytes:
        snapshot = self._response("in_progress")
        return (self._event("response.created", response=snapshot)
                + self._event("response.in_progress", response=snapshot))

    def _add(self, item: dict) -> bytes:
        self.output.append(item)
        self.open.append(len(self.output) - 1)
        return self._event("response.output_item.added", output_index=len(self.output) - 1,
                           item=item)

    def _text(self, delta: str) -> bytes:
        out = b""
        if self.text_index is None:
            item = chat.text_item("", status="in_progress")
            part, item["content"] = item["content"][0], []
            out += self._add(item)  # added with no parts; the part is added next
            self.text_index = len(self.output) - 1
            item["content"].append(part)
            out += self._event("response.content_part.added", item_id=self.output[-1]["id"],
                               output_index=self.text_index, content_index=0,
                               part={"type": "output_text", "text": "", "annotations": []})
        item = self.output[self.text_index]
        item["content"][0]["text"] += delta
        return out + self._event("response.output_text.delta", item_id=item["id"],
                                 output_index=self.text_index, content_index=0, delta=delta,
                                 logprobs=[])

    def _call(self, call: dict) -> bytes:
        out = b""
        position = call.get("index", 0)
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        if position not in self.tools:
            out += self._close_text()
            out += self._add(chat.call_item(call.get("id") or "", function.get("name") or "",
                                            "", status="in_progress"))
            self.tools[position] = len(self.output) - 1
        index = self.tools[position]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self.output[index]["arguments"] += arguments
            out += self._event("response.function_call_arguments.delta",
                               item_id=self.output[index]["id"], output_index=index,
                               delta=arguments)
        return out

    def _done(self, index: int) -> bytes:
        self.open.remove(index)
        item = self.output[index]
        item["status"] = "completed"
        out = b""
        if item["type"] == "message":
            part = item["content"][0]
            out += self._event("response.output_text.done", item_id=item["id"],
                               output_index=index, content_index=0, text=part["text"],
                               logprobs=[])
            out += self._event("response.content_part.done", item_id=item["id"],
                               output_index=index, content_index=0,
                               part={"type": "output_text", "text": part["text"],
                                     "annotations": []})
        else:
            out += self._event("response.function_call_arguments.done", item_id=item["id"],
                               output_index=index, name=item["name"],
                               arguments=item["arguments"])
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _close_text(self) -> bytes:
        if self.text_index is None or self.text_index not in self.open:
            return b""
        return self._done(self.text_index)

    def chunk(self, chunk: dict) -> bytes:
        out = b""
        if isinstance(chunk.get("usage"), dict):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._text(text)
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    out += self._call(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def closing(self) -> bytes:
        out = b"".join(self._done(index) for index in list(self.open))
        final = self._response("completed", output=self.output, finish=self.finish,
                               usage_=chat.usage(self.usage))
        kind = "response.completed" if final["status"] == "completed" else \
            "response.incomplete"
        return out + self._event(kind, response=final)

    def failure(self, payload: dict) -> bytes:
        error = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        message = str(error.get("message") or "The upstream failed.")
        code = str(error.get("type") or "upstream_error")
        failed = self._response("failed", output=self.output,
                                error={"code": code, "message": message})
        return (self._event("error", code=code, message=message, param=error.get("param"))
                + self._event("response.failed", response=failed))
