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
