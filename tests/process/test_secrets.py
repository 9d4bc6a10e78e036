"""A real eventlet daemon full of credentials: its reports show none.

tests/scripts/secrets_scene.py holds secret options, credentials in
registered sections, in a tpool call's arguments, in a socket path, a
thread name and command lines; real SIGUSR2, real report files.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.daemons import running

#: Arguments of the scene's own command line (Processes section).
CLI = ["--api-key", "CliKey1", "--token", "CliToken2", "--user",
       "bob:CliUserPw3", "--password", "CliPw4", "--api-key=CliKey5"]
#: Every credential the scene holds; none may appear in a report.
CREDENTIALS = [
    "Db5 ecret,1", "pa,ss word", "ApiKeyValue7", "ListSecretOne",
    "ListSecretTwo", "SockSecret42", "AdminPassword9", "MemcacheKey5",
    "FixedKey123", "PlainPw77", "BearerTok88", "XAuthTok99", "NestedTok11",
    "TpoolPw55", "CliKey1", "CliToken2", "CliUserPw3", "CliPw4", "CliKey5"]


def reports(directory, count: int, *flags: str) -> list[str]:
    """Run the scene, signal it ``count`` times, return the reports."""
    with running("secrets_scene.py", str(directory), *flags, *CLI,
                 log_dir=str(directory)) as daemon:
        daemon.wait_ready()
        texts = []
        for number in range(1, count + 1):
            daemon.signal()
            paths = daemon.wait_reports(number)
            with open(paths[-1], encoding="utf-8") as handle:
                texts.append(handle.read())
        return texts


@pytest.fixture(scope="module")
def text_report(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("text")
    return reports(directory, 1, "--format", "text")[0]


@pytest.fixture(scope="module")
def json_reports(tmp_path_factory) -> list[str]:
    """Two JSON reports of one process, one signal each."""
    return reports(tmp_path_factory.mktemp("json"), 2, "--format", "json")


def refuse_constant(name: str) -> None:
    raise AssertionError(f"not strict JSON: {name}")


def section(document: dict, name: str) -> dict:
    [found] = [entry for entry in document["sections"]
               if entry["name"] == name]
    return found


def test_no_credential_appears_in_the_text(text_report):
    leaked = [secret for secret in CREDENTIALS if secret in text_report]
    assert leaked == [], text_report


def test_no_credential_appears_in_the_json(json_reports):
    for text in json_reports:
        leaked = [secret for secret in CREDENTIALS if secret in text]
        assert leaked == [], text


def test_text_shows_what_is_not_a_credential(text_report):
    for expected in (
            "transport_url = rabbit://user:***@rabbit-host:5672/",
            "db_note = uses *** inside",
            "admin_password = ***",
            "api_key = ***",
            "backend = barbican",
            "auth_url = http://keystone:5000/v3",
            "mask_url_credentials = True",
            "keystone_authtoken:",
            "calling partial(__main__.blocking)",
            "headers = Authorization: Bearer ***",
            "X-Auth-Token: ***",
            "user = alice",
            "--user bob:*** --password *** --api-key=***",
            "worker-***"):
        assert expected in text_report, expected


def test_json_is_strict_and_only_the_huge_section_fails(tmp_path):
    [text] = reports(tmp_path, 1, "--format", "json", "--odd-sections")
    document = json.loads(text, parse_constant=refuse_constant)
    huge = section(document, "huge")
    assert huge["data"] is None
    assert "5003 digits" in huge["error"]
    odd = section(document, "odd_numbers")
    assert odd["error"] is None
    assert odd["data"] == {"nan": "NaN", "inf": "-Infinity", "fine": 1.5}
    assert "NaN" in odd["notes"][0]
    failed = [entry["name"] for entry in document["sections"]
              if entry["error"] is not None]
    assert failed == ["huge"]


def test_a_hanging_repr_in_tpool_costs_nothing(tmp_path):
    [text] = reports(tmp_path, 1, "--format", "text", "--hanging-repr")
    green = re.search(r"==== Green Threads +====\n=+\n(.*?)\n\n=+\n", text,
                      re.DOTALL).group(1)
    assert "Section failed" not in green
    assert "calling __main__.HangingRepr" in green
    assert "calling partial(__main__.blocking)" in green


def hubs_and_greenlets(text: str) -> tuple[list, set]:
    document = json.loads(text)
    hubs = [(hub["class"], hub["thread"], hub["status"])
            for hub in section(document, "eventlet_hub")["data"]["hubs"]]
    greens = {ident for group in section(document, "green_threads")[
        "data"]["groups"] for ident in group["ids"]}
    return hubs, greens


def test_second_report_lists_the_hubs_and_greenlets_of_the_first(
        json_reports):
    first, second = json_reports
    assert hubs_and_greenlets(second) == hubs_and_greenlets(first)
    assert len(hubs_and_greenlets(second)[0]) == 1


def test_no_hub_is_created_in_df_gmr_threads(json_reports):
    # The scene's "Hub Objects" section counts every hub of the process;
    # the first report's delivery is what used to create one.
    counts = [section(json.loads(text), "hub_objects")["data"]
              for text in json_reports]
    assert counts == [1, 1]
