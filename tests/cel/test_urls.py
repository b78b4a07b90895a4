"""The Kubernetes URL library: url(), isURL() and the URL accessors. The cases are the examples of
kubernetes/apiserver pkg/cel/library/urls.go (its doc comment) and the "URL parsing" case of
TestValidationExpressions in kubernetes apiextensions-apiserver pkg/apiserver/schema/cel/validation_test.go
(expression kept as written there), plus net/url behaviours those rest on."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from charter.cel import CelCompileError, CelError, CelType, compile_condition
from charter.cel.limits import FREE_TEXT, Budget

# validation_test.go, "URL parsing", valid: each is true (self.url below)
SELF_URL = "https://user:pass@kubernetes.io:80/docs/home?k1=a&k2=b&k2=c#anchor"
K8S_VALID = [
    "url('/path').getScheme() == ''",
    "url('https://example.com/').getScheme() == 'https'",
    "url('https://example.com:80/').getHost() == 'example.com:80'",
    "url('https://example.com/').getHost() == 'example.com'",
    "url('https://[::1]:80/').getHost() == '[::1]:80'",
    "url('https://[::1]/').getHost() == '[::1]'",
    "url('/path').getHost() == ''",
    "url('https://example.com:80/').getHostname() == 'example.com'",
    "url('https://127.0.0.1/').getHostname() == '127.0.0.1'",
    "url('https://[::1]/').getHostname() == '::1'",
    "url('/path').getHostname() == ''",
    "url('https://example.com:80/').getPort() == '80'",
    "url('https://example.com/').getPort() == ''",
    "url('/path').getPort() == ''",
    "url('https://example.com/path').getEscapedPath() == '/path'",
    "url('https://example.com/with space/').getEscapedPath() == '/with%20space/'",
    "url('https://example.com').getEscapedPath() == ''",
    "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == { 'k1': ['a'], 'k2': ['b', 'c']}",
    "url('https://example.com/path?key with spaces=value with spaces').getQuery() == "
    "{ 'key with spaces': ['value with spaces']}",
    "url('https://example.com/path?').getQuery() == {}",
    "url('https://example.com/path').getQuery() == {}",
    "url(self.url).getScheme() == 'https'",
    "url(self.url).getHost() == 'kubernetes.io:80'",
    "url(self.url).getHostname() == 'kubernetes.io'",
    "url(self.url).getPort() == '80'",
    "url(self.url).getEscapedPath() == '/docs/home'",
    "url(self.url).getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
    "isURL('https://user:pass@example.com:80/path?query=val#fragment')",
    "isURL('/path') == true",
    "isURL('https://a:b:c/') == false",
    "isURL('../relative-path') == false",
    # the "cost for extended lib calculated correctly: url" case: an opaque URL is a URL
    "url('https:://kubernetes.io/').getHostname() != 'test'",
    # urls.go doc comment examples not above
    "url('https://[::1]:80/').getHostname() == '::1'",
    "url('https://127.0.0.1:80/').getHostname() == '127.0.0.1'",
    "url('https://example.com/path with spaces/').getEscapedPath() == '/path%20with%20spaces/'",
    "isURL('/absolute-path')",
    "type(url('/absolute-path')) == kubernetes.URL",
]

# urls.go doc comment: url() is an error on these; and net/url ParseRequestURI refusals
INVALID = [
    "https://a:b:c/",  # urls.go: error (a port that is not a number)
    "../relative-path",  # urls.go: error (neither absolute URI nor absolute path)
    "",  # net/url: empty url
    "relative/path",  # net/url: invalid URI for request
    ":no-scheme",  # net/url: missing protocol scheme
    "https://exa mple.com/",  # net/url: invalid character " " in host name
    "https://[::1/",  # net/url: missing ']' in host
    "https://[::1]x/",  # net/url: invalid port after host
    "/a%zzb",  # net/url: invalid URL escape
    "https://ex%41mple.com/",  # net/url: %-escapes in a host are for non-ASCII bytes only
    "https://u ser@example.com/",  # net/url: invalid userinfo
    "https://example.com/\x7f",  # net/url: invalid control character in URL
    "https://example.com/#%zz",  # net/url: invalid URL escape (ParseRequestURI: in the path)
]


def test_a_fragment_isURL_accepts_but_url_refuses() -> None:
    """As in Go: isURL() is ParseRequestURI only; url() also runs Parse, which checks the fragment."""
    env = {"s": CelType.STRING}
    assert compile_condition("isURL(s)", env).evaluate({"s": "/a?q#%zz"}) is True
    assert isinstance(compile_condition("url(s) == url(s)", env).evaluate({"s": "/a?q#%zz"}), CelError)


@pytest.mark.parametrize("text", K8S_VALID)
def test_kubernetes_cases(text: str) -> None:
    c = compile_condition(text, {"self": CelType.OBJECT({"url": CelType.STRING})})
    assert c.evaluate({"self": {"url": SELF_URL}}) is True, text


@pytest.mark.parametrize("text", INVALID)
def test_invalid_urls(text: str) -> None:
    env = {"s": CelType.STRING}
    assert compile_condition("isURL(s)", env).evaluate({"s": text}) is False
    got = compile_condition("url(s).getScheme() == ''", env).evaluate({"s": text})
    assert isinstance(got, CelError) and "URL parse error" in str(got), got


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("mailto:a@example.com", ("mailto", "", "", "", "")),  # opaque: no host, no path
        ("*", ("", "", "", "", "*")),  # net/url: the request target '*'
        ("HTTP://Example.COM:8080/a%2Fb?x", ("http", "Example.COM:8080", "Example.COM", "8080", "/a%2Fb")),
        ("https://example.com/a%20b", ("https", "example.com", "example.com", "", "/a%20b")),
        ("https://example.com/ä", ("https", "example.com", "example.com", "", "/%C3%A4")),
        ("https://example.com:/x", ("https", "example.com:", "example.com", "", "/x")),
        ("https://[fe80::1%25en0]:8080/", ("https", "[fe80::1%en0]:8080", "fe80::1%en0", "8080", "/")),
        # ParseRequestURI accepts it as an absolute path, then url.Parse (which gives the parts)
        # reads a network-path reference: a host and no scheme
        ("//host/p", ("", "host", "host", "", "/p")),
    ],
)
def test_net_url_parts(text: str, want: tuple[str, ...]) -> None:
    c = compile_condition("[u.getScheme(), u.getHost(), u.getHostname(), u.getPort(), u.getEscapedPath()]",
                          {"u": CelType.DYN}, expect_bool=False)  # fmt: skip
    u = compile_condition("url(s)", {"s": CelType.STRING}, expect_bool=False).evaluate({"s": text})
    assert not isinstance(u, CelError), u
    assert tuple(c.evaluate({"u": u})) == want


def test_query_decoding() -> None:
    """net/url parseQuery: + is a space, %XX decoded, a pair with ';' or a bad escape dropped."""
    q = compile_condition("url(s).getQuery()", {"s": CelType.STRING}, expect_bool=False)
    got = q.evaluate({"s": "/p?a=1+2&a=%41&b&=c&d=%zz&e;f=1&&g=x=y"})
    assert got == {"a": ["1 2", "A"], "b": [""], "": ["c"], "g": ["x=y"]}


def test_send_only_to_our_domain() -> None:
    """The motivating policy, with no regular expression: the host, not a prefix of the text."""
    c = compile_condition(
        "isURL(u) && url(u).getScheme() == 'https' && (url(u).getHostname() == 'example.com' || "
        "url(u).getHostname().endsWith('.example.com'))",
        {"u": CelType.STRING},
    )
    assert c.evaluate({"u": "https://api.example.com/v1"}) is True
    for bad in ("https://example.com.evil.io/", "https://example.com@evil.io/", "http://example.com/",
                "https://evil.io/?next=https://example.com", "https://evilexample.com/",
                "example.com"):  # fmt: skip
        assert c.evaluate({"u": bad}) is False, bad


def test_misuse_is_a_compile_error() -> None:
    for text in ("url(1) == url('/')", "'https://x/'.getHost() == ''", "url('/x').getPort() == 80",
                 "isURL(url('/x'))", "url('/x').getQuery()['k'] == 'v'"):  # fmt: skip
        with pytest.raises(CelCompileError):
            compile_condition(text, {})


def test_long_urls_are_charged() -> None:
    class Act(dict[str, object]):
        cel_budget: Budget

    long = "https://example.com/" + "a/" * (FREE_TEXT * 4)
    c = compile_condition("url(u).getEscapedPath() != '' && isURL(u)", {"u": CelType.STRING})
    act = Act({"u": long})
    act.cel_budget = Budget(10_000_000)
    assert c.evaluate(act) is True
    # url(), getEscapedPath() and isURL() each read the whole text
    assert act.cel_budget.cost >= 3 * (len(long) >> 2)
    act = Act({"u": long})
    act.cel_budget = Budget(100)
    assert isinstance(c.evaluate(act), CelError)


def test_a_url_parsed_in_a_loop_runs_out_of_budget() -> None:
    """A 4 KB URL costs its length even below the texts' free 4,096 characters: a comprehension
    parsing it again and again ends with "cost limit exceeded" within the budget's time."""
    import time

    u = "https://example.com/" + "a%20/" * 800 + "?" + "k=v&" * 200
    c = compile_condition("l.all(x, url(u).getQuery().size() > 0)",
                          {"u": CelType.STRING, "l": CelType.LIST(CelType.INT)})  # fmt: skip
    start = time.perf_counter()
    got = c.evaluate({"u": u, "l": list(range(500))})
    assert isinstance(got, CelError) and "cost limit" in str(got)
    assert time.perf_counter() - start < 2.0


