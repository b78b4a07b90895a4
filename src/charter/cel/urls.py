"""URLs (the Kubernetes CEL URL library, k8s.io/apiserver pkg/cel/library/urls.go): url(), isURL()
and the accessors getScheme(), getHost(), getHostname(), getPort(), getEscapedPath(), getQuery().

Parsing follows Go's net/url, which the Kubernetes library calls: a text is a URL when
``url.ParseRequestURI`` accepts it (an absolute URI, or an absolute path); its parts are then
those ``url.Parse`` gives (the fragment cut off first). The parser below ports the steps of
``parse``, ``getScheme``, ``parseAuthority``, ``parseHost``, ``unescape``, ``shouldEscape``,
``setPath``, ``EscapedPath`` and ``parseQuery`` that decide acceptance and these parts; it never
resolves a name or opens a connection. Texts are handled as their UTF-8 bytes, as Go does; a
decoded query key or value that is not UTF-8 has its bad bytes replaced by U+FFFD.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote_from_bytes, unquote_to_bytes

from charter.cel.signatures import Function, fn
from charter.cel.stdlib import no_overload
from charter.cel.values import EvalError

_HEX = frozenset(b"0123456789abcdefABCDEF")
_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HOST_OK = frozenset(b"!$&'()*+,;=:[]<>\"")
_USERINFO_OK = frozenset(b"-._:~!$&'()*+,;=%@") | _ALNUM
_PATH_SUB_DELIMS = frozenset(b"!$&'()*+,;=:@[]%")

# net/url's encoding modes
_PATH, _HOST, _ZONE, _USER, _QUERY, _FRAGMENT = range(6)


class BadURL(ValueError):
    """A text net/url's ParseRequestURI refuses."""


def _should_escape(c: int, mode: int) -> bool:
    """net/url shouldEscape."""
    if c in _ALNUM:
        return False
    if mode in (_HOST, _ZONE) and c in _HOST_OK:
        return False
    if c in b"-_.~":
        return False
    if c in b"$&+,/:;=?@":
        if mode == _PATH:
            return c == ord("?")
        if mode == _USER:
            return c in b"@/?:"
        if mode == _QUERY:
            return True
        if mode == _FRAGMENT:
            return False
    # a fragment may also hold ! ( ) * unescaped; everything else is escaped
    return not (mode == _FRAGMENT and c in b"!()*")


def _byte_class(pred: Any) -> bytes:
    """A regex character class of the bytes ``pred`` holds for."""
    return b"[" + b"".join(b"\\x%02x" % c for c in range(256) if pred(c)) + b"]"


# Scans run as compiled regular expressions (not a Python loop per byte): parsing must cost about
# what the cost model charges for a text (limits.text_cost), whose first 4,096 characters are free.
_BAD_ESCAPE = re.compile(rb"%(?![0-9a-fA-F]{2})")
_HOST_ASCII_ESCAPE = re.compile(rb"%(?!25)[0-7][0-9a-fA-F]")
_ESCAPE = re.compile(rb"%[0-9a-fA-F]{2}")
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_NOT_USERINFO = re.compile(_byte_class(lambda c: c not in _USERINFO_OK))
_NEEDS_ESCAPE = {m: re.compile(_byte_class(lambda c, m=m: _should_escape(c, m))) for m in range(6)}
_SAFE = {m: bytes(c for c in range(128) if not _should_escape(c, m)) for m in range(6)}
_HOST_BAD = {m: re.compile(_byte_class(lambda c, m=m: c < 0x80 and c != 0x25 and _should_escape(c, m)))
             for m in (_HOST, _ZONE)}  # fmt: skip
_PATH_INVALID = re.compile(_byte_class(lambda c: c not in _PATH_SUB_DELIMS and _should_escape(c, _PATH)))


