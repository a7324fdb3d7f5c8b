"""TLS failures say why, and nothing more: an expired certificate, one no trusted authority
signed (self-signed or an unknown issuer) and one for another name each get their own plain
message, against real TLS servers on 127.0.0.1 with certificates made here. An operator's CA
file (TEAMGATE_UPSTREAM_CA_FILE) is trusted besides the system's authorities."""
import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import bearer
from tests.raw_upstream import RawUpstream, answering, completion_answer

CALL = {"model": "my-team-model", "messages": [{"role": "user", "content": "hi"}]}
NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
LOOPBACK = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]


class Authority:
    """A certificate authority made for the test, and the certificates it signs."""

    def __init__(self, name: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                                  False, False), True)
                     .sign(self.key, hashes.SHA256()))

    def sign(self, names, not_before=NOW - DAY, not_after=NOW + 30 * DAY, self_signed=False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "upstream.test")])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(subject if self_signed else self.cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.SubjectAlternativeName(names), False))
        return builder.sign(key if self_signed else self.key, hashes.SHA256()), key


def pem(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


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
    files = {}
    for case, (cert, key) in cases.items():
        cert_file, key_file = folder / f"{case}.pem", folder / f"{case}.key"
        cert_file.write_bytes(pem(cert))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        files[case] = (str(cert_file), str(key_file))
    (folder / "ca.pem").write_bytes(pem(ca.cert))
    return {"ca_file": str(folder / "ca.pem"), "servers": files}


@pytest.fixture
def app(app, make_app, pki):
    return make_app(UPSTREAM_CA_FILE=pki["ca_file"])


@pytest.fixture
def tls_upstream(pki):
    servers = []

    def make(case: str) -> RawUpstream:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*pki["servers"][case])
        servers.append(RawUpstream(answering(lambda peer, request: completion_answer("ok")),
                                   tls=context))
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
