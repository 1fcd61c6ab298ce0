"""mitmproxy addon for the lab's TLS-inspecting proxy: like the squid of the other scenarios
(and like corporate proxies generally), CONNECT is allowed to port 443 only; anything else gets
403 and is never dialled."""
from mitmproxy import http


def http_connect(flow: http.HTTPFlow) -> None:
    if flow.request.port != 443:
        flow.response = http.Response.make(
            403, b"CONNECT is allowed to port 443 only\n", {"Content-Type": "text/plain"}
        )
