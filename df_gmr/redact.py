"""Mask credentials in a report.

What is masked
==============

* The password of a URL, ``scheme://user:PASSWORD@host``.  It runs from
  the ``:`` after the user to the last ``@`` of that URL, so it may hold
  ``/``, ``@``, ``,``, ``:`` or spaces (``rabbit://u:pa,ss word@h:5672/``).
  A URL ends at the next ``scheme://``, at a line end, or at the quote
  that opened it.  A ``,`` starts another host (``rabbit://a:P1@h1:5672,
  b:P2@h2/``) only after ``@host[:port]`` and before ``user:``.
* The value of ``NAME=VALUE``, ``NAME: VALUE``, ``"NAME": "VALUE"`` and
  ``--NAME VALUE`` when NAME names a credential (``is_credential_name``):
  it holds password, passwd, passphrase, passcode, secret, credential,
  api_key/apikey/api-key, access_key, private_key, auth_key or auth_token,
  or its last word is token, key, pwd, pw, pass, authorization or cookie
  (``X-Auth-Token``, ``fixed_key``, ``Authorization``).  An auth scheme
  is kept: ``Authorization: Bearer ***``.  ``--user u:pw``, ``-u u:pw`` and
  ``--user=u:pw`` keep the user, not the password.
* Every scalar of a dict entry whose key names a credential; a mapping
  or list under such a key is searched, not dropped (``keystone_authtoken``
  still shows its options).
* With a ``Redactor``: every occurrence of the given secret values (the
  values of ``secret=True`` options, also percent-encoded), anywhere in
  any string, dict keys included.

Limits
======

* An unquoted value ends at whitespace, ``&``, ``;`` or ``", "``: an
  unquoted password holding a space shows what follows the space.  A URL
  password is not limited so (see above).
* Names whose last word is not a credential word show their value:
  ``key_file``, ``key_manager``, ``token_cache_time`` (paths, class names,
  numbers).
* Secret values shorter than ``MIN_SECRET`` characters are masked only in
  their own option; a secret split across strings or written in another
  encoding (JSON escapes, base64) is not found.
* Masking can hide more than the credential (an ``@`` later on the same
  line extends a URL password): it errs on the side of hiding.

Application objects are named, never printed, by ``naming``.

This module imports nothing at report time: it runs in the reporting
thread, where a first import would take the import lock.
"""

from __future__ import annotations

from collections.abc import Iterable
import functools
import re
from typing import Any
from urllib.parse import quote

MASK = "***"
#: Secret values shorter than this are not searched for in other strings.
MIN_SECRET = 4

# -- names ------------------------------------------------------------------

_STRONG_NAME = re.compile(
    r"pass(?:word|wd|phrase|code)|secret|credential"
    r"|api_?key|access_?key|private_?key|auth_?key|auth_?token")
#: A name whose last word is one of these names a credential.
_LAST_WORDS = frozenset({
    "token", "tokens", "key", "keys", "pwd", "pw", "pass", "authorization",
    "cookie", "cookies"})
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
#: Flags whose value is ``user:password``.
USER_FLAGS = frozenset({"--user", "-u", "--proxy-user"})


@functools.lru_cache(maxsize=4096)
def is_credential_name(name: str) -> bool:
    """Say whether a key, option or flag name names a credential."""
    # Most names have no capital: re.sub with a template calls back into
    # Python for each call, and a first report reads a hundred new names.
    normal = name if name.islower() else _CAMEL.sub(r"\1_\2", name).lower()
    if _STRONG_NAME.search(normal.replace("-", "_")):
        return True
    words = [word for word in _WORD_SPLIT.split(normal) if word]
    return bool(words) and words[-1] in _LAST_WORDS


# -- text ---------------------------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_USER = re.compile(r"[^:/@,\s]*:")
_HOST_PORT = re.compile(r"[\w.\-\[\]:%]*")
#: Longer than this, what follows an ``@`` is no host name.
MAX_HOST = 300
_QUOTED = r"'[^'\n]*'|\"[^\"\n]*\""
_BARE = r"(?:[^\s&;,'\"]|,(?!\s))+"
_SCHEMES = r"(?:bearer|basic|digest|negotiate|token|oauth|ntlm)[ \t]+"
_PAIR = re.compile(
    rf"(?<![\w.-])(?P<key>[\w.-]+)(?P<close>['\"]?)"
    rf"(?P<sep>[ \t]*[=:][ \t]*)(?P<scheme>{_SCHEMES})?"
    rf"(?P<value>{_QUOTED}|{_BARE})", re.IGNORECASE)
_FLAG_VALUE = re.compile(
    rf"(?<!\S)(?P<key>--?[A-Za-z][\w.-]*)(?P<sep>[ \t]+)"
    rf"(?P<value>{_QUOTED}|[^\s'\"-]\S*)")