def _unescape(s: bytes, mode: int) -> bytes:
    """net/url unescape: decode %XX (and + in a query component); errors as Go's."""
    bad = _BAD_ESCAPE.search(s)
    if bad is not None:
        raise BadURL(f"invalid URL escape {s[bad.start() : bad.start() + 3]!r}")
    if mode in (_HOST, _ZONE):
        invalid = _HOST_BAD[mode].search(s)
        if invalid is not None:
            raise BadURL(f"invalid character {invalid.group()!r} in host name")
    if mode == _HOST:
        # in a host, %-escapes are only for non-ASCII bytes (RFC 3986), or %25 (RFC 6874)
        ascii_escape = _HOST_ASCII_ESCAPE.search(s)
        if ascii_escape is not None:
            raise BadURL(f"invalid URL escape {ascii_escape.group()!r}")
    if mode == _ZONE:
        for m in _ESCAPE.finditer(s):
            v = int(m.group()[1:], 16)
            if m.group() != b"%25" and v != 0x20 and _should_escape(v, _HOST):
                raise BadURL(f"invalid URL escape {m.group()!r}")
    if mode == _QUERY:
        s = s.replace(b"+", b" ")  # before decoding: %2B is a plus
    return unquote_to_bytes(s) if b"%" in s else s  # every escape was checked above


def _escape(s: bytes, mode: int) -> bytes:
    """net/url escape (upper-case hex), for the modes used here (not a query: no space to '+')."""
    return quote_from_bytes(s, safe=_SAFE[mode]).encode("ascii") if _NEEDS_ESCAPE[mode].search(s) else s


def _valid_optional_port(port: bytes) -> bool:
    return port == b"" or (port[:1] == b":" and all(0x30 <= b <= 0x39 for b in port[1:]))


def _parse_host(host: bytes) -> bytes:
    """net/url parseHost."""
    if host.startswith(b"["):
        i = host.rfind(b"]")
        if i < 0:
            raise BadURL("missing ']' in host")
        if not _valid_optional_port(host[i + 1 :]):
            raise BadURL("invalid port after host")
        zone = host.find(b"%25", 0, i)
        if zone >= 0:
            return _unescape(host[:zone], _HOST) + _unescape(host[zone:i], _ZONE) + _unescape(host[i:], _HOST)
    else:
        i = host.rfind(b":")
        if i != -1 and not _valid_optional_port(host[i:]):
            raise BadURL("invalid port after host")
    return _unescape(host, _HOST)


