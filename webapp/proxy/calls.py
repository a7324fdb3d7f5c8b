"""One proxied call from body to upstream and back: validate, resolve, forward, log."""
import dataclasses
import json
import time
import uuid
from dataclasses import dataclass, field

from flask import Response, g, jsonify, request

from webapp import operations, providers
from webapp.errors import APIError
from webapp.extensions import db
from webapp.proxy import forwarding, hops, media, uploads
from webapp.upstream import masking, headers as upstream_headers
from webapp.proxy.conversations import conversation_for
from webapp.upstream.failures import invalid_body
from webapp.providers.base import PreparedCall, Target
from webapp.proxy.streaming import relay
from webapp.services import dialect, limits, metrics, resolver
from webapp.services.cache import routing_cache
from webapp.upstream.egress import check_api_base, typed_destination
from webapp.services.request_log import writer
from webapp.services.validation import json_body, refuse_nul

# fields that would choose the upstream or its credentials: every litellm_param a provider
# declares (api_base, api_key, aws_*, vertex_*, ...) and a few more
REFUSED_FIELDS = frozenset({"base_url", "custom_llm_provider", "extra_headers", "azure_ad_token",
                            "litellm_credential_name", *providers.declared_fields()})


@dataclass
class CallRecord:
    """What the request log keeps of one call; filled in as the call proceeds."""
    operation: str
    principal: object
    log: object
    started: float = field(default_factory=time.perf_counter)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    public_model: str | None = None
    deployment_id: str | None = None
    upstream_seconds: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    stream: bool = False
    ticket: object = None

    def overhead_ms(self) -> float:
        return round((time.perf_counter() - self.started - self.upstream_seconds) * 1000, 3)

    def write(self, status: int, error_type: str | None = None):
        """Log the call once it is over, and give back its place under the limits."""
        principal = self.principal
        row = self.log.add(
            request_id=self.request_id, team_id=principal.team_id, key_token=principal.key_token,
            key_user_id=principal.user_id if principal.key_token else None,  # spent by, too
            key_name=principal.key_name, route=operations.get(self.operation).log_route,
            public_model=self.public_model, deployment_id=self.deployment_id, status=status,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 3),
            overhead_ms=self.overhead_ms(), prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens, cache_read_tokens=self.cache_read_tokens,
            cache_creation_tokens=self.cache_creation_tokens, stream=self.stream,
            error_type=error_type)
        if self.ticket is not None:  # its budgets count its cost, priced with its row
            self.ticket.settle(self.prompt_tokens, self.completion_tokens, row.get("cost"))
        metrics.observe(self.log.app, row)

    def take_usage(self, counts: dict | None):
        """Token counts read from the answer or the stream (operations.USAGE_FIELDS)."""
        for name, value in (counts or {}).items():
            if name in operations.USAGE_FIELDS and (value is None or isinstance(value, int)):
                setattr(self, name, value)


def _checked_body(operation: str, path_model: str | None) -> dict:
    own = operations.get(operation)
    body = uploads.read(REFUSED_FIELDS) if own.multipart else json_body()
    if path_model is not None:  # an Azure-style route: the path names the model
        body["model"] = path_model
    refused = sorted(REFUSED_FIELDS & body.keys())
    if refused:
        raise APIError(400, f"Fields that choose the upstream or its credentials are not "
                            f"accepted in a call: {', '.join(refused)}.", param=refused[0])
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise APIError(400, "Missing required field: model.", param="model")
    refuse_nul(body["model"], "model")
    own.check(body)
    return body


def _target(operation: str, model: str, pinned: str | None = None) -> tuple[Target, str]:
    """The deployment of this call (`pinned`: the one it must be, among those the model
    resolves to) and the operation its upstream is called with: the call's own, or the one it
    reaches the provider through (Operation.via)."""
    resolution = resolver.resolve(g.principal, model)
    if not resolution.targets:
        denied = dialect.model_access_denied(g.principal, resolution, resolver.KEY_RESTRICTED,
                                             resolver.TEAM_RESTRICTED)
        if denied is not None:
            raise denied
        team = g.principal.team_id or "<your team id>"
        raise APIError(400, f"{operations.get(operation).log_route}: Invalid model name passed in "
                            f"model={model}. "
                            f"Call /v1/models to view available models for your key, or GET "
                            f"/team/info?team_id={team} to check your team's model aliases.",
                       param="model")
    if pinned is not None and pinned not in resolution.deployments:
        raise APIError(400, f"previous_response_id names a response of another model than "
                            f"{model}; continue it with the model that made it.",
                       param="previous_response_id")
    target = resolution.pick() if pinned is None else \
        resolution.targets[resolution.deployments.index(pinned)]
    if isinstance(target, resolver.Refusal):
        raise APIError(403, target.message)
    own = operations.get(operation)
    if not operations.serves(own, target.mode):
        raise APIError(400, _mode_refusal(own, model, target.mode), param="model")
    destination = typed_destination(target)
    if destination:
        # a refused destination answers with the check's own message; the result is kept until
        # the next routing change, and every new connection is checked again when it opens
        routing_cache().get(("egress", destination), lambda: check_api_base(destination))
    if target.provider.offers(target, operation):
        return target, operation
    via = operations.get(operation).via
    if via and target.provider.offers(target, via):
        return target, via
    raise APIError(400, f"{model} is a {target.provider.label or target.provider.name} model, "
                        f"which does not serve {operations.get(operation).log_route}.",
                   param="model")


