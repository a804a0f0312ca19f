"""A cap on cases per visitor, in front of the web tier's one submitter key.

Every victim's submission reaches the service under the same key, so without this one
visitor could spend the key's quota (--max-cases-per-hour, --rate-limits) for everyone.
A visitor is the network the connection comes from (IPv4 /24, IPv6 /64: one household,
office or phone gets a /64 or shares a /24, and counting single addresses let one machine
with many addresses spend everyone's quota), or, behind a proxy, the network of the last
address the proxy appended to a header the operator names (`--web-client-ip-header`).
Buckets live in this process and at most MOST_VISITORS are kept: the longest-idle one is
forgotten first, which can only give that visitor a fresh allowance.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict

from starlette.requests import Request

from service.access.limits import TokenBucket
from service.config import Rate

MOST_VISITORS = 100_000


class VisitorLimit:
    """`cases_per_hour` calls (cases submitted, or cases looked up) per visitor, refilled
    evenly over the hour; 0: no cap."""

    def __init__(self, cases_per_hour: int, client_ip_header: str = "") -> None:
        self.rate = Rate(cases_per_hour / 3600, cases_per_hour) if cases_per_hour else None
        self.header = client_ip_header.lower()
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def visitor(self, request: Request) -> str:
        """The visitor's network: see the module's docstring."""
        if self.header:
            hops = [hop.strip() for hop in request.headers.get(self.header, "").split(",")]
            if hops[-1]:
                # what the operator's proxy saw; earlier hops are the client's word
                return network_of(hops[-1])
        return network_of(request.client.host) if request.client else "unknown"

    def take(self, request: Request) -> float:
        """0 when this visitor may submit now, else the seconds until it may."""
        if self.rate is None:
            return 0.0
        visitor, now = self.visitor(request), time.monotonic()
        with self._lock:
            bucket = self._buckets.pop(visitor, None) or TokenBucket(self.rate, now)
            self._buckets[visitor] = bucket
            if len(self._buckets) > MOST_VISITORS:
                self._buckets.popitem(last=False)
            return bucket.take(now)


def network_of(address: str) -> str:
    """`address`'s IPv4 /24 or IPv6 /64 (an IPv4-mapped IPv6 address counts as IPv4);
    anything that is not an address is its own visitor."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))
