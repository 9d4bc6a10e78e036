"""The Package section accepts every kind of version object."""

from __future__ import annotations

import importlib
from importlib import metadata
import platform
import types

import pbr.version

import df_gmr
from df_gmr.sections import package
from tests.daemons import run_python


class OsloStyleVersion:
    def vendor_string(self):
        return "OpenStack Foundation"

    def product_string(self):
        return "OpenStack Dragonflow"

    def version_string_with_package(self):
        return "2026.2-1"


class FailingVersion:
    def version_string_with_package(self):
        raise RuntimeError("no version here")


def test_none_is_all_unknown():
    assert package.product_fields(None) == {
        "product": "unknown", "vendor": "unknown", "version": "unknown"}


def test_plain_string_is_the_version():
    assert package.product_fields("1.2.3")["version"] == "1.2.3"


def test_oslo_style_object_gives_all_three():
    assert package.product_fields(OsloStyleVersion()) == {
        "product": "OpenStack Dragonflow",
        "vendor": "OpenStack Foundation",
        "version": "2026.2-1",
    }


def test_pbr_version_info_names_its_package():
    fields = package.product_fields(pbr.version.VersionInfo("oslo.config"))
    assert fields["product"] == "oslo.config"
    assert fields["version"] == metadata.version("oslo.config")


def test_module_with_version_info():
    module = types.ModuleType("myservice.version")
    module.version_info = pbr.version.VersionInfo("oslo.config")
    module.vendor_string = lambda: "ACME"
    fields = package.product_fields(module)
    assert fields["vendor"] == "ACME"
    assert fields["product"] == "oslo.config"
    assert fields["version"] == metadata.version("oslo.config")


def test_failing_method_is_unknown_not_an_error():
    fields = package.product_fields(FailingVersion())
    assert fields["version"].startswith("unknown (")
    assert "no version here" in fields["version"]


def test_components_name_the_libraries_with_their_versions():
    for module in ("eventlet", "greenlet", "oslo_service", "oslo_config"):
        importlib.import_module(module)  # imported: the version alone
    versions = package.component_versions()
    assert versions["python"] == platform.python_version()
    assert versions["df-gmr"] == df_gmr.__version__
    for name in ("eventlet", "greenlet", "oslo.service", "oslo.config"):
        assert versions[name] == metadata.version(name), name


NOT_IMPORTED_SCRIPT = """
from df_gmr.sections import package
print(package.component_versions()["eventlet"])
import eventlet
print(package.component_versions()["eventlet"])
"""


def test_a_library_installed_but_not_imported_says_so():
    # A service of native threads with eventlet installed beside it
    # (nova-conductor 34): its version alone would read as if it ran on it.
    lines = run_python(NOT_IMPORTED_SCRIPT).stdout.splitlines()
    installed = metadata.version("eventlet")
    assert lines == [f"{installed} (installed, not imported)", installed]
