"""The upstream transport measured alone: requests' Session.post, requests' adapter.send with a
prepared request (what forwarding used before), urllib3 directly, and Teamgate's client
(webapp/upstream/transport.py); CPU and wall time per call against the fake upstream on loopback.
Run with Teamgate's python from the repository root (requests comes with the test requirements):
.venv/bin/python bench/transport.py"""
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
import urllib3
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from webapp.config import Defaults  # noqa: E402
from webapp.proxy.forwarding import new_client  # noqa: E402

s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
up = subprocess.Popen([sys.executable, str(Path(__file__).with_name("upstream.py")), str(port)])
time.sleep(0.7)
url = f"http://127.0.0.1:{port}/v1/chat/completions"
body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
sess = requests.Session()
sess.trust_env = False
adapter = HTTPAdapter(pool_maxsize=4)
sess.mount("http://", adapter)
pool = urllib3.PoolManager(maxsize=4)
client = new_client({**vars(Defaults), "UPSTREAM_POOL_SIZE": 4})


def via_session():
    return sess.post(url, json=body, headers=headers, timeout=(5, 5),
                     allow_redirects=False).json()


def via_adapter():
    prepared = requests.PreparedRequest()
    prepared.method, prepared.url = "POST", url
    data = json.dumps(body).encode()
    prepared.headers = requests.structures.CaseInsensitiveDict(sess.headers)
    prepared.headers.update(headers)
    prepared.headers["Content-Length"] = str(len(data))
    prepared.body = data
    return adapter.send(prepared, timeout=(5, 5), verify=True, cert=None, proxies={}).json()


def via_urllib3():
    answer = pool.request("POST", url, body=json.dumps(body).encode(), headers=headers,
                          timeout=urllib3.Timeout(connect=5, read=5), retries=False,
                          redirect=False)
    return json.loads(answer.data)


def via_teamgate_client():
    answer = client.post(url, headers, json.dumps(body).encode(), 5, 5, allow="127.0.0.1/32")
    try:
        return json.loads(answer.content)
    finally:
        answer.close()


try:
    for f in (via_session, via_adapter, via_urllib3, via_teamgate_client) * 2:
        for _ in range(300):
            f()
        n = 3000
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            f()
        print(f"{f.__name__:20s} wall {(time.perf_counter() - wall) / n * 1e6:6.0f} us  "
              f"cpu {(time.process_time() - cpu) / n * 1e6:6.0f} us per call")
finally:
    up.kill()
