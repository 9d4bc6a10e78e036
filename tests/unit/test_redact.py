"""Credentials inside ordinary option values are masked."""

from __future__ import annotations

import pytest

from df_gmr import redact


@pytest.mark.parametrize(("value", "expected"), [
    ("mysql+pymysql://nova:PASSWORD@db/nova",
     "mysql+pymysql://nova:***@db/nova"),
    ("rabbit://user:PASSWORD@host:5672/",
     "rabbit://user:***@host:5672/"),
    ("rabbit://a:P1@h1:5672,b:P2@h2:5672/vhost",
     "rabbit://a:***@h1:5672,b:***@h2:5672/vhost"),
    ("http://example.org:8080/path", "http://example.org:8080/path"),
    ("dbname=nova user=nova password=s3cr3t host=db",
     "dbname=nova user=nova password=*** host=db"),
    ("plain value", "plain value"),
])
def test_mask_text(value, expected):
    assert redact.mask_text(value) == expected


def test_mask_value_walks_lists_and_dicts():
    value = {"a": ["rabbit://u:PW@h/"], "b": 3}
    assert redact.mask_value(value) == {"a": ["rabbit://u:***@h/"], "b": 3}


@pytest.mark.parametrize(("value", "expected"), [
    ("mysql+pymysql://nova:pa/ss@db/nova", "mysql+pymysql://nova:***@db/nova"),
    ("mysql://nova:p@ss@db/nova", "mysql://nova:***@db/nova"),
    ("password='s 3cret' rest", "password='***' rest"),
    ("admin_password=abc", "admin_password=***"),
    ("os_password=abc", "os_password=***"),
    ("secret_key=abc", "secret_key=***"),
])
def test_harder_forms(value, expected):
    assert redact.mask_text(value) == expected


def test_dict_entries_named_as_credentials_are_masked():
    assert redact.mask_value({"password": "x", "user": "u"}) == {
        "password": "***", "user": "u"}


def test_command_line_values_after_credential_names():
    arguments = ["iscsiadm", "-n", "node.session.auth.password", "-v",
                 "SECRET", "--password", "X", "--verbose", "file"]
    assert redact.mask_command_line(arguments) == [
        "iscsiadm", "-n", "node.session.auth.password", "-v", "***",
        "--password", "***", "--verbose", "file"]


def test_json_pairs():
    assert redact.mask_text('{"password": "abc", "user": "u"}') == (
        '{"password": "***", "user": "u"}')


@pytest.mark.parametrize(("value", "expected"), [
    ("rabbit://user:pa,ss word@host:5672/", "rabbit://user:***@host:5672/"),
    ("rabbit://u:a:b,c d@e@host/v", "rabbit://u:***@host/v"),
    ("rabbit://a:P1@h1:5672,h2:5672/", "rabbit://a:***@h1:5672,h2:5672/"),
    ("'http://u:p w@h/x' and \"mysql://a:b@c/d\"",
     "'http://u:***@h/x' and \"mysql://a:***@c/d\""),
    ("first mysql://a:p1@h/x\nsecond mysql://b:p2@h/y",
     "first mysql://a:***@h/x\nsecond mysql://b:***@h/y"),
])
def test_url_password_runs_to_the_last_at_of_its_url(value, expected):
    assert redact.mask_text(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("api_key=K1", "api_key=***"),
    ("apikey: K2", "apikey: ***"),
    ("api-key=K3", "api-key=***"),
    ("token=T1&next=1", "token=***&next=1"),
    ("auth_token: T2", "auth_token: ***"),
    ("access_key=A1", "access_key=***"),
    ("private_key='P1'", "private_key='***'"),
    ("Authorization: Bearer B1", "Authorization: Bearer ***"),
    ("authorization: Basic dXNlcjpwdw==", "authorization: Basic ***"),
    ("X-Auth-Token: X1", "X-Auth-Token: ***"),
    ('{"Authorization": "Bearer B2", "x": 1}',
     '{"Authorization": "***", "x": 1}'),
    ("cmd --api-key K4 --key K5 --token K6 --password K7 -v",
     "cmd --api-key *** --key *** --token *** --password *** -v"),
    ("cmd --user u:pw --api-key=K8 --user=v:pw2",
     "cmd --user u:*** --api-key=*** --user=v:***"),
])
def test_credential_keys_headers_and_flags(value, expected):
    assert redact.mask_text(value) == expected


