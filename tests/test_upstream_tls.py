"""TLS failures say why, and nothing more: an expired certificate, one no trusted authority
signed (self-signed or an unknown issuer) and one for another name each get their own plain
message, against real TLS servers on 127.0.0.1 with certificates made here. An operator's CA
file (TEAMGATE_UPSTREAM_CA_FILE) is trusted besides the system's authorities."""
import pytest
from cryptography import x509

from tests.certificates import DAY, LOOPBACK, NOW, Authority, server_context, write_pem
from tests.conftest import bearer
from tests.raw_upstream import RawUpstream, answering, completion_answer

CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Server certificates (by case) as PEM files, and the CA file that trusts the test CA."""
    folder = tmp_path_factory.mktemp("pki")
    ca, stranger = Authority("Teamgate Test CA"), Authority("Some Other CA")
    cases = {
        "trusted": ca.sign(LOOPBACK),
        "expired": ca.sign(LOOPBACK, NOW - 30 * DAY, NOW - DAY),
        "not-yet-valid": ca.sign(LOOPBACK, NOW + DAY, NOW + 30 * DAY),
        "self-signed": ca.sign(LOOPBACK, self_signed=True),
        "unknown-issuer": stranger.sign(LOOPBACK),
        "wrong-name": ca.sign([x509.DNSName("elsewhere.test")]),
    }
    files = {case: write_pem(folder, case, *pair) for case, pair in cases.items()}
    return {"ca_file": write_pem(folder, "ca", ca.cert)[0], "servers": files}


@pytest.fixture
def app(app, make_app, pki):
    return make_app(UPSTREAM_CA_FILE=pki["ca_file"])


@pytest.fixture
def tls_upstream(pki):
    servers = []

    def make(case: str) -> RawUpstream:
        servers.append(RawUpstream(answering(lambda peer, request: completion_answer("ok")),
                                   tls=server_context(*pki["servers"][case])))
        return servers[-1]
    yield make
    for server in servers:
        server.close()


def call_through(client, seed, upstream):
    _, key = seed.team_with_model(upstream.url, max_retries=0)
    return client.post("/v1/chat/completions", headers=bearer(key), json=CALL)


def test_an_upstream_signed_by_the_operators_ca_is_trusted(client, seed, tls_upstream):
    upstream = tls_upstream("trusted")
    response = call_through(client, seed, upstream)
    assert response.status_code == 200
    assert response.json["choices"][0]["message"]["content"] == "ok"


@pytest.mark.parametrize("case, message", [
    ("expired", "The upstream's TLS certificate has expired."),
    ("not-yet-valid", "The upstream's TLS certificate is not valid yet."),
    ("self-signed", "The upstream's TLS certificate is not signed by a trusted authority "
                    "(an operator can add one with TEAMGATE_UPSTREAM_CA_FILE)."),
    ("unknown-issuer", "The upstream's TLS certificate is not signed by a trusted authority "
                       "(an operator can add one with TEAMGATE_UPSTREAM_CA_FILE)."),
    ("wrong-name", "The upstream's TLS certificate does not match the host name."),
])
def test_a_tls_failure_says_why_and_nothing_more(client, seed, tls_upstream, case, message):
    upstream = tls_upstream(case)
    response = call_through(client, seed, upstream)
    assert response.status_code == 502
    assert response.json["error"]["type"] == "upstream_error"
    assert response.json["error"]["message"] == message
    assert upstream.requests == []  # nothing was sent over the connection that failed


def test_without_the_ca_file_the_operators_ca_is_not_trusted(make_app, seed, tls_upstream):
    # the setting is what makes the test CA trusted: the system's authorities do not know it
    client = make_app().test_client()
    upstream = tls_upstream("trusted")
    response = call_through(client, type(seed)(client), upstream)
    assert response.status_code == 502
    assert "not signed by a trusted authority" in response.json["error"]["message"]