def _mode_refusal(own: operations.Operation, model: str, mode: str | None) -> str:
    if own.modes:
        return (f"{model} is not a model for {own.log_route}: that route serves models whose "
                f"model_info.mode is {' or '.join(own.modes)}, and {model}'s is "
                f"{mode or 'not set'}.")
    return f"{model} is a model of mode {mode} (model_info.mode), which does not serve " \
           f"{own.log_route}."


def _send(operation: str, target: Target, body: dict, stream: bool,
          arrival: tuple[str, list[str]]) -> forwarding.Sent:
    call = target.provider.prepare(target, operation, body)
    if isinstance(body, uploads.Upload):  # sent on as it arrives, so it can be sent only once
        call.headers["Content-Type"] = body.content_type
        call.body = body.upstream(target.upstream_model)
        target = dataclasses.replace(target, max_retries=0)
    for name in operations.get(operation).forwarded_headers:
        value = request.headers.get(name)
        if value:
            call.headers[name] = value
    return send_call(call, target, stream, arrival)


def send_call(call: PreparedCall, target: Target, stream: bool,
              arrival: tuple[str, list[str]]) -> forwarding.Sent:
    """A prepared call sent upstream, named in the hop header, with no database connection
    held meanwhile."""
    own, earlier = arrival
    call.headers[hops.HOP_HEADER] = hops.onward(own, earlier)
    if earlier or forwarding.caller_retrying(request.headers):
        # the Teamgate before this one, or the caller's SDK, retries: retrying here too would
        # multiply the upstream calls
        target = dataclasses.replace(target, max_retries=0)
    # no transaction or connection held across the upstream call; a cache hit never made
    # a session, and asking the scoped session would make one
    if db.session.registry.has() and db.session().in_transaction():
        db.session.close()
    sent = forwarding.send(call, target, stream)
    try:
        hops.check_answer(sent.response.headers, own)
    except APIError:
        sent.response.close()
        raise
    return sent


def handle(operation: str, path_model: str | None = None) -> Response:
    record = CallRecord(operation, g.principal, writer())
    own = operations.get(operation)
    try:
        body = _checked_body(operation, path_model)
        record.public_model = body["model"]
        arrival = hops.arrival()
        conversation = conversation_for(operation, g.principal, body)
        target, wire = _target(operation, body["model"],
                               conversation.pinned if conversation else None)
        record.deployment_id = target.deployment_id
        record.ticket = limits.admit(g.principal, body, target.deployment_id)
        record.stream = body.get("stream") is True
        if conversation:
            body = conversation.prepare(body, target, translated=wire != operation)
        if wire != operation:
            body = own.to_via(body)
        streamed = record.stream or own.audio_answer
        sent = _send(wire, target, body, streamed, arrival)
        record.upstream_seconds = sent.upstream_seconds
    except APIError as error:
        if record.public_model is not None:
            record.write(error.status, error.error_type)
            error.headers = {upstream_headers.REQUEST_ID: record.request_id, **error.headers}
        raise
    secret = masking.Secret.of(target)
    headers = upstream_headers.for_caller(sent.response.headers, record.request_id, secret)
    # LiteLLM's names beside Teamgate's, for clients that read them
    headers.update({"x-teamgate-model-id": target.deployment_id,
                    "x-litellm-model-id": target.deployment_id,
                    "x-litellm-call-id": record.request_id})
    if own.raw_answer:
        return media.relay(sent, target, record, own, headers, streamed)
    if record.stream:
        headers["x-teamgate-overhead-ms"] = str(record.overhead_ms())
        events = relay(sent.response, target, record, operations.get(wire), body)
        if wire != operation:
            events = own.from_via_stream(events, record.public_model)
        if conversation:
            events = conversation.watch(events)
        return Response(events, status=200, headers=headers, content_type="text/event-stream")
    return _answer(operation, wire, target, sent, record, headers, secret, conversation)


def _answer(operation: str, wire: str, target: Target, sent: forwarding.Sent,
            record: CallRecord, headers: dict, secret: masking.Secret | None,
            conversation=None) -> Response:
    """A non-streamed answer: the upstream's bytes relayed as they came (parsing them once for
    the token counts saves serialising them again), or its translation; the key masked."""
    content = sent.response.content
    passthrough = target.provider.relays(wire) and wire == operation
    try:
        # parsed even when relayed: a body that is not a JSON object is the upstream's failure
        payload = json.loads(content)
        if not isinstance(payload, dict):
            raise ValueError("not an object")
        if not target.provider.relays(wire):
            payload = target.provider.translate_response(wire, payload)
        record.take_usage(operations.get(wire).usage(payload))
        if wire != operation:
            payload = operations.get(operation).from_via(payload, record.public_model)
    except (ValueError, RecursionError):
        record.write(502, "upstream_error")
        error = invalid_body()
        error.headers.update(headers)
        raise error from None
    finally:
        sent.response.close()
    if passthrough:
        content = masking.answer(secret, content, payload)
    else:  # the translation's strings are the upstream's, joined: the key may form only there
        content = None
        if secret is not None:
            secret.scrub_value(payload)
    if conversation:  # kept (and echoed) once the key is masked
        conversation.answered(payload)
    response = (Response(content, mimetype="application/json") if content is not None
                else jsonify(payload))
    response.headers.update(headers)
    response.headers["x-teamgate-overhead-ms"] = str(record.overhead_ms())
    record.write(200)
    return response
