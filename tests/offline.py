"""The suite talks to nothing but this machine: a connection or a name lookup that would leave
127.0.0.0/8 or ::1 fails as if the network were down, so a test that forgets a fake upstream
(a model with the default api.openai.com base, say) cannot reach the internet."""
import ipaddress
import socket

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
LOCAL_NAMES = ("localhost", "localhost.localdomain")


def _is_local(address) -> bool:
    if not isinstance(address, tuple):
        return True  # unix sockets
    try:
        return ipaddress.ip_address(address[0].split("%")[0]).is_loopback
    except ValueError:
        return address[0] in LOCAL_NAMES


def _guarded_connect(self, address):
    if not _is_local(address):
        raise ConnectionRefusedError(f"tests stay on this machine: refused {address[0]}")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_local(address):
        return 111  # ECONNREFUSED
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is not None and name not in LOCAL_NAMES:
        try:
            ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            if not name.replace(".", "").replace("x", "").isalnum() or not name[0].isdigit():
                raise socket.gaierror(socket.EAI_NONAME, f"tests do not resolve {name}")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def stay_on_this_machine():
    patches = pytest.MonkeyPatch()
    patches.setattr(socket.socket, "connect", _guarded_connect)
    patches.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    patches.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    yield
    patches.undo()
