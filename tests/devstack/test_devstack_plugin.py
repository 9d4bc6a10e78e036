"""devstack/settings and devstack/plugin.sh, phase by phase, without DevStack.

Each test sources the plugin in bash (errexit, nounset) against the
stand-in functions of fake_devstack.sh and checks what the phase changed
on disk and which DevStack functions it called.
"""

from __future__ import annotations

import os
from pathlib import Path
import stat
import sys

import pytest

from tests import compiled
from tests.devstack.harness import REPO
from tests.devstack.harness import Devstack
from tests.devstack.harness import environment_lines

NOVA_CONF = """\
[DEFAULT]
# Comments and other keys stay as they are.
debug = True
log_dir = /var/log/nova

[database]
connection = mysql+pymysql://root:secret@127.0.0.1/nova
"""

NOVA_CPU_CONF = """\
[DEFAULT]
compute_driver = libvirt.LibvirtDriver

[oslo_reports]
file_event_handler = /tmp/gmr-trigger

[libvirt]
virt_type = qemu
"""

CINDER_CONF = """\
[DEFAULT]
debug = True
"""


@pytest.fixture
def stack(devstack: Devstack) -> Devstack:
    """Return a DevStack with nova config files and a report directory."""
    nova = devstack.config_file("nova/nova.conf", NOVA_CONF)
    nova_cpu = devstack.config_file("nova/nova-cpu.conf", NOVA_CPU_CONF)
    cinder = devstack.config_file("cinder/cinder.conf", CINDER_CONF)
    devstack.variables.update(
        NOVA_CONF=str(nova), NOVA_CPU_CONF=str(nova_cpu),
        NOVA_CONF_DIR=str(nova.parent), CINDER_CONF=str(cinder),
        DF_GMR_LOG_DIR=str(devstack.root / "reports"))
    return devstack


def ini_value(devstack: Devstack, path: str, section: str,
              option: str) -> str | None:
    """Return an option's value, or None when the option is not there."""
    result = devstack.shell(
        f'if ini_has_option "{path}" {section} {option}; then '
        f'iniget "{path}" {section} {option}; else echo "<none>"; fi')
    assert result.returncode == 0, result.stderr
    value = result.stdout.strip()
    return None if value == "<none>" else value


# settings


def test_settings_enable_the_df_gmr_service(devstack: Devstack) -> None:
    result = devstack.shell('source "$PLUGIN_DIR/settings"\n'
                            'echo "$ENABLED_SERVICES"')
    assert result.stdout.strip().split(",") == [
        "n-api", "n-cpu", "n-sch", "q-agt", "df-gmr"]


def test_settings_enable_the_demo_only_on_request(
        devstack: Devstack) -> None:
    devstack.variables["DF_GMR_DEMO"] = "true"
    result = devstack.shell('source "$PLUGIN_DIR/settings"\n'
                            'echo "$DF_GMR_DEMO $ENABLED_SERVICES"')
    assert result.stdout.split() == [
        "True", "n-api,n-cpu,n-sch,q-agt,df-gmr,df-gmr-demo"]


def test_settings_keep_what_local_conf_set(devstack: Devstack) -> None:
    devstack.variables.update(DF_GMR_FORMAT="json", DF_GMR_LOG_DIR="/srv/r",
                              DF_GMR_SERVICES="n-cpu")
    result = devstack.shell(
        'source "$PLUGIN_DIR/settings"\n'
        'echo "$DF_GMR_FORMAT $DF_GMR_LOG_DIR $DF_GMR_SERVICES $DF_GMR_DIR"')
    assert result.stdout.split() == ["json", "/srv/r", "n-cpu", str(REPO)]


def test_settings_respect_disable_service(devstack: Devstack) -> None:
    devstack.variables["DISABLED_SERVICES"] = "df-gmr"
    result = devstack.shell('source "$PLUGIN_DIR/settings"\n'
                            'echo "$ENABLED_SERVICES"')
    assert "df-gmr" not in result.stdout.strip().split(",")


# every phase


@pytest.mark.parametrize("phase", [
    ("stack", "pre-install"), ("stack", "install"),
    ("stack", "post-config"), ("stack", "extra"), ("stack", "test-config"),
    ("unstack",), ("clean",), ("stack", "a-phase-added-later"),
], ids="/".join)
def test_every_phase_runs_under_errexit_and_nounset(
        stack: Devstack, phase: tuple[str, ...]) -> None:
    stack.variables["DF_GMR_DEMO"] = "True"
    stack.run(*phase)


