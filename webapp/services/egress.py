"""Where outbound calls may go: http(s) upstreams on public addresses, unless the operator's
TEAMGATE_UPSTREAM_ALLOW opens a private range or host for self-hosted models.

The check runs when an api_base is saved, before a call, and once more when a connection is
opened: the socket goes to an address that passed the check, so a name that resolves to a public
address at check time and to a private one a moment later (DNS rebinding) gains nothing."""
import ipaddress
import socket
from urllib.parse import urlsplit

from flask import current_app

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


def check_api_base(url: str, setting: str | None = None) -> None:
    """Refuse an upstream URL that is not http(s) or points at a non-public address."""
    if setting is None:
        setting = current_app.config.get("TEAMGATE_UPSTREAM_ALLOW", "")
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
    permitted_addresses(parts.hostname, port, setting)


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
