"""Host-header check: the explorer answers only requests addressed to a name it is served under.

Without it, a web page on any site could point a DNS name of its own at 127.0.0.1 (DNS
rebinding) and read the catalog and the videos from the user's browser. The same-origin policy
keys on the name, not the address, so the server refuses names it was not asked to serve.

Starlette's TrustedHostMiddleware does this too, but splits `Host` at the first colon and so
refuses every IPv6 literal (`[::1]:8000`); this one parses the bracketed form.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
ALL_INTERFACES = ("0.0.0.0", "::", "")


def host_name(header: str) -> str:
    """The name part of a Host header, lower case: `[::1]:8000` -> `::1`, `Example:80` -> `example`."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[1:end] if end > 0 else ""
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header  # a bare name, or a bare IPv6 address without a port


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> set[str]:
    """Names a server bound to `bind` answers to: loopback, the bound address, and `extra`.

    Bound to all interfaces, it also answers to this machine's host names and addresses, which
    is how other machines on the network reach it.
    """
    names = set(LOOPBACK_NAMES) | {host_name(bind) if bind.startswith("[") else bind.lower()}
    if bind in ALL_INTERFACES:
        names |= _own_names()
    names |= {host_name(e) if e.startswith("[") else e.strip().lower() for e in extra}
    names.discard("")
    return names


def _own_names() -> set[str]:
    out = {socket.gethostname().lower(), socket.getfqdn().lower()}
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            out.add(str(info[4][0]).lower())
    except OSError:
        pass  # no resolvable host name: the user adds names with --allow-host
    return out


class HostCheck:
    """ASGI middleware: 400 for HTTP requests whose Host is not in `allowed` (the explorer serves
    no WebSockets)."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]):
        self.app = app
        self.allowed = frozenset(a.lower() for a in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = ""
            for key, value in scope.get("headers", ()):
                if key == b"host":
                    host = value.decode("latin-1")
                    break
            if host_name(host) not in self.allowed:
                response = PlainTextResponse("Invalid host header", status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
