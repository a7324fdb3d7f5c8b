"""The upstream client against peers that speak HTTP/1.x in all its allowed shapes and in broken
ones, each a raw socket on 127.0.0.1: informational answers, chunked bodies with extensions and
trailers, HTTP/1.0 and close-delimited answers, `Connection: close`, keep-alive connections the
peer dropped, heads too large or malformed, and TLS spoken on one side only. Every answer is
either read exactly or refused, and only an exactly read keep-alive answer leaves its connection
for the next call."""
import socket
import time

import pytest

from tests.certificates import LOOPBACK, Authority, server_context, write_pem
from tests.raw_upstream import answer, answering
from webapp.upstream.transport import (AnswerTooLarge, BrokenAnswer, Client, Limits, TLSFailed,
                                    TransportError)

KIB, MIB = 1024, 1024 * 1024
ALLOW = "127.0.0.1/32"


@pytest.fixture
def http():
    client = Client(per_host=4, limits=Limits(head=16 * KIB, body=1 * MIB, line=64 * KIB))
    yield client
    client.close()



def fetch(http: Client, url: str, path: str = "/v1/chat/completions"):
    """(status, headers, body) of one call, the answer closed as forwarding closes it."""
    response = http.post(url + path, {"Content-Type": "application/json"}, b"{}", 2.0, 2.0,
                         ALLOW, deadline=time.monotonic() + 2.0)
    try:
        return response.status, response.headers, response.content
    finally:
        response.close()


def same_answer(data: bytes):
    return answering(lambda peer, request: data)


def in_pieces(*pieces: bytes, then_close: bool = False):
    """A script that answers every request with `pieces`, written one by one."""
    def serve(peer):
        peer.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while peer.request() is not None:
            for piece in pieces:
                peer.send(piece)
                peer.pause(0.01)
            if then_close:
                return
    return serve


# informational answers

def test_100_and_103_before_the_answer_are_skipped(http, raw):
    upstream = raw(in_pieces(b"HTTP/1.1 100 Continue\r\n\r\n",
                             b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n",
                             answer(b'{"ok": 1}')))
    for _ in range(2):
        status, headers, body = fetch(http, upstream.url)
        assert (status, body) == (200, b'{"ok": 1}')
        assert "link" not in headers
    assert upstream.connections == 1


def test_101_is_refused(http, raw):
    upstream = raw(same_answer(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n"
                               b"Connection: Upgrade\r\n\r\n"))
    with pytest.raises(BrokenAnswer):
        fetch(http, upstream.url)


# bodies

def test_chunked_with_extensions_and_trailers_is_read_whole_and_kept_alive(http, raw):
    upstream = raw(same_answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               b"3;name=value\r\nabc\r\n4\r\ndefg\r\n"
                               b"0\r\nX-Checksum: 1234\r\nX-Other: b\r\n\r\n"))
    for _ in range(2):
        status, headers, body = fetch(http, upstream.url)
        assert (status, body) == (200, b"abcdefg")
        assert "x-checksum" not in headers  # trailers are not the answer's headers
    assert upstream.connections == 1


def test_a_trailer_without_end_is_refused_at_the_head_limit(http, raw):
    def serve(peer):
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * KIB)
        if peer.request() is None:
            return
        peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n"
                  b"0\r\nX-Trailer: ")
        for _ in range(512):
            if not peer.send(b"t" * (64 * KIB)):
                return
    upstream = raw(serve)
    with pytest.raises(AnswerTooLarge) as refused:
        fetch(http, upstream.url)
    assert refused.value.part == "head"
    upstream.finish()
    assert upstream.sent < 8 * MIB


def test_a_body_cut_short_is_refused(http, raw):
    upstream = raw(in_pieces(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
                             then_close=True))
    with pytest.raises(BrokenAnswer):
        fetch(http, upstream.url)


def test_a_chunked_body_cut_short_is_refused(http, raw):
    upstream = raw(in_pieces(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"5\r\nhello\r\n", then_close=True))
    with pytest.raises(BrokenAnswer):
        fetch(http, upstream.url)


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
def test_bytes_after_an_answer_without_body_spoil_its_connection(http, raw, status):
    upstream = raw(same_answer(b"HTTP/1.1 " + status + b"\r\nContent-Length: 5\r\n\r\nhello"))
    for _ in range(2):
        assert fetch(http, upstream.url)[::2] == (int(status[:3]), b"")
    assert upstream.connections == 2


# which connections are kept