def test_phases_without_work_change_nothing(stack: Devstack) -> None:
    before = stack.snapshot()
    for phase in [("stack", "pre-install"), ("stack", "test-config"),
                  ("stack", "a-phase-added-later")]:
        stack.run(*phase)
    assert stack.snapshot() == before
    assert stack.calls() == []


# install


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Devstack:
    """Return a DevStack after its install phase, installed for real."""
    devstack = Devstack(root=tmp_path_factory.mktemp("installed"), variables={
        "ENABLED_SERVICES": "n-cpu", "FAKE_DEVSTACK_PYTHON": sys.executable})
    devstack.install_output = devstack.run("stack", "install")
    return devstack


ACTIVATION_PROBE = """\
import signal, sys
print("df_gmr" in sys.modules)
print(signal.getsignal(signal.SIGUSR2) != signal.SIG_DFL)
"""


def test_install_develops_the_plugin_repository(installed: Devstack) -> None:
    assert installed.calls() == [["setup_develop", str(REPO)]]
    # DevStack's Python now imports df_gmr from this repository.
    result = installed.python("import df_gmr; print(df_gmr.__file__)")
    assert result.stdout.strip() == str(REPO / "df_gmr" / "__init__.py")
    # With the C spawn hook built in place, wherever it can be.
    result = installed.python("from df_gmr import speedups\n"
                              "print(speedups.available())")
    assert result.stdout.strip() == (
        "C (df_gmr._sites: the spawn hook where eventlet runs, the stack "
        "walk, masking)"
        if not compiled.why_not_built() else
        "pure Python (df_gmr._sites was not built for this Python)")


def test_install_leaves_devstacks_python_as_it_was_when_not_enabled(
        installed: Devstack) -> None:
    result = installed.python(ACTIVATION_PROBE)
    assert result.stdout.split() == ["False", "False"]


def test_install_lets_df_gmr_enable_activate_devstacks_python(
        installed: Devstack) -> None:
    result = installed.python(ACTIVATION_PROBE, DF_GMR_ENABLE="1")
    assert result.stdout.split() == ["True", "True"]


def test_install_checks_activation_with_doctor(installed: Devstack) -> None:
    result = installed.install_output
    assert "ready for Guru Meditation Reports" in result.stdout
    assert "NOT ready" not in result.stdout
    assert "WARNING" not in result.stderr


def test_install_warns_when_activation_cannot_work(stack: Devstack) -> None:
    # No real install here (the fake setup_develop only records), and
    # DevStack's Python is one without df_gmr (the interpreter under the
    # tests' virtualenv): the doctor finds it unable to activate df_gmr,
    # and says so without stopping the stack.
    stack.variables["PYTHON"] = os.path.join(sys.base_prefix, "bin",
                                             "python3")
    result = stack.run("stack", "install")
    assert "ready for Guru Meditation Reports" not in result.stdout.replace(
        "NOT ready", "")
    assert "WARNING: df_gmr is installed but DF_GMR_ENABLE=1 does not " \
        "activate it" in result.stderr


# post-config: systemd drop-ins


def test_post_config_gives_each_enabled_service_the_environment(
        stack: Devstack) -> None:
    stack.run("stack", "post-config")
    for unit in ["n-api", "n-cpu", "n-sch", "q-agt"]:
        assert environment_lines(stack.dropin(unit)) == {
            "DF_GMR_ENABLE": "1",
            "DF_GMR_SERVICE_NAME": unit,
            "DF_GMR_FORMAT": "text",
            "DF_GMR_LOG_DIR": str(stack.root / "reports"),
        }


def test_post_config_leaves_disabled_services_alone(stack: Devstack) -> None:
    cinder_conf = Path(stack.variables["CINDER_CONF"]).read_bytes()
    stack.run("stack", "post-config")
    assert not stack.dropin("c-vol").parent.exists()
    assert Path(stack.variables["CINDER_CONF"]).read_bytes() == cinder_conf


def test_post_config_twice_changes_nothing_more(stack: Devstack) -> None:
    stack.run("stack", "post-config")
    first = stack.snapshot()
    stack.run("stack", "post-config")
    assert stack.snapshot() == first
    lines = stack.dropin("n-cpu").read_text().splitlines()
    environment = [line for line in lines if line.startswith("Environment=")]
    assert len(environment) == len(set(environment)) == 4
    assert stack.calls("systemctl") == [["systemctl", "daemon-reload"]]