_SEG = st.text(alphabet="abcXYZ019-._~!$&'()*+,;=:@", min_size=0, max_size=6)
_QV = st.text(alphabet="abcXYZ019-._~", min_size=0, max_size=5)


@st.composite
def _urls(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    scheme = draw(st.sampled_from(["http", "https", "s3", "git+ssh"]))
    host = draw(st.sampled_from(["example.com", "127.0.0.1", "[::1]", "[2001:db8::7]", "a-b.c_d.io"]))
    port = draw(st.sampled_from(["", "0", "80", "65535", "123456"]))
    path = "".join("/" + s for s in draw(st.lists(_SEG, max_size=4)))
    pairs = draw(st.lists(st.tuples(_QV.filter(bool), _QV), max_size=4))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    text = f"{scheme}://{host}{':' + port if port else ''}{path}{'?' + query if query else ''}"
    return text, {"scheme": scheme, "host": host + (":" + port if port else ""),
                  "hostname": host.strip("[]"), "port": port, "path": path, "pairs": pairs}  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(_urls())
def test_generated_urls_against_their_parts_and_urllib(case: tuple[str, dict[str, object]]) -> None:
    text, want = case
    c = compile_condition("[u.getScheme(), u.getHost(), u.getHostname(), u.getPort(), u.getEscapedPath()]",
                          {"u": CelType.DYN}, expect_bool=False)  # fmt: skip
    u = compile_condition("url(s)", {"s": CelType.STRING}, expect_bool=False).evaluate({"s": text})
    assert not isinstance(u, CelError), (text, u)
    assert c.evaluate({"u": u}) == [
        want["scheme"],
        want["host"],
        want["hostname"],
        want["port"],
        want["path"],
    ]
    split = urlsplit(text)  # an independent parser agrees on the parts both define
    assert (split.scheme, split.netloc, split.path) == (want["scheme"], want["host"], want["path"])
    q = compile_condition("u.getQuery()", {"u": CelType.DYN}, expect_bool=False).evaluate({"u": u})
    assert q == parse_qs(split.query, keep_blank_values=True)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40) | st.text(alphabet="/:@[]%?#&=+ab19.", max_size=30))
def test_any_text_is_a_url_or_an_error_never_a_crash(text: str) -> None:
    env = {"s": CelType.STRING}
    is_url = compile_condition("isURL(s)", env).evaluate({"s": text})
    parts = compile_condition("[url(s).getScheme(), url(s).getHost(), url(s).getHostname(), "
                              "url(s).getPort(), url(s).getEscapedPath()].size() == 5 && "
                              "url(s).getQuery().size() >= 0",
                              env)  # fmt: skip
    got = parts.evaluate({"s": text})
    # url() is ParseRequestURI then Parse, isURL() only the first: they differ only on a fragment
    # Parse refuses ('/a?q#%zz', 'a:#%'), which ParseRequestURI reads, unchecked, as part of the
    # query or of an opaque URL, and on '//authority' with no scheme, a path to ParseRequestURI and
    # an authority (which may be malformed: '//[') to Parse
    if is_url and "#" not in text and not text.startswith("//"):
        assert got is True, (text, got)
    else:
        assert got is True or isinstance(got, CelError), (text, got)
        assert is_url or got is not True, text
    # the fast path does not compile URL functions: conditions using them are the evaluator's
    assert parts.fn is parts.evaluate
