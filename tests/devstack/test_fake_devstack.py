"""The stand-in DevStack functions behave as DevStack documents them.

The plugin tests are only as good as these stand-ins: INI keys live in
their section, iniset is idempotent and lays a file out the way DevStack's
does, enable_service honours disable_service.
"""

from __future__ import annotations

from tests.devstack.harness import Devstack

CONF = """\
[DEFAULT]
debug = True

[database]
debug = False
"""


def run(devstack: Devstack, script: str) -> str:
    result = devstack.shell(script)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_iniset_adds_a_missing_section_at_the_end(devstack: Devstack) -> None:
    conf = devstack.config_file("a.conf", CONF)
    run(devstack, f"iniset {conf} df_gmr format text")
    assert conf.read_text() == CONF + "\n[df_gmr]\nformat = text\n"


def test_iniset_adds_a_key_under_its_section_header(
        devstack: Devstack) -> None:
    conf = devstack.config_file("a.conf", CONF)
    run(devstack, f"iniset {conf} DEFAULT verbose yes")
    assert conf.read_text().startswith("[DEFAULT]\nverbose = yes\ndebug")


def test_iniset_replaces_the_value_in_its_section_only(
        devstack: Devstack) -> None:
    conf = devstack.config_file("a.conf", CONF)
    run(devstack, f"iniset {conf} database debug True")
    assert conf.read_text() == CONF.replace("False", "True")


def test_iniset_twice_is_idempotent_and_accepts_sudo(
        devstack: Devstack) -> None:
    conf = devstack.config_file("a.conf", CONF)
    run(devstack, f"iniset -sudo {conf} Service Environment A=1")
    once = conf.read_bytes()
    run(devstack, f"iniset -sudo {conf} Service Environment A=1")
    assert conf.read_bytes() == once


def test_iniset_creates_a_missing_file(devstack: Devstack) -> None:
    conf = devstack.root / "new" / "b.conf"
    run(devstack, f"iniset {conf} Unit Description 'Devstack x'")
    assert conf.read_text() == "\n[Unit]\nDescription = Devstack x\n"


def test_iniget_reads_its_section_only(devstack: Devstack) -> None:
    conf = devstack.config_file("a.conf", CONF)
    assert run(devstack, f"iniget {conf} database debug") == "False\n"
    assert run(devstack, f"iniget {conf} nowhere debug") == ""


def test_inidelete_removes_the_key_of_its_section_only(
        devstack: Devstack) -> None:
    conf = devstack.config_file("a.conf", CONF)
    run(devstack, f"inidelete -sudo {conf} database debug")
    assert conf.read_text() == "[DEFAULT]\ndebug = True\n\n[database]\n"
    run(devstack, f"inidelete {conf} database debug")
    assert conf.read_text() == "[DEFAULT]\ndebug = True\n\n[database]\n"


def test_enable_service_honours_disable_service(devstack: Devstack) -> None:
    devstack.variables["ENABLED_SERVICES"] = "n-cpu"
    output = run(devstack, 'disable_service q-agt\n'
                           'enable_service q-agt c-vol\n'
                           'echo "$ENABLED_SERVICES"')
    assert output == "n-cpu,c-vol\n"


def test_is_service_enabled_knows_the_catch_all_names(
        devstack: Devstack) -> None:
    devstack.variables["ENABLED_SERVICES"] = "n-cpu,q-agt"
    output = run(devstack, "for s in nova neutron cinder n-cpu n-api; do "
                           "is_service_enabled $s && echo $s; done; true")
    assert output.split() == ["nova", "neutron", "n-cpu"]


def test_recorders_append_their_arguments(devstack: Devstack) -> None:
    devstack.variables["ENABLED_SERVICES"] = "x"
    run(devstack, "setup_develop /src\nrun_process x '/bin/x -v' '' '' A=1\n"
                  "run_process not-enabled /bin/y\n$SYSTEMCTL daemon-reload")
    assert devstack.calls() == [
        ["setup_develop", "/src"],
        ["run_process", "x", "/bin/x -v", "", "", "A=1"],
        ["systemctl", "daemon-reload"],
    ]
