"""IP addresses and CIDR ranges (the cel-go / Kubernetes network library): ip(), cidr(), isIP(),
isCIDR(), ip.isCanonical(), family(), the is* tests, containsIP(), containsCIDR(), ip(), masked(),
prefixLength(). IPv4-mapped IPv6 addresses and zones are refused, as in Kubernetes."""

from __future__ import annotations

import ipaddress
from typing import Any

from charter.cel.signatures import Function, fn
from charter.cel.stdlib import no_overload
from charter.cel.values import EvalError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class IP:
    """A CEL ``net.IP`` value."""

    __slots__ = ("addr",)
    cel_type_name = "net.IP"

    def __init__(self, addr: Address) -> None:
        self.addr = addr

    def __eq__(self, other: object) -> bool:
        return type(other) is IP and self.addr == other.addr

    def __hash__(self) -> int:
        return hash(self.addr)

    def cel_text(self) -> str:
        """The canonical text of the address."""
        return str(self.addr)

    def __repr__(self) -> str:
        return f"ip({str(self.addr)!r})"


class CIDR:
    """A CEL ``net.CIDR`` value: an address and a prefix length (host bits kept)."""

    __slots__ = ("iface",)
    cel_type_name = "net.CIDR"

    def __init__(self, iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> None:
        self.iface = iface

    def __eq__(self, other: object) -> bool:
        return type(other) is CIDR and self.iface == other.iface

    def __hash__(self) -> int:
        return hash(self.iface)

    def cel_text(self) -> str:
        """``address/prefix``."""
        return f"{self.iface.ip}/{self.iface.network.prefixlen}"

    def __repr__(self) -> str:
        return f"cidr({self.cel_text()!r})"


def _parse_ip(text: str) -> Address:
    if "%" in text:
        raise ValueError("zones are not supported")
    addr = ipaddress.ip_address(text)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise ValueError("IPv4-mapped IPv6 addresses are not supported")
    return addr


def ip(text: Any) -> IP:
    """``ip(string)``."""
    if type(text) is not str:
        raise no_overload("ip", text)
    try:
        return IP(_parse_ip(text))
    except ValueError:
        raise EvalError(f"IP Address '{text}' parse error during conversion from string") from None


def is_ip(text: Any) -> bool:
    """``isIP(string)``."""
    if type(text) is not str:
        raise no_overload("isIP", text)
    try:
        _parse_ip(text)
    except ValueError:
        return False
    return True


def is_canonical(text: Any) -> bool:
    """``ip.isCanonical(string)``: whether the text is the address's canonical form."""
    return str(ip(text).addr) == text


def _parse_cidr(text: str) -> CIDR:
    addr, sep, prefix = text.partition("/")
    if not sep or not prefix.isdigit() or (len(prefix) > 1 and prefix[0] == "0"):
        raise ValueError("bad prefix")
    a = _parse_ip(addr)
    n = int(prefix)
    if n > a.max_prefixlen:
        raise ValueError("prefix too long")
    return CIDR(ipaddress.ip_interface(f"{a}/{n}"))


def cidr(text: Any) -> CIDR:
    """``cidr(string)``."""
    if type(text) is not str:
        raise no_overload("cidr", text)
    try:
        return _parse_cidr(text)
    except ValueError:
        raise EvalError(f"network address '{text}' parse error during conversion from string") from None


def is_cidr(text: Any) -> bool:
    """``isCIDR(string)``."""
    if type(text) is not str:
        raise no_overload("isCIDR", text)
    try:
        _parse_cidr(text)
    except ValueError:
        return False
    return True


def _ip(name: str, v: Any) -> Address:
    if type(v) is not IP:
        raise no_overload(name, v)
    return v.addr


def family(v: Any) -> int:
    """``ip.family()``: 4 or 6."""
    return _ip("family", v).version


def is_unspecified(v: Any) -> bool:
    """``ip.isUnspecified()``: 0.0.0.0 or ::."""
    return _ip("isUnspecified", v).is_unspecified


def is_loopback(v: Any) -> bool:
    """``ip.isLoopback()``."""
    return _ip("isLoopback", v).is_loopback


_V4_LL_MULTICAST = ipaddress.ip_network("224.0.0.0/24")
_V6_LL_MULTICAST = ipaddress.ip_network("ff02::/16")


def is_link_local_multicast(v: Any) -> bool:
    """``ip.isLinkLocalMulticast()``: 224.0.0.0/24 or ff02::/16."""
    a = _ip("isLinkLocalMulticast", v)
    return a in (_V4_LL_MULTICAST if a.version == 4 else _V6_LL_MULTICAST)


def is_link_local_unicast(v: Any) -> bool:
    """``ip.isLinkLocalUnicast()``: 169.254.0.0/16 or fe80::/10."""
    a = _ip("isLinkLocalUnicast", v)
    return a.is_link_local and not a.is_multicast


def is_global_unicast(v: Any) -> bool:
    """``ip.isGlobalUnicast()`` (Go's definition: private ranges count as global unicast)."""
    a = _ip("isGlobalUnicast", v)
    if a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255"):
        return False
    return not (a.is_unspecified or a.is_loopback or a.is_multicast
                or (a.is_link_local and not a.is_multicast))  # fmt: skip


def _cidr(name: str, v: Any, *more: Any) -> CIDR:
    if type(v) is not CIDR:
        raise no_overload(name, v, *more)
    return v


def contains_ip(c: Any, other: Any) -> bool:
    """``cidr.containsIP(ip or string)``."""
    net = _cidr("containsIP", c, other).iface.network
    addr = ip(other).addr if type(other) is str else _ip("containsIP", other)
    return addr.version == net.version and addr in net


def contains_cidr(c: Any, other: Any) -> bool:
    """``cidr.containsCIDR(cidr or string)``."""
    net = _cidr("containsCIDR", c, other).iface.network
    inner = cidr(other) if type(other) is str else _cidr("containsCIDR", other)
    sub = inner.iface.network
    return sub.version == net.version and sub.subnet_of(net)  # type: ignore[arg-type]


def cidr_ip(c: Any) -> IP:
    """``cidr.ip()``: the address part."""
    return IP(_cidr("ip", c).iface.ip)


def masked(c: Any) -> CIDR:
    """``cidr.masked()``: the range with the host bits cleared."""
    net = _cidr("masked", c).iface.network
    return CIDR(ipaddress.ip_interface(f"{net.network_address}/{net.prefixlen}"))


def prefix_length(c: Any) -> int:
    """``cidr.prefixLength()``."""
    return _cidr("prefixLength", c).iface.network.prefixlen


FUNCTIONS: list[Function] = [
    fn("ip", ip, "(string) -> net.IP", doc="an IP address (v4 or v6)",
       examples=["ip('10.1.2.3').family() == 4"]),
    fn("isIP", is_ip, "(string) -> bool", doc="whether a text is an IP address",
       examples=["isIP('::1')", "!isIP('10.0.0.256')"]),
    fn("ip.isCanonical", is_canonical, "(string) -> bool",
       doc="whether a text is an address in canonical form",
       examples=["!ip.isCanonical('2001:DB8::1')"]),
    fn("cidr", cidr, "(string) -> net.CIDR", doc="an address range such as 10.0.0.0/8",
       examples=["cidr('10.0.0.0/8').containsIP('10.1.2.3')"]),
    fn("isCIDR", is_cidr, "(string) -> bool", doc="whether a text is an address range",
       examples=["isCIDR('10.0.0.0/8')"]),
    fn("family", family, "(net.IP) -> int", member=True, doc="4 or 6",
       examples=["ip('::1').family() == 6"]),
    fn("isUnspecified", is_unspecified, "(net.IP) -> bool", member=True, doc="0.0.0.0 or ::",
       examples=["ip('0.0.0.0').isUnspecified()"]),
    fn("isLoopback", is_loopback, "(net.IP) -> bool", member=True, doc="127.0.0.0/8 or ::1",
       examples=["ip('127.0.0.1').isLoopback()"]),
    fn("isLinkLocalMulticast", is_link_local_multicast, "(net.IP) -> bool", member=True,
       doc="224.0.0.0/24 or ff02::/16", examples=["ip('224.0.0.1').isLinkLocalMulticast()"]),
    fn("isLinkLocalUnicast", is_link_local_unicast, "(net.IP) -> bool", member=True,
       doc="169.254.0.0/16 or fe80::/10", examples=["ip('169.254.169.254').isLinkLocalUnicast()"]),
    fn("isGlobalUnicast", is_global_unicast, "(net.IP) -> bool", member=True,
       doc="a unicast address that is not loopback, link-local or unspecified",
       examples=["ip('8.8.8.8').isGlobalUnicast()"]),
    fn("containsIP", contains_ip, "(net.CIDR, net.IP) -> bool", "(net.CIDR, string) -> bool", member=True,
       doc="whether the range holds an address", examples=["cidr('10.0.0.0/8').containsIP(ip('10.9.9.9'))"]),
    fn("containsCIDR", contains_cidr, "(net.CIDR, net.CIDR) -> bool", "(net.CIDR, string) -> bool",
       member=True, doc="whether the range holds another range",
       examples=["cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16')"]),
    fn("ip", cidr_ip, "(net.CIDR) -> net.IP", member=True, doc="the address part of a range",
       examples=["cidr('10.0.0.1/8').ip() == ip('10.0.0.1')"]),
    fn("masked", masked, "(net.CIDR) -> net.CIDR", member=True, doc="the range with host bits cleared",
       examples=["cidr('10.0.0.1/8').masked() == cidr('10.0.0.0/8')"]),
    fn("prefixLength", prefix_length, "(net.CIDR) -> int", member=True, doc="the prefix length",
       examples=["cidr('10.0.0.0/8').prefixLength() == 8"]),
]  # fmt: skip
