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