#: Cheap test: a string without any of these holds nothing to mask.
_HINTS = r"pass|pw|secret|token|key|credential|authoriz|cookie|://|-u\b|-user"
_HINT = re.compile(_HINTS, re.IGNORECASE)
#: The same test of an ASCII string, lowercased: there the two agree, and
#: matching without IGNORECASE (which folds the case of every character
#: it tries) is about five times faster; every distinct string of a report
#: is tested (its stacks' source lines, its options...).
_ASCII_HINT = re.compile(_HINTS)


def _hinted(text: str) -> bool:
    if text.isascii():
        return _ASCII_HINT.search(text.lower()) is not None
    return _HINT.search(text) is not None


def _quoted(value: str, replacement: str = MASK) -> str:
    quote_mark = value[0] if value[:1] in ("'", '"') else ""
    return f"{quote_mark}{replacement}{quote_mark}"


def _user_only(value: str) -> str:
    """Return ``user:***`` for ``user:password`` (quotes kept)."""
    inner = value.strip("'\"")
    user, colon, _ = inner.partition(":")
    return _quoted(value, f"{user}:{MASK}") if colon else value


def _pair(match: re.Match[str]) -> str:
    key, value = match.group("key"), match.group("value")
    if key.startswith("-") and key in USER_FLAGS:
        masked = _user_only(value)
    elif is_credential_name(key) and value.strip("'\"") != MASK:
        masked = _quoted(value)
    else:
        return match.group(0)
    head = match.group(0)[:match.start("value") - match.start()]
    return head + masked


def _host_segments(authority: str) -> list[str]:
    """Split ``a:P1@h1:5672,b:P2@h2/x`` at the commas between hosts."""
    segments, start, previous, last_at = [], 0, 0, -1
    index = authority.find(",")
    while index >= 0:
        at = authority.rfind("@", previous, index)
        last_at = at if at >= 0 else last_at
        previous = index
        host = authority[last_at + 1:index] if last_at >= start else None
        if host is not None and len(host) <= MAX_HOST and \
                _HOST_PORT.fullmatch(host) and _USER.match(authority,
                                                           index + 1):
            segments.append(authority[start:index + 1])
            start = index + 1
        index = authority.find(",", index + 1)
    segments.append(authority[start:])
    return segments


def _mask_userinfo(segment: str) -> str:
    user = _USER.match(segment)
    at = segment.rfind("@")
    if user is None or at < user.end():
        return segment
    return segment[:user.end()] + MASK + segment[at:]


def _url_end(text: str, start: int, scheme_start: int) -> int:
    """Return where the URL whose authority starts at ``start`` ends."""
    found = _SCHEME.search(text, start)
    end = found.start() if found else len(text)
    newline = text.find("\n", start, end)
    if newline >= 0:
        end = newline
    opener = text[scheme_start - 1] if scheme_start else ""
    if opener in ("'", '"'):
        closing = text.find(opener, start, end)
        if closing >= 0:
            end = closing
    return end


def mask_urls(text: str) -> str:
    """Return ``text`` with the password of every URL in it masked."""
    pieces, done = [], 0
    for found in _SCHEME.finditer(text):
        if found.start() < done:
            continue
        start = found.end()
        end = _url_end(text, start, found.start())
        segments = _host_segments(text[start:end])
        pieces.append(text[done:start])
        pieces.extend(_mask_userinfo(segment) for segment in segments)
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


def mask_text(text: str) -> str:
    """Return ``text`` with URL passwords and credential values masked."""
    if not _hinted(text):
        return text
    if "://" in text:
        text = mask_urls(text)
    text = _PAIR.sub(_pair, text)
    return _FLAG_VALUE.sub(_pair, text)


def mask_value(value: Any, under_credential: bool = False) -> Any:
    """Mask credentials in plain data: strings, lists and dicts of them.

    A scalar under a key that names a credential is masked whole.
    """
    if isinstance(value, dict):
        return {key: mask_value(item, isinstance(key, str) and
                                is_credential_name(key))
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(item, under_credential) for item in value]
    if under_credential and value is not None and not isinstance(value,
                                                                 bool):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    return value


#: Arguments that name a credential whose value is the next argument:
#: a flag, or a dotted setting (``iscsiadm -n node.session.auth.password
#: -v VALUE``).
_ARGUMENT_NAME = re.compile(r"^(?:--?[\w.-]+|[\w-]+(?:\.[\w-]+)+)$")


def mask_command_line(arguments: list[str]) -> list[str]:
    """Mask credentials in a command line, ``--password VALUE`` included.

    The value after a credential's name is masked even past flags
    (``-n auth.password -v VALUE``); ``--user u:pw`` keeps ``u``.
    """
    masked = []
    pending = ""  # "secret" or "user": the next value is one
    for argument in arguments:
        if pending and not argument.startswith("-"):
            masked.append(MASK if pending == "secret"
                          else _user_only(argument))
            pending = ""
            continue
        masked.append(mask_text(argument))
        if argument in USER_FLAGS:
            pending = "user"
        elif _ARGUMENT_NAME.match(argument) and is_credential_name(
                argument):
            pending = "secret"
    return masked


