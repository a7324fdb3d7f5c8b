"""A login flood for the served tests: clients, each from its own loopback address, that fetch
the login page's CSRF token and cookie, then post random emails at /ui/login as fast as they are
answered. Only the standard library, so that a spawned process starts it quickly."""
import http.client
import re
import threading
import time
import uuid
from collections import Counter
from urllib.parse import urlencode, urlsplit

TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def flood_client(base: str, address: str, ready, stop, answered):
    """One client: the login page's CSRF token and cookie, then random emails until stopped, on
    one kept-alive connection from its own address; answered(status) for each answer."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30,
                                            source_address=(address, 0))
    connection.request("GET", "/ui/login")
    response = connection.getresponse()
    token = TOKEN.search(response.read().decode()).group(1)
    cookie = response.getheader("Set-Cookie").split(";")[0]
    ready.wait()
    while not stop.is_set():
        form = urlencode({"csrf_token": token, "email": f"{uuid.uuid4().hex}@example.com",
                          "password": uuid.uuid4().hex})
        connection.request("POST", "/ui/login", form, {
            "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        answered(response.status)


def flood(base: str, clients: int, seconds: float, started, results):
    """The flood, in a process of its own so that its threads never hold the test's GIL (the
    fake upstream and the measured calls live there). Puts the statuses answered within
    `seconds` in results; the logins still in flight end with the process."""
    statuses, lock = Counter(), threading.Lock()

    def answered(status: int):
        with lock:
            statuses[status] += 1

    ready, stop = threading.Barrier(clients + 1, timeout=30), threading.Event()
    for n in range(clients):
        threading.Thread(target=flood_client, daemon=True,
                         args=(base, f"127.0.0.{10 + n}", ready, stop, answered)).start()
    ready.wait()
    started.set()
    time.sleep(seconds)
    stop.set()
    with lock:
        results.put(dict(statuses))
