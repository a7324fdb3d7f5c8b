"""The upstream transport measured alone: requests' Session.post (what forwarding used), the
session's adapter.send (what it uses now), and urllib3 directly; CPU and wall time per call
against the fake upstream on loopback. Run with Teamgate's python from the repository root:
.venv/bin/python bench/transport.py"""
from pathlib import Path
import json, subprocess, sys, time, socket
import requests, urllib3
from requests.adapters import HTTPAdapter
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
up = subprocess.Popen([sys.executable, str(Path(__file__).with_name("upstream.py")), str(port)]); time.sleep(0.7)
url = f"http://127.0.0.1:{port}/v1/chat/completions"
body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
sess = requests.Session(); sess.trust_env = False
ad = HTTPAdapter(pool_maxsize=4); sess.mount("http://", ad)
pool = urllib3.PoolManager(maxsize=4)
def via_session(): return sess.post(url, json=body, timeout=(5, 5), allow_redirects=False).json()
def via_adapter():
    p = requests.PreparedRequest(); p.method = "POST"; p.url = url
    data = json.dumps(body).encode()
    p.headers = requests.structures.CaseInsensitiveDict(sess.headers); p.headers["Content-Type"] = "application/json"; p.headers["Content-Length"] = str(len(data)); p.body = data
    return ad.send(p, timeout=(5, 5), verify=True, cert=None, proxies={}).json()
def via_urllib3():
    data = json.dumps(body).encode()
    r = pool.request("POST", url, body=data, headers={"Content-Type": "application/json"}, timeout=urllib3.Timeout(connect=5, read=5), retries=False, redirect=False)
    return json.loads(r.data)
for f in (via_session, via_adapter, via_urllib3) * 2:
    for _ in range(300): f()
    n = 3000; c = time.process_time(); t = time.perf_counter()
    for _ in range(n): f()
    print(f"{f.__name__:12s} wall {(time.perf_counter()-t)/n*1e6:6.0f} us  cpu {(time.process_time()-c)/n*1e6:6.0f} us per call")
up.kill()
