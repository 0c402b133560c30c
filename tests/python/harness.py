"""Helpers the service suites (test_realtime, test_ocpp) share: the server's HTTP base URL, a
blocking HTTP call, /metrics samples, websockets client options, and running an async test
body under a deadline that closes the body's connections afterwards."""

import asyncio

import requests

from openmetrics import samples


def base(server):
    return f"http://{server.host}:{server.port}"


def http(server, method, path, timeout, **kw):
    kw.setdefault("timeout", timeout)
    return requests.request(method, base(server) + path, **kw)


def scrape(server, timeout=10):
    r = http(server, "GET", "/metrics", timeout)
    assert r.status_code == 200
    return samples(r.text)


def metric(values, name, **labels):
    return values[(name, frozenset(labels.items()))]


def ws_options(open_timeout, **kw):
    """websockets `connect` options: no client pings, no compression, no proxy."""
    kw.setdefault("open_timeout", open_timeout)
    kw.setdefault("close_timeout", 5)
    kw.setdefault("ping_interval", None)
    kw.setdefault("compression", None)
    kw.setdefault("proxy", None)
    return kw


def drive(net, body, deadline):
    """Runs `async body(net)` within `deadline` seconds; `await net.aclose()` after."""

    async def main():
        try:
            await asyncio.wait_for(body(net), deadline)
        finally:
            await net.aclose()

    asyncio.run(main())
