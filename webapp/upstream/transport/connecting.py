"""Opening one connection to an upstream: a socket to an address that passes the egress check at
this moment, directly or through the operator's egress proxy (a CONNECT tunnel to that checked
address), then TLS with the upstream itself for https, verified against the system's
authorities and the operator's CA file."""
import base64
import socket
import ssl
from urllib.parse import unquote, urlsplit

from webapp.upstream.transport.errors import ConnectFailed, ConnectTimedOut, ProxyFailed, TLSFailed
from webapp.upstream import egress

# OpenSSL's verification results (X509_V_ERR_*) -> TLSFailed.why
CERTIFICATE_ERRORS = {9: "not-yet-valid", 10: "expired", 2: "untrusted", 18: "untrusted",
                      19: "untrusted", 20: "untrusted", 21: "untrusted", 27: "untrusted",
                      62: "name", 64: "name"}
TUNNEL_HEAD_LIMIT = 16 * 1024  # a proxy's answer to CONNECT: a status line and a few headers


class EgressProxy:
    """The operator's HTTP proxy (`http://[user:password@]host:port`), which every upstream
    connection goes through as a CONNECT tunnel. Its own address is the operator's choice and
    is not checked; the upstream's is."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme != "http" or not parts.hostname or port is None:
            raise ValueError("The egress proxy must be an http://host:port URL (a proxy spoken "
                             "to over TLS is not supported).")
        self.host, self.port = parts.hostname, port
        self.authorization = ""
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(pair.encode()).decode()

    def tunnel(self, host: str, port: int, allow: str, timeout: float) -> socket.socket:
        """A socket through the proxy to an address of `host` that passes the egress check now
        (the proxy is given the address, not the name, so it cannot resolve elsewhere)."""
        addresses = egress.permitted_addresses(host, port, allow)
        targets = [host] if addresses is None else [str(address) for address in addresses]
        error: Exception = ConnectFailed("no address")
        for target in targets:
            sock = socket.create_connection((self.host, self.port), timeout)
            try:
                self._connect(sock, target, port)
                return sock
            except (ProxyFailed, OSError) as exc:
                sock.close()
                if isinstance(exc, socket.timeout) or getattr(exc, "status", 0) == 407:
                    raise
                error = exc
        raise error

    def _connect(self, sock: socket.socket, target: str, port: int):
        authority = f"[{target}]:{port}" if ":" in target else f"{target}:{port}"
        head = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if self.authorization:
            head.append(f"Proxy-Authorization: {self.authorization}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii"))
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(TUNNEL_HEAD_LIMIT)
            if not data:
                raise ProxyFailed("the egress proxy closed the connection", 0)
            answer += data
            if len(answer) > TUNNEL_HEAD_LIMIT:
                raise ProxyFailed("the egress proxy's answer is too long", 0)
        head_bytes, _, rest = answer.partition(b"\r\n\r\n")
        fields = head_bytes.split(b"\r\n", 1)[0].split(b" ", 2)
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        if not fields[0].startswith(b"HTTP/1.") or status != 200:
            raise ProxyFailed(f"the egress proxy answered {status}", status)
        if rest:  # the upstream cannot have spoken yet: these bytes are the proxy's own
            raise ProxyFailed("the egress proxy sent bytes after its answer", 0)


class Connector:
    """Opens sockets to upstreams, directly or through an egress proxy, with TLS for https."""

    def __init__(self, ca_file: str = "", proxy: str = ""):
        self.ca_file = ca_file
        self.proxy = EgressProxy(proxy) if proxy else None
        if ca_file:
            try:  # refused at start, not at the first call
                ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"The upstream CA file {ca_file} cannot be loaded "
                                 f"({exc.__class__.__name__}).") from None
        self._tls: ssl.SSLContext | None = None

    def open(self, scheme: str, host: str, port: int, allow: str,
             timeout: float) -> socket.socket:
        try:
            if self.proxy is not None:
                sock = self.proxy.tunnel(host, port, allow, timeout)
            else:
                sock = egress.connect(host, port, timeout, allow)
        except socket.timeout:
            raise ConnectTimedOut(f"Connection to {host} timed out.") from None
        except OSError as exc:
            if self.proxy is not None:
                raise ProxyFailed(f"egress proxy unreachable: {exc.__class__.__name__}", 0) \
                    from None
            raise ConnectFailed(f"Failed to connect: {exc.__class__.__name__}") from None
        if scheme == "https":
            sock = self._tls_with(sock, host)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _tls_with(self, sock: socket.socket, host: str) -> socket.socket:
        try:
            return self._tls_context().wrap_socket(sock, server_hostname=host)
        except socket.timeout:
            sock.close()
            raise ConnectTimedOut(f"TLS handshake with {host} timed out.") from None
        except ssl.SSLCertVerificationError as exc:
            sock.close()
            raise TLSFailed(f"certificate refused ({exc.verify_code})",
                            CERTIFICATE_ERRORS.get(exc.verify_code, "handshake")) from None
        except ssl.SSLError as exc:
            sock.close()
            why = "not-tls" if exc.reason == "WRONG_VERSION_NUMBER" else "handshake"
            raise TLSFailed(f"TLS handshake failed: {exc.reason}", why) from None
        except OSError as exc:
            sock.close()
            raise ConnectFailed(f"Failed to connect: {exc.__class__.__name__}") from None

    def _tls_context(self) -> ssl.SSLContext:
        # made on first use: under gevent, after the worker patched the ssl module
        if self._tls is None:
            self._tls = ssl.create_default_context()
            if self.ca_file:
                self._tls.load_verify_locations(cafile=self.ca_file)
        return self._tls
