"""Talking to upstreams, below every front end and every provider: where an upstream may be
(egress), the HTTP/1.1 client (transport), reading event streams (sse), what of an upstream's
answer reaches the caller (headers, masking) and the one mapping of its failures (failures).
Nothing here imports routes, services or providers."""
