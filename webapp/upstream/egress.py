"""Where outbound calls may go: http(s) upstreams on public addresses, unless the operator's
TEAMGATE_UPSTREAM_ALLOW opens a private range or host for self-hosted models.

The check runs when an api_base is saved, before a call, and once more when a connection is
opened: the socket goes to an address that passed the check, so a name that resolves to a public
address at check time and to a private one a moment later (DNS rebinding) gains nothing.

An api_base at one of the addresses Teamgate itself serves on (TEAMGATE_LISTEN) is refused when
saved and before a call: such a model would call Teamgate with a Teamgate key."""
import ipaddress
import socket
from urllib.parse import urlsplit

from flask import current_app, has_app_context

from webapp.errors import APIError

NAT64 = ipaddress.ip_network("64:ff9b::/96")


def allow_list(setting: str) -> tuple[list, set]:
    networks, hosts = [], set()
    for entry in (part.strip() for part in setting.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower())
    return networks, hosts


def _embedded_ipv4(address):
    """The IPv4 address hidden in an IPv6 spelling (mapped, 6to4, NAT64), if any."""
    if address.version != 6:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address) -> bool:
    inner = _embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _resolve(host: str, port: int) -> list:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise APIError(400, f"api_base host {host} does not resolve.",
                       param="litellm_params.api_base") from None
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def _same_machine(address) -> bool:
    """Whether a socket can be bound to the address: it is one of this machine's."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((str(address), 0))
    except OSError:
        return False
    return True


def _is_listen_address(address, port: int, listen) -> bool:
    address = _embedded_ipv4(address) or address
    for entry in listen:
        if entry[1] != port:
            continue
        bound = ipaddress.ip_address(entry[0].split("%")[0])
        bound = _embedded_ipv4(bound) or bound
        # connecting to 0.0.0.0 or :: reaches this machine; a wildcard bind serves all of its
        # addresses
        if address == bound or address.is_unspecified or (
                bound.is_unspecified and (address.is_loopback or _same_machine(address))):
            return True
    return False


def refuse_own_address(host: str, port: int, listen) -> None:
    """Refuse an upstream that is Teamgate itself: one of the (host, port) pairs it serves on,
    under any name or spelling that resolves there."""
    if not any(entry[1] == port for entry in listen):
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return  # the check that follows names the failure
    for info in infos:
        if _is_listen_address(ipaddress.ip_address(info[4][0].split("%")[0]), port, listen):
            raise APIError(400, f"api_base points at this Teamgate itself ({host}:{port}): a "
                                "model must call its provider, not the gateway.",
                           param="litellm_params.api_base")


def check_api_base(url: str, setting: str | None = None, listen=None) -> None:
    """Refuse an upstream URL that is not http(s), points at a non-public address, or at
    Teamgate itself."""
    if setting is None:
        setting = current_app.config.get("TEAMGATE_UPSTREAM_ALLOW", "")
    if listen is None:
        listen = current_app.config.get("TEAMGATE_LISTEN", ()) if has_app_context() else ()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise APIError(400, "api_base must be an http:// or https:// URL with a host.",
                       param="litellm_params.api_base")
    if parts.username or parts.password:
        raise APIError(400, "api_base must not contain credentials; send the key as api_key.",
                       param="litellm_params.api_base")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise APIError(400, "api_base has an invalid port.",
                       param="litellm_params.api_base") from None
    refuse_own_address(parts.hostname, port, listen)
    permitted_addresses(parts.hostname, port, setting)


def typed_destination(target) -> str | None:
    """Where a call of this target goes (its provider's destination: an api_base, Bedrock's
    runtime endpoint), when that comes from a URL the team typed; None when the provider builds
    it from its own host names (Bedrock's and Vertex AI's regional hosts, a default api_base),
    which the check when a connection opens covers without a look-up on the call path."""
    provider = target.provider
    if target.api_base or any(target.params.get(f.name) for f in provider.fields
                              if f.kind == "url"):
        return provider.destination(target)
    return None


def check_destination(target) -> None:
    """Refuse a target whose typed destination is not allowed, before anything is sent."""
    destination = typed_destination(target)
    if destination:
        check_api_base(destination)


def permitted_addresses(host: str, port: int, setting: str) -> list | None:
    """The addresses of a host, all of them allowed, or an APIError naming the setting.
    None when the operator allowed the host by name (wherever it resolves to)."""
    networks, hosts = allow_list(setting)
    if host.lower() in hosts:
        return None
    addresses = _resolve(host, port)
    for address in addresses:
        inner = _embedded_ipv4(address) or address
        if any(inner in net or address in net for net in networks):
            continue
        if not is_public(address):
            raise APIError(400, f"api_base points at a private or reserved address ({inner}). "
                                "An operator can allow it with TEAMGATE_UPSTREAM_ALLOW.",
                           param="litellm_params.api_base")
    return addresses


def connect(host: str, port: int, timeout: float, setting: str) -> socket.socket:
    """A socket connected to an address of `host` that passes the check at this moment, or an
    APIError naming the setting; socket errors as the socket module raises them."""
    addresses = permitted_addresses(host, port, setting)
    if addresses is None:  # allowed by name, wherever it resolves to
        return socket.create_connection((host, port), timeout)
    error: OSError = OSError("no address")
    for address in addresses:
        try:
            return socket.create_connection((str(address), port), timeout)
        except socket.timeout:
            raise
        except OSError as exc:
            error = exc
    raise error
