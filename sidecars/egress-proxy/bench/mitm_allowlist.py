"""mitmproxy addon equivalent to the egress proxy's bench configuration.

Host allowlist (403 otherwise) and credential injection: the client's Authorization header is
replaced with `Bearer $BENCH_TOKEN` for hosts in $BENCH_ROUTES. Used by `egress-bench` only, with
`mitmdump -s mitm_allowlist.py`.
"""

import os

from mitmproxy import http

ALLOW = {h.strip().lower() for h in os.environ.get("BENCH_ALLOW", "").split(",") if h.strip()}
ROUTES = {h.strip().lower() for h in os.environ.get("BENCH_ROUTES", "").split(",") if h.strip()}
TOKEN = os.environ.get("BENCH_TOKEN", "")


def _refuse(flow: http.HTTPFlow, host: str) -> None:
    flow.response = http.Response.make(
        403, f"refused: host {host} is not on the allowlist\n", {"content-type": "text/plain"}
    )


def http_connect(flow: http.HTTPFlow) -> None:
    host = flow.request.host.lower()
    if host not in ALLOW and host not in ROUTES:
        _refuse(flow, host)


def request(flow: http.HTTPFlow) -> None:
    host = flow.request.host.lower()
    if host not in ALLOW and host not in ROUTES:
        _refuse(flow, host)
        return
    flow.request.headers.pop("proxy-authorization", None)
    if host in ROUTES:
        flow.request.headers.pop("authorization", None)
        flow.request.headers["authorization"] = f"Bearer {TOKEN}"