def test_post_config_leaves_devstack_unit_files_alone(
        stack: Devstack) -> None:
    unit = stack.systemd_dir / "devstack@n-cpu.service"
    unit.parent.mkdir(parents=True)
    unit.write_text('[Service]\nEnvironment = "PATH=/usr/bin"\n'
                    'ExecStart = /usr/bin/nova-compute\n')
    before = unit.read_bytes()
    stack.run("stack", "post-config")
    assert unit.read_bytes() == before
    assert stack.dropin("n-cpu").exists()


def test_post_config_with_a_service_list_takes_enabled_ones_only(
        stack: Devstack) -> None:
    stack.variables["DF_GMR_SERVICES"] = "n-cpu,c-vol"
    stack.run("stack", "post-config")
    units = sorted(path.name for path in stack.systemd_dir.iterdir())
    assert units == ["devstack@n-cpu.service.d"]


def test_post_config_covers_the_conductors_devstack_starts_later(
        stack: Devstack) -> None:
    cell_conf = stack.config_file("nova/nova_cell1.conf", "[DEFAULT]\n")
    stack.variables["ENABLED_SERVICES"] = "n-cond"
    stack.run("stack", "post-config")
    for unit in ["n-cond", "n-super-cond", "n-cond-cell1"]:
        assert environment_lines(stack.dropin(unit))[
            "DF_GMR_SERVICE_NAME"] == unit
    assert ini_value(stack, str(cell_conf), "df_gmr", "format") == "text"


def test_post_config_stops_on_an_unknown_format(stack: Devstack) -> None:
    stack.variables["DF_GMR_FORMAT"] = "yaml"
    result = stack.run("stack", "post-config", check=False)
    assert result.returncode != 0
    assert "DF_GMR_FORMAT must be text or json, not 'yaml'" in result.stderr


def test_post_config_again_drops_a_service_no_longer_enabled(
        stack: Devstack) -> None:
    stack.run("stack", "post-config")
    stack.variables["ENABLED_SERVICES"] = "n-api,n-cpu,n-sch"
    stack.run("stack", "post-config")
    assert not stack.dropin("q-agt").parent.exists()
    assert stack.dropin("n-cpu").exists()


# post-config: service config files


def test_post_config_sets_its_keys_in_service_config_files(
        stack: Devstack) -> None:
    stack.run("stack", "post-config")
    reports = str(stack.root / "reports")
    for variable in ["NOVA_CONF", "NOVA_CPU_CONF"]:
        path = stack.variables[variable]
        assert ini_value(stack, path, "oslo_reports", "log_dir") == reports
        assert ini_value(stack, path, "df_gmr", "format") == "text"
    nova_conf = stack.variables["NOVA_CONF"]
    assert ini_value(stack, nova_conf, "DEFAULT", "log_dir") == "/var/log/nova"
    assert ini_value(stack, stack.variables["NOVA_CPU_CONF"], "oslo_reports",
                     "file_event_handler") == "/tmp/gmr-trigger"


def test_post_config_writes_the_json_format(stack: Devstack) -> None:
    stack.variables["DF_GMR_FORMAT"] = "json"
    stack.run("stack", "post-config")
    assert ini_value(stack, stack.variables["NOVA_CONF"], "df_gmr",
                     "format") == "json"
    assert environment_lines(stack.dropin("n-api"))["DF_GMR_FORMAT"] == "json"


def test_post_config_without_log_dir_reports_to_stderr(
        stack: Devstack) -> None:
    del stack.variables["DF_GMR_LOG_DIR"]
    stack.run("stack", "post-config")
    assert "DF_GMR_LOG_DIR" not in environment_lines(stack.dropin("n-cpu"))
    nova_conf = stack.variables["NOVA_CONF"]
    assert ini_value(stack, nova_conf, "oslo_reports", "log_dir") is None
    assert ini_value(stack, nova_conf, "df_gmr", "format") == "text"


def test_post_config_skips_a_config_variable_devstack_did_not_set(
        stack: Devstack) -> None:
    del stack.variables["NOVA_CPU_CONF"]
    nova_cpu_conf = (stack.root / "etc" / "nova" / "nova-cpu.conf")
    before = nova_cpu_conf.read_bytes()
    stack.run("stack", "post-config")
    assert nova_cpu_conf.read_bytes() == before
    assert stack.dropin("n-cpu").exists()


def test_post_config_keeps_a_key_the_operator_set(stack: Devstack) -> None:
    nova_conf = Path(stack.variables["NOVA_CONF"])
    nova_conf.write_text(NOVA_CONF + "\n[oslo_reports]\nlog_dir = /srv/r\n")
    stack.run("stack", "post-config")
    assert ini_value(stack, str(nova_conf), "oslo_reports",
                     "log_dir") == "/srv/r"
    stack.run("unstack")
    assert ini_value(stack, str(nova_conf), "oslo_reports",
                     "log_dir") == "/srv/r"


