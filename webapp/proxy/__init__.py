"""The OpenAI-compatible routes and the forwarding of calls to the teams' upstreams."""