# -- bounds -------------------------------------------------------------------


def cut(text: str, limit: int) -> str:
    """Return ``text`` cut to ``limit`` characters, saying it was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut at {limit} characters]"


class Redactor:
    """Mask secret values and credentials in a report's plain data.

    One per report: it remembers each string it masked (a report repeats
    file names and wait reasons many times).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants = set()
        for secret in secrets:
            if isinstance(secret, str) and len(secret) >= MIN_SECRET:
                variants.add(secret)
                variants.add(quote(secret, safe=""))
        ordered = sorted(variants, key=len, reverse=True)  # longest first
        self._secrets = re.compile("|".join(map(re.escape, ordered))) \
            if ordered else None
        #: Masked strings, with patterns and without (secrets only).
        self._done: dict[bool, dict[str, str]] = {True: {}, False: {}}
        #: Dict keys: key -> (masked key, whether its value is hidden),
        #: with patterns and without.
        self._keys: dict[bool, dict[str, tuple[str, bool]]] = {
            True: {}, False: {}}
        self._patterns = True
        self._limit: int | None = None
        self.cut_count = 0

    def text(self, text: str, patterns: bool = True) -> str:
        """Return ``text`` with the secrets (and credentials) masked."""
        done = self._done[patterns]
        masked = done.get(text)
        if masked is None:
            masked = text
            if self._secrets is not None:
                masked = self._secrets.sub(MASK, masked)
            if patterns:
                masked = mask_text(masked)
            done[text] = masked
        return masked

    def data(self, value: Any, patterns: bool = True,
             limit: int | None = None) -> Any:
        """Return plain data masked; strings over ``limit`` are cut.

        ``cut_count`` counts the strings cut.  Without ``patterns`` only
        the secret values are masked (the data was masked before).
        """
        self.begin(patterns, limit)
        return self.walk(value, False)

    def begin(self, patterns: bool = True, limit: int | None = None
              ) -> None:
        """Set how the next walk masks (see ``data``)."""
        self._patterns, self._limit = patterns, limit

    @property
    def limit(self) -> int | None:
        """The length strings are cut at by the walks (None: not cut)."""
        return self._limit

    def keys(self) -> dict[str, tuple[str, bool]]:
        """Return the dict keys masked so far: key -> (masked key, whether
        its value is hidden); ``key`` adds one."""
        return self._keys[self._patterns]

    def memos(self) -> tuple[dict[str, tuple[str, bool]], dict[str, str],
                             int | None]:
        """Return ``keys()``, the strings masked so far (string -> masked)
        and ``limit``, of the current settings: what tells, without a
        walk, that data already seen masks to itself (see
        ``plain.Normaliser.masked``)."""
        return self._keys[self._patterns], self._done[self._patterns], \
            self._limit

    def key(self, key: str) -> tuple[str, bool]:
        """Return a dict key masked, and whether its value is hidden (the
        key names a credential); remembered in ``keys()``."""
        hides = self._patterns and is_credential_name(key)
        masked = self.text(key, False) if self._secrets is not None else key
        found = self._keys[self._patterns][key] = (masked, hides)
        return found

    def walk(self, value: Any, hidden: bool) -> Any:
        """Return plain data masked (after ``begin``); ``hidden``: the
        value is under a credential key (its scalars are masked whole)."""
        # Called for every value of a report (100,000 greenthreads): the
        # numbers that make most of it are passed over inline.
        kind = type(value)
        if kind is str:
            return self.string(value, hidden)
        if kind is list:
            return [item if type(item) in _NUMBERS and not hidden
                    else self.walk(item, hidden) for item in value]
        if kind is dict:
            # Once per key of the whole report: a key is masked and tested
            # once per walk's settings (keys repeat in every member).
            masked = {}
            keys = self._keys[self._patterns]
            for key, item in value.items():
                hides = False
                if type(key) is str:
                    key, hides = keys.get(key) or self.key(key)
                if type(item) in _NUMBERS and not hides:
                    masked[key] = item
                else:
                    masked[key] = self.walk(item, hides)
            return masked
        if hidden and value is not None and kind is not bool:
            return MASK
        return value

    def string(self, text: str, hidden: bool) -> str:
        """Return a string masked (whole when ``hidden``) and cut."""
        if hidden:
            return MASK
        masked = self.text(text, self._patterns)
        if self._limit is not None and len(masked) > self._limit:
            self.cut_count += 1
            masked = cut(masked, self._limit)
        # Unchanged: the string given (an equal one was masked before):
        # its container is then kept as it is (see Normaliser.masked).
        return text if masked == text else masked


_NUMBERS = (int, float, bool, type(None))