def _scheme(raw: bytes) -> tuple[bytes, bytes]:
    """net/url getScheme."""
    for i, c in enumerate(raw):
        if c in _ALNUM and not (0x30 <= c <= 0x39):
            continue
        if (0x30 <= c <= 0x39) or c in b"+-.":
            if i == 0:
                return b"", raw
            continue
        if c == 0x3A:  # :
            if i == 0:
                raise BadURL("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return b"", raw
    return b"", raw


class URL:
    """A CEL ``kubernetes.URL`` value: the parts of a parsed URL (as Go's url.URL holds them)."""

    __slots__ = ("escapes", "fragment", "host", "opaque", "path", "query", "raw_path", "scheme", "size",
                 "user")  # fmt: skip
    cel_type_name = "kubernetes.URL"

    def __init__(self, raw: bytes, via_request: bool) -> None:
        """net/url parse(raw, viaRequest)."""
        self.size = len(raw)
        self.escapes = raw.count(b"%")
        self.scheme = self.opaque = self.host = self.path = self.raw_path = self.query = b""
        self.user: bytes | None = None
        self.fragment = b""
        if _CONTROL.search(raw) is not None:
            raise BadURL("invalid control character in URL")
        if raw == b"" and via_request:
            raise BadURL("empty url")
        if raw == b"*":
            self.path = b"*"
            return
        scheme, rest = _scheme(raw)
        self.scheme = scheme.lower()
        if rest.endswith(b"?") and rest.count(b"?") == 1:
            rest = rest[:-1]
        else:
            rest, _, self.query = rest.partition(b"?")
        if not rest.startswith(b"/"):
            if self.scheme:
                self.opaque = rest  # a rootless path (mailto:x) is opaque
                return
            if via_request:
                raise BadURL("invalid URI for request")
            if b":" in rest.partition(b"/")[0]:
                raise BadURL("first path segment in URL cannot contain colon")
        if (self.scheme or (not via_request and not rest.startswith(b"///"))) and rest.startswith(b"//"):
            authority, slash, tail = rest[2:].partition(b"/")
            rest = slash + tail
            at = authority.rfind(b"@")
            self.host = _parse_host(authority[at + 1 :])
            if at >= 0:
                userinfo = authority[:at]
                if _NOT_USERINFO.search(userinfo) is not None:
                    raise BadURL("invalid userinfo")
                name, colon, password = userinfo.partition(b":")
                self.user = _unescape(name, _USER) + colon + _unescape(password, _USER)
        path = _unescape(rest, _PATH)  # setPath
        self.path = path
        self.raw_path = b"" if _escape(path, _PATH) == rest else rest

    def escaped_path(self) -> bytes:
        """net/url URL.EscapedPath."""
        raw = self.raw_path
        if raw and _PATH_INVALID.search(raw) is None:
            try:
                if _unescape(raw, _PATH) == self.path:
                    return raw
            except BadURL:
                pass
        if self.path == b"*":
            return b"*"
        return _escape(self.path, _PATH)

    def split_host_port(self) -> tuple[bytes, bytes]:
        """net/url splitHostPort: (hostname without brackets, port)."""
        host, port = self.host, b""
        colon = host.rfind(b":")
        if colon != -1 and _valid_optional_port(host[colon:]):
            host, port = host[:colon], host[colon + 1 :]
        if host.startswith(b"[") and host.endswith(b"]"):
            host = host[1:-1]
        return host, port

    def _key(self) -> tuple[Any, ...]:
        return (self.scheme, self.opaque, self.user, self.host, self.escaped_path(), self.query,
                self.fragment)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        return type(other) is URL and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"url(scheme={self.scheme!r}, host={self.host!r}, path={self.escaped_path()!r})"


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


def _parse(text: str) -> URL:
    """What the Kubernetes ``url()`` does: check with ParseRequestURI, then Parse."""
    raw = text.encode("utf-8")
    URL(raw, via_request=True)
    body, sharp, fragment = raw.partition(b"#")
    u = URL(body, via_request=False)
    if sharp:
        u.fragment = _unescape(fragment, _FRAGMENT)
    return u


def url(text: Any) -> URL:
    """``url(string)``."""
    if type(text) is not str:
        raise no_overload("url", text)
    try:
        return _parse(text)
    except BadURL as e:
        raise EvalError(f"URL parse error during conversion from string: {e}") from None


def is_url(text: Any) -> bool:
    """``isURL(string)``: whether ParseRequestURI accepts the text."""
    if type(text) is not str:
        raise no_overload("isURL", text)
    try:
        URL(text.encode("utf-8"), via_request=True)
    except BadURL:
        return False
    return True


def _url(name: str, v: Any) -> URL:
    if type(v) is not URL:
        raise no_overload(name, v)
    return v


def get_scheme(v: Any) -> str:
    """``URL.getScheme()``."""
    return _text(_url("getScheme", v).scheme)


def get_host(v: Any) -> str:
    """``URL.getHost()``: host and port, an IPv6 address in brackets."""
    return _text(_url("getHost", v).host)


def get_hostname(v: Any) -> str:
    """``URL.getHostname()``: the host without port or brackets."""
    return _text(_url("getHostname", v).split_host_port()[0])


def get_port(v: Any) -> str:
    """``URL.getPort()``."""
    return _text(_url("getPort", v).split_host_port()[1])


def get_escaped_path(v: Any) -> str:
    """``URL.getEscapedPath()``."""
    return _text(_url("getEscapedPath", v).escaped_path())


def get_query(v: Any) -> dict[str, list[str]]:
    """``URL.getQuery()``: net/url parseQuery, pairs it cannot decode left out as Go does."""
    out: dict[str, list[str]] = {}
    for pair in _url("getQuery", v).query.split(b"&"):
        if b";" in pair or not pair:
            continue
        key, _, value = pair.partition(b"=")
        try:
            k, val = _unescape(key, _QUERY), _unescape(value, _QUERY)
        except BadURL:
            continue
        out.setdefault(_text(k), []).append(_text(val))
    return out


#: Units per character of a URL and per %-escape or query pair: parsing runs in Python at about
#: 40 ns a character and 2 µs an escape or pair (a unit is about 0.2 µs), so unlike the text
#: functions no first 4,096 characters are free; otherwise a comprehension could call url() on a
#: 4 KB text thousands of times for a few units each.
_CHARS_PER_UNIT_SHIFT = 2
_UNITS_PER_ESCAPE = 10


def _cost(v: Any) -> int:
    """Every URL function parses or reads the whole URL."""
    if type(v) is str:
        return (len(v) >> _CHARS_PER_UNIT_SHIFT) + _UNITS_PER_ESCAPE * v.count("%")
    if type(v) is URL:
        return (v.size >> _CHARS_PER_UNIT_SHIFT) + _UNITS_PER_ESCAPE * v.escapes
    return 0


def _query_cost(v: Any) -> int:
    """getQuery() also decodes and stores one entry per pair."""
    return _cost(v) + (_UNITS_PER_ESCAPE * (v.query.count(b"&") + 1) if type(v) is URL else 0)


FUNCTIONS: list[Function] = [
    fn("url", url, "(string) -> kubernetes.URL", cost=_cost,
       doc="a URL: an absolute URI or an absolute path (an error otherwise)",
       examples=["url('https://example.com:80/a?k=v').getHostname() == 'example.com'"]),
    fn("isURL", is_url, "(string) -> bool", cost=_cost,
       doc="whether a text is a URL (an absolute URI or an absolute path)",
       examples=["isURL('/absolute-path')", "!isURL('../relative-path')", "!isURL('https://a:b:c/')"]),
    fn("getScheme", get_scheme, "(kubernetes.URL) -> string", member=True, cost=_cost,
       doc="the scheme, lower case; '' when absent",
       examples=["url('HTTPS://example.com/').getScheme() == 'https'"]),
    fn("getHost", get_host, "(kubernetes.URL) -> string", member=True, cost=_cost,
       doc="the host and port (an IPv6 address in brackets); '' when absent",
       examples=["url('https://[::1]:80/').getHost() == '[::1]:80'"]),
    fn("getHostname", get_hostname, "(kubernetes.URL) -> string", member=True, cost=_cost,
       doc="the host without port (an IPv6 address without brackets); '' when absent",
       examples=["url('https://[::1]:80/').getHostname() == '::1'"]),
    fn("getPort", get_port, "(kubernetes.URL) -> string", member=True, cost=_cost,
       doc="the port as text; '' when absent",
       examples=["url('https://example.com:80/').getPort() == '80'"]),
    fn("getEscapedPath", get_escaped_path, "(kubernetes.URL) -> string", member=True, cost=_cost,
       doc="the path, URL-escaped; '' when absent",
       examples=["url('https://example.com/with space/').getEscapedPath() == '/with%20space/'"]),
    fn("getQuery", get_query, "(kubernetes.URL) -> map(string, list(string))", member=True, cost=_query_cost,
       doc="the query parameters, unescaped, each key to its values in order",
       examples=["url('https://example.com/p?k1=a&k2=b&k2=c').getQuery() == "
                 "{'k1': ['a'], 'k2': ['b', 'c']}"]),
]  # fmt: skip
