"""The upstream HTTP/1.1 client: keep-alive connections pooled per host and credential, opened
only to addresses that pass the egress check at the moment of connecting, each request written
in one send, answers parsed by httptools (llhttp, the parser uvicorn uses) within limits on the
head, the body and an event stream's lines. Redirects are never followed, no ambient proxy,
.netrc or cookie ever applies; an operator's egress proxy, when set, is a CONNECT tunnel to the
checked address.

Why not `requests`: its adapter cost 600 us of CPU per call against this client's 64-102 us
(bench/transport.py, bench/PROFILE.md section 7), about a third of what a call cost. The sockets
are the standard library's, so the client is cooperative under gevent and thread-safe under
threads alike."""
from webapp.upstream.transport.answer import Answer, Limits, LineSplitter
from webapp.upstream.transport.client import Client
from webapp.upstream.transport.errors import (AnswerTooLarge, BrokenAnswer, ConnectFailed,
                                           ConnectTimedOut, InvalidRequest, ProxyFailed,
                                           ReadTimedOut, TLSFailed, TransportError)

__all__ = ["Answer", "AnswerTooLarge", "BrokenAnswer", "Client", "ConnectFailed",
           "ConnectTimedOut", "InvalidRequest", "Limits", "LineSplitter", "ProxyFailed",
           "ReadTimedOut", "TLSFailed", "TransportError"]