@pytest.mark.parametrize("value", [
    "keystone_authtoken",
    "key_manager = castellan.key_manager.barbican_key_manager",
    "token_cache_time = 300",
    "key_file=/etc/ssl/private/nova.pem",
    "sudo -u nova",
    "http://example.org:8080/path?a=1",
])
def test_harmless_keys_stay(value):
    assert redact.mask_text(value) == value


@pytest.mark.parametrize(("name", "credential"), [
    ("admin_password", True), ("api_key", True), ("apiKey", True),
    ("X-Auth-Token", True), ("fixed_key", True), ("access_key", True),
    ("memcache_secret_key", True), ("Authorization", True),
    ("key_manager", False), ("key_file", False), ("token_cache_time",
                                                  False),
    ("auth_url", False), ("username", False), ("insecure", False),
])
def test_credential_names(name, credential):
    assert redact.is_credential_name(name) is credential


def test_command_line_flags_and_user_colon_password():
    assert redact.mask_command_line(
        ["x", "--api-key", "K", "--key", "K2", "--token", "T", "--user",
         "bob:pw", "--api-key=K3", "openstack", "token", "issue"]) == [
        "x", "--api-key", "***", "--key", "***", "--token", "***", "--user",
        "bob:***", "--api-key=***", "openstack", "token", "issue"]


def test_scalars_and_lists_under_credential_keys_are_masked():
    assert redact.mask_value({
        "tokens": ["a", "b"], "auth": {"api_key": 5, "user": "u"},
        "keystone_authtoken": [{"name": "n", "value": "v"}],
        "verify_token": True}) == {
        "tokens": ["***", "***"], "auth": {"api_key": "***", "user": "u"},
        "keystone_authtoken": [{"name": "n", "value": "v"}],
        "verify_token": True}


def test_redactor_masks_secret_values_everywhere_also_percent_encoded():
    redactor = redact.Redactor(["s3 cr/et", "abc"])  # "abc": too short
    data = {"k s3 cr/et": ["x s3 cr/et y", "s3%20cr%2Fet", "abc"], "n": 5}
    assert redactor.data(data) == {
        "k ***": ["x *** y", "***", "abc"], "n": 5}


def test_redactor_cuts_long_strings_after_masking():
    redactor = redact.Redactor(["SECRETVALUE"])
    masked = redactor.data(["a" * 10 + "SECRETVALUE" + "b" * 100], limit=20)
    assert masked == ["a" * 10 + "***" + "b" * 7 + "... [cut at 20 "
                      "characters]"]
    assert redactor.cut_count == 1


def test_the_quick_ascii_hint_says_what_the_case_blind_one_says():
    # Every source line of a few modules, and each hint in every case
    # (upper, lower, title, alternating) inside other text: the lowercased
    # ASCII test and the IGNORECASE one agree on all of them.
    import inspect
    import itertools
    import logging
    import threading

    samples = [line for module in (logging, threading, redact)
               for line in inspect.getsource(module).splitlines()]
    for hint in ("pass", "pw", "secret", "token", "key", "credential",
                 "authoriz", "cookie", "://", "-u ", "-user", "-u", "-ux"):
        cased = [hint.upper(), hint.lower(), hint.title(),
                 "".join(char.upper() if index % 2 else char
                         for index, char in enumerate(hint))]
        samples += [f"x{variant}y" for variant in cased]
        samples += [f"{a}{variant}{b}" for variant, (a, b) in
                    itertools.product(cased, [("", ""), ("a=", " b")])]
    assert sum(1 for text in samples if redact._hinted(text)) > 50
    for text in samples:
        assert text.isascii()
        assert redact._hinted(text) == bool(redact._HINT.search(text)), text
    # Outside ASCII the case-blind test itself answers (a Kelvin sign is
    # a "k" to it).
    assert redact._hinted("\u212aey=1")
