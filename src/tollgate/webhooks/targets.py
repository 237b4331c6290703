"""Where webhooks may be sent: only to hosts whose every address is publicly routable.

An endpoint URL is a request Tollgate makes on a tenant's behalf from inside the
installation's network, so a URL naming a loopback, link-local (cloud metadata), private or
otherwise internal address would let any server key reach what only the installation should
(server-side request forgery). The rule is checked when an endpoint is created or changed
and again for every connection at delivery: the host is resolved then, every address it
resolves to must pass, and the connection goes to an address that passed (see
`webhooks.sender`), so a DNS answer that changes after the check (rebinding) cannot steer a
delivery inside. An installation whose receivers live on its own network turns the rule off
with `TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true`."""

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import httpx

from tollgate.errors import InvalidValue

IPAddress = IPv4Address | IPv6Address
# host -> its addresses as text; raises OSError (socket.gaierror) when it does not resolve.
# Injected so that tests can play DNS.
Resolver = Callable[[str], Sequence[str]]

_PRIVATE: tuple[IPv4Network | IPv6Network, ...] = (
    ip_network("10.0.0.0/8"),
    ip_network("172.16.0.0/12"),
    ip_network("192.168.0.0/16"),
    ip_network("fc00::/7"),
)
_SHARED = ip_network("100.64.0.0/10")  # carrier-grade NAT: someone's internal network
_NAT64 = ip_network("64:ff9b::/96")  # IPv4 addresses reached through a NAT64 gateway


class TargetRefused(Exception):
    """A delivery's host is, or resolves to, an address webhooks may not reach."""


def system_resolver(host: str) -> list[str]:
    """The host's addresses, as the operating system resolves them."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def why_refused(address: IPAddress) -> str | None:
    """What kind of address this is, when webhooks may not reach it; None when they may."""
    inner = _embedded_ipv4(address) if isinstance(address, IPv6Address) else None
    if inner is not None:
        # Judged by the IPv4 address it carries, which is where the packets end up.
        return why_refused(inner)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if any(address in network for network in _PRIVATE):
        return "a private address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    site_local = isinstance(address, IPv6Address) and address.is_site_local
    if not address.is_global or address.is_reserved or site_local:
        return "a reserved or special-purpose address"
    return None


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 or 6to4 address stands for."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFF_FFFF)
    return address.sixtofour


@dataclass(frozen=True, slots=True)
class TargetRules:
    """The installation's rule for webhook targets, and how it resolves names."""

    allow_private: bool = False
    resolve: Resolver = system_resolver

    def addresses(self, host: str) -> list[IPAddress]:
        """The addresses to connect to for `host`: all it resolves to, each allowed.

        Raises TargetRefused when one is not allowed, or the host does not resolve."""
        literal = _literal(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                found = [ip_address(text) for text in self.resolve(host)]
            except (OSError, ValueError):
                found = []
            if not found:
                raise TargetRefused(f"host '{host}' does not resolve")
        if not self.allow_private:
            for address in found:
                reason = why_refused(address)
                if reason is not None:
                    raise TargetRefused(_refusal(host, address, reason))
        return found

    def check_url(self, url: str) -> None:
        """Refuse (422 on `url`) an endpoint URL that deliveries could not be sent to."""
        if self.allow_private:
            return
        try:
            # The host as the sender will connect to it (IDNA-encoded, IPv6 unbracketed).
            self.addresses(httpx.URL(url).raw_host.decode("ascii"))
        except TargetRefused as refused:
            raise InvalidValue(
                f"webhook URL refused: {refused}; webhook endpoints must be reachable on the "
                "public internet (an installation may allow private targets with "
                "TOLLGATE_WEBHOOKS_ALLOW_PRIVATE_TARGETS)",
                field="url",
            ) from None


def _literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host.strip("[]"))
    except ValueError:
        return None


def _refusal(host: str, address: IPAddress, reason: str) -> str:
    if _literal(host) == address:
        return f"host '{host}' is {reason}"
    return f"host '{host}' resolves to {address}, {reason}"