def test_http_1_0_is_read_and_its_connection_not_kept(http, raw):
    upstream = raw(same_answer(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"))
    for _ in range(2):
        assert fetch(http, upstream.url)[::2] == (200, b"hi")
    assert upstream.connections == 2


def test_http_1_0_keep_alive_is_kept(http, raw):
    upstream = raw(same_answer(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                               b"Content-Length: 2\r\n\r\nhi"))
    for _ in range(2):
        assert fetch(http, upstream.url)[::2] == (200, b"hi")
    assert upstream.connections == 1


def test_an_answer_that_ends_with_its_connection_is_read_to_the_end(http, raw):
    upstream = raw(in_pieces(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ",
                             b"and last", then_close=True))
    for _ in range(2):
        assert fetch(http, upstream.url)[::2] == (200, b"first and last")
    assert upstream.connections == 2


def test_connection_close_is_not_kept(http, raw):
    upstream = raw(same_answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
                               b"Content-Length: 2\r\n\r\nhi"))  # the peer leaves it open
    for _ in range(2):
        assert fetch(http, upstream.url)[::2] == (200, b"hi")
    assert upstream.connections == 2


def test_an_answer_not_read_to_its_end_does_not_keep_its_connection(http, raw):
    body = b"x" * (4 * MIB // 5)  # more than the first read can hold
    upstream = raw(same_answer(answer(body)))
    response = http.post(upstream.url + "/", {}, b"", 2.0, 2.0, ALLOW)
    response.close()  # the caller went away before reading the body
    assert fetch(http, upstream.url, "/")[::2] == (200, body)
    assert upstream.connections == 2


# keep-alive connections the peer dropped

def test_a_connection_dropped_while_idle_is_replaced_and_the_call_sent_once(http, raw):
    upstream = raw(in_pieces(answer(b"ok"), then_close=True))
    for _ in range(3):
        assert fetch(http, upstream.url)[::2] == (200, b"ok")
    assert upstream.connections == 3
    assert len(upstream.requests) == 3


def test_a_dropped_connection_is_replaced_once_only(http, raw):
    def serve(peer):
        request = peer.request()
        if request is not None and peer.number == 1:
            peer.send(answer(b"ok"))
            peer.request()  # the second call arrives, and the connection closes unanswered
    upstream = raw(serve)
    assert fetch(http, upstream.url)[::2] == (200, b"ok")
    with pytest.raises(BrokenAnswer):
        fetch(http, upstream.url)  # on connection 1, again on 2: then the call fails
    upstream.finish()
    assert [request.connection for request in upstream.requests] == [1, 1, 2]


def test_a_connection_that_broke_after_answering_part_is_not_retried(http, raw):
    def serve(peer):
        if peer.request() is not None:
            peer.send(answer(b"ok"))
        if peer.request() is not None:
            peer.send(b"HTTP/1.1 200 OK\r\nContent-")
    upstream = raw(serve)
    assert fetch(http, upstream.url)[::2] == (200, b"ok")
    with pytest.raises(BrokenAnswer):
        fetch(http, upstream.url)
    assert len(upstream.requests) == 2 and upstream.connections == 1


# heads

def test_a_status_line_above_the_head_limit_is_refused(http, raw):
    upstream = raw(same_answer(b"HTTP/1.1 200 " + b"O" * (20 * KIB) +
                               b"\r\nContent-Length: 0\r\n\r\n"))
    with pytest.raises(AnswerTooLarge):
        fetch(http, upstream.url)


def test_a_head_just_under_the_limit_is_read(http, raw):
    upstream = raw(same_answer(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * (15 * KIB) +
                               b"\r\nContent-Length: 2\r\n\r\nhi"))
    assert fetch(http, upstream.url)[::2] == (200, b"hi")


MALFORMED = {
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "bare-line-feeds": b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
    "space-in-a-name": b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nhi",
    "folded-header": b"HTTP/1.1 200 OK\r\nX-A: a\r\n  b\r\nContent-Length: 2\r\n\r\nhi",
    "nul-in-a-value": b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nhi",
    "length-and-chunked": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    "two-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi!",
    "negative-length": b"HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nhi",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_is_refused_and_its_connection_dropped(http, raw, data):
    upstream = raw(same_answer(data))
    for _ in range(2):
        with pytest.raises(BrokenAnswer):
            fetch(http, upstream.url)
    assert upstream.connections == 2


# TLS on one side only

def test_https_to_a_plain_http_peer_is_a_tls_failure(http, raw):
    def serve(peer):  # what an HTTP server says to a TLS hello: 400, and it hangs up
        if peer.sock.recv(65536):
            peer.send(answer(b"", status="400 Bad Request", headers=("Connection: close",)))
    upstream = raw(serve)
    with pytest.raises(TLSFailed) as failed:
        fetch(http, upstream.url.replace("http://", "https://"))
    assert failed.value.why == "not-tls"


def test_plain_http_to_a_tls_peer_is_not_an_answer(http, raw, tmp_path):
    files = write_pem(tmp_path, "server", *Authority("Test CA").sign(LOOPBACK))
    upstream = raw(same_answer(answer(b"secret")), tls=server_context(*files))
    with pytest.raises(TransportError) as failed:
        fetch(http, upstream.url.replace("https://", "http://"))
    assert isinstance(failed.value, BrokenAnswer)
