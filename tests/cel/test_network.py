"""IP addresses and CIDR ranges: the cases of google/cel-spec tests/simple/testdata/network_ext.textproto
(file/section/name kept), run through charter.cel."""

from __future__ import annotations

import pytest

from charter.cel import CelCompileError, CelError, CelType, compile_condition

ERROR = CelError("")
CASES = [
    ("ip_type/parse_ipv4", "string(ip('192.168.0.1'))", "192.168.0.1"),
    ("ip_type/parse_invalid_ipv4", "ip('192.168.0.1.0')", ERROR),
    ("ip_type/is_ip_valid_ipv4", "isIP('192.168.0.1')", True),
    ("ip_type/is_ip_invalid_ipv4", "isIP('192.168.0.1.0')", False),
    ("ip_type/ip_is_canonical_valid_ipv4", "ip.isCanonical('127.0.0.1')", True),
    ("ip_type/ip_is_canonical_invalid_ipv4", "ip.isCanonical('127.0.0.1.0')", ERROR),
    ("ip_type/ip_is_canonical_non_canonical_ipv6", "ip.isCanonical('2001:DB8::68')", False),
    ("ip_type/parse_ipv6", "string(ip('2001:db8::68'))", "2001:db8::68"),
    ("ip_type/parse_invalid_ipv6", "ip('2001:db8:::68')", ERROR),
    ("ip_type/ip_to_string", "string(ip('192.168.0.1'))", "192.168.0.1"),
    ("ip_type/ip_type", "type(ip('192.168.0.1')) == net.IP", True),
    ("ip_type/is_ip_cidr_compile_error", "isIP(cidr('192.168.0.0/24'))", ERROR),
    ("ipv4/ipv4_family", "ip('192.168.0.1').family()", 4),
    ("ipv4/ipv4_is_unspecified_true", "ip('0.0.0.0').isUnspecified()", True),
    ("ipv4/ipv4_is_unspecified_false", "ip('127.0.0.1').isUnspecified()", False),
    ("ipv4/ipv4_is_loopback_true", "ip('127.0.0.1').isLoopback()", True),
    ("ipv4/ipv4_is_loopback_false", "ip('1.2.3.4').isLoopback()", False),
    ("ipv4/ipv4_is_global_unicast_true", "ip('192.168.0.1').isGlobalUnicast()", True),
    ("ipv4/ipv4_is_global_unicast_false", "ip('255.255.255.255').isGlobalUnicast()", False),
    ("ipv4/is_link_local_multicast_true", "ip('224.0.0.1').isLinkLocalMulticast()", True),
    ("ipv4/is_link_local_multicast_false", "ip('224.0.1.1').isLinkLocalMulticast()", False),
    ("ipv4/is_link_local_unicast_true", "ip('169.254.169.254').isLinkLocalUnicast()", True),
    ("ipv4/is_link_local_unicast_false", "ip('192.168.0.1').isLinkLocalUnicast()", False),
    ("ipv6/family", "ip('2001:db8::68').family()", 6),
    ("ipv6/is_unspecified_true", "ip('::').isUnspecified()", True),
    ("ipv6/is_loopback_true", "ip('::1').isLoopback()", True),
    ("ipv6/is_global_unicast_true", "ip('2001:db8::abcd').isGlobalUnicast()", True),
    ("ipv6/is_global_unicast_false", "ip('ff00::1').isGlobalUnicast()", False),
    ("ipv6/is_link_local_multicast_true", "ip('ff02::1').isLinkLocalMulticast()", True),
    ("ipv6/is_link_local_multicast_false", "ip('fd00::1').isLinkLocalMulticast()", False),
    ("ipv6/is_link_local_unicast_true", "ip('fe80::1').isLinkLocalUnicast()", True),
    ("ipv6/is_link_local_unicast_false", "ip('fd80::1').isLinkLocalUnicast()", False),
    ("cidr/parse_cidr_ipv4", "type(cidr('192.168.0.0/24')) == net.CIDR", True),
    ("cidr/parse_invalid_cidr_ipv4", "cidr('192.168.0.0/')", ERROR),
    ("cidr/cidr_contains_ip_ipv4_object", "cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))", True),
    ("cidr/cidr_does_not_contain_ip_ipv4_object", "cidr('192.168.0.0/24').containsIP(ip('192.168.1.1'))",
     False),
    ("cidr/cidr_contains_ip_ipv4_string", "cidr('192.168.0.0/24').containsIP('192.168.0.1')", True),
    ("cidr/cidr_does_not_contain_ip_ipv4_string", "cidr('192.168.0.0/24').containsIP('192.168.1.1')", False),
    ("cidr/cidr_contains_cidr_ipv4_object", "cidr('192.168.0.0/24').containsCIDR(cidr('192.168.0.0/25'))",
     True),
    ("cidr/cidr_contains_cidr_ipv4_object_32", "cidr('192.168.0.0/24').containsCIDR(cidr('192.168.0.1/32'))",
     True),
    ("cidr/cidr_does_not_contain_cidr_ipv4_object",
     "cidr('192.168.0.0/24').containsCIDR(cidr('192.168.0.0/23'))", False),
    ("cidr/cidr_contains_cidr_ipv4_string", "cidr('192.168.0.0/24').containsCIDR('192.168.0.0/25')", True),
    ("cidr/cidr_get_ip_ipv4", "cidr('192.168.0.0/24').ip() == ip('192.168.0.0')", True),
    ("cidr/cidr_masked_ipv4", "string(cidr('192.168.0.1/24').masked())", "192.168.0.0/24"),
    ("cidr/cidr_prefix_length_ipv4", "cidr('192.168.0.0/24').prefixLength()", 24),
    ("cidr/parse_cidr_ipv6", "string(cidr('2001:db8::/32'))", "2001:db8::/32"),
    ("cidr/cidr_contains_ip_ipv6_object", "cidr('2001:db8::/32').containsIP(ip('2001:db8::1'))", True),
    ("cidr/cidr_contains_cidr_ipv6_object",
     "cidr('2001:db8::/32').containsCIDR(cidr('2001:db8::/33'))", True),
    ("cidr/cidr_get_ip_ipv6", "cidr('2001:db8::/32').ip() == ip('2001:db8::')", True),
    ("cidr/cidr_prefix_length_ipv6", "cidr('2001:db8::/32').prefixLength()", 32),
    ("cidr/cidr_to_string", "string(cidr('192.168.0.0/24'))", "192.168.0.0/24"),
    ("cidr/cidr_type", "type(cidr('192.168.0.0/24')) == net.CIDR", True),
]  # fmt: skip


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_network_ext(name: str, text: str, expected: object) -> None:
    try:
        got = compile_condition(text, {}, expect_bool=False).evaluate({})
    except CelCompileError:
        assert expected is ERROR, name
        return
    if expected is ERROR:
        assert isinstance(got, CelError), got
    else:
        assert got == expected and type(got) is type(expected), got


def test_a_host_inside_a_private_range() -> None:
    c = compile_condition(
        "cidr('10.0.0.0/8').containsIP(host) || ip(host).isLoopback()", {"host": CelType.STRING}
    )
    assert c.evaluate({"host": "10.2.3.4"}) is True
    assert c.evaluate({"host": "8.8.8.8"}) is False
    assert isinstance(c.evaluate({"host": "not-an-ip"}), CelError)