def test_post_config_creates_the_log_dir_for_the_stack_user_only(
        stack: Devstack) -> None:
    stack.run("stack", "post-config")
    status = (stack.root / "reports").stat()
    assert stat.S_IMODE(status.st_mode) == 0o700
    assert status.st_uid == os.getuid()


# unstack and clean


def test_unstack_restores_config_files_byte_for_byte(
        stack: Devstack) -> None:
    originals = {variable: Path(stack.variables[variable]).read_bytes()
                 for variable in ["NOVA_CONF", "NOVA_CPU_CONF", "CINDER_CONF"]}
    stack.run("stack", "post-config")
    assert Path(stack.variables["NOVA_CONF"]).read_bytes() != originals[
        "NOVA_CONF"]
    stack.run("unstack")
    for variable, original in originals.items():
        assert Path(stack.variables[variable]).read_bytes() == original


def test_unstack_removes_the_dropins_and_keeps_the_log_dir(
        stack: Devstack) -> None:
    stack.run("stack", "post-config")
    stack.run("unstack")
    assert list(stack.systemd_dir.iterdir()) == []
    assert (stack.root / "reports").is_dir()
    assert stack.calls("systemctl") == [["systemctl", "daemon-reload"]] * 2


def test_unstack_keeps_keys_others_added_after_post_config(
        stack: Devstack) -> None:
    nova_conf = stack.variables["NOVA_CONF"]
    stack.run("stack", "post-config")
    stack.shell(f'iniset "{nova_conf}" oslo_reports '
                f'file_event_handler /tmp/trigger')
    stack.run("unstack")
    assert ini_value(stack, nova_conf, "oslo_reports", "log_dir") is None
    assert ini_value(stack, nova_conf, "oslo_reports",
                     "file_event_handler") == "/tmp/trigger"
    assert "[df_gmr]" not in Path(nova_conf).read_text()


def test_unstack_twice_changes_nothing_more(stack: Devstack) -> None:
    stack.run("stack", "post-config")
    stack.run("unstack")
    after_first = stack.snapshot()
    stack.run("unstack")
    assert stack.snapshot() == after_first


def test_clean_removes_the_log_dir_it_created(stack: Devstack) -> None:
    before = stack.snapshot()
    stack.run("stack", "post-config")
    (stack.root / "reports" / "n-cpu_gurumeditation_1_42.txt").write_text("")
    stack.run("clean")
    assert not (stack.root / "reports").exists()
    assert not (stack.dest / "data" / "df-gmr").exists()
    assert stack.snapshot() == before


def test_clean_keeps_a_log_dir_it_did_not_create(stack: Devstack) -> None:
    (stack.root / "reports").mkdir(mode=0o750)
    stack.run("stack", "post-config")
    stack.run("clean")
    assert (stack.root / "reports").is_dir()


# extra: the demo daemon


def test_extra_starts_the_demo_when_asked(stack: Devstack) -> None:
    stack.variables.update(DF_GMR_DEMO="True", PYTHON="/usr/bin/python3")
    stack.run("stack", "extra")
    reports = stack.root / "reports"
    assert stack.calls("run_process") == [[
        "run_process", "df-gmr-demo",
        f"/usr/bin/python3 -m df_gmr.demo serve --workers 2 "
        f"--log-dir {reports}",
        "", "",
        f"DF_GMR_ENABLE=1 DF_GMR_SERVICE_NAME=df-gmr-demo "
        f"DF_GMR_FORMAT=text DF_GMR_LOG_DIR={reports}",
    ]]


def test_extra_starts_nothing_by_default(stack: Devstack) -> None:
    stack.run("stack", "extra")
    assert stack.calls() == []


def test_unstack_stops_the_demo(stack: Devstack) -> None:
    stack.variables["DF_GMR_DEMO"] = "True"
    stack.run("unstack")
    assert stack.calls("stop_process") == [["stop_process", "df-gmr-demo"]]


# plugin not enabled


def test_a_disabled_plugin_does_nothing_in_any_phase(stack: Devstack) -> None:
    stack.variables.update(DISABLED_SERVICES="df-gmr", DF_GMR_DEMO="True")
    before = stack.snapshot()
    for phase in [("stack", "install"), ("stack", "post-config"),
                  ("stack", "extra"), ("unstack",), ("clean",)]:
        stack.run(*phase)
    assert stack.snapshot() == before
    assert stack.calls() == []
