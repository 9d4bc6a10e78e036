"""Package: the product's identity and the versions of what it runs on.

``version`` may be a pbr ``VersionInfo``, a module with ``version_info``
(as ``nova.version``), an object with ``version_string_with_package()``,
``vendor_string()`` and ``product_string()``, a plain string, or None.
Whatever it lacks, or whatever fails, is shown as unknown.
"""

from __future__ import annotations

from importlib import metadata
import sys
from typing import TYPE_CHECKING
from typing import Any

from df_gmr import naming
from df_gmr.sections import Section

if TYPE_CHECKING:
    from df_gmr.context import ReportContext

UNKNOWN = "unknown"
NOT_INSTALLED = "not installed"

#: Distribution name -> module that may carry ``__version__``.
COMPONENTS = (
    ("df-gmr", "df_gmr"),
    ("eventlet", "eventlet"),
    ("greenlet", "greenlet"),
    ("oslo.service", "oslo_service"),
    ("oslo.config", "oslo_config"),
)


def product_fields(version: Any) -> dict[str, str]:
    """Return product, vendor and version from any supported version."""
    fields = {"product": UNKNOWN, "vendor": UNKNOWN, "version": UNKNOWN}
    if version is None:
        return fields
    if isinstance(version, str):
        fields["version"] = version
        return fields
    info = getattr(version, "version_info", None)
    fields["product"] = _call(version, "product_string") or _package(
        info if info is not None else version
    )
    fields["vendor"] = _call(version, "vendor_string") or UNKNOWN
    fields["version"] = (
        _call(version, "version_string_with_package")
        or _call(info, "version_string_with_package")
        or _call(info, "version_string")
        or _call(version, "version_string")
        or _fallback_str(version)
    )
    return fields


def _call(owner: Any, name: str) -> str | None:
    function = getattr(owner, name, None) if owner is not None else None
    if not callable(function):
        return None
    try:
        value = function()
    except Exception as error:
        return f"{UNKNOWN} ({name}() failed: {naming.error_text(error)})"
    return None if value is None else str(value)


def _package(owner: Any) -> str:
    package = getattr(owner, "package", None)
    return str(package) if isinstance(package, str) else UNKNOWN


def _fallback_str(version: Any) -> str:
    if callable(getattr(version, "version_string", None)) or hasattr(
        version, "version_info"
    ):
        return UNKNOWN
    try:
        return str(version)
    except Exception:
        return UNKNOWN


def component_versions() -> dict[str, str]:
    """Return the versions of Python and the libraries df_gmr cares about.

    A library installed but not imported by this process (eventlet beside
    a service of native threads) says so: its version alone would read
    as if the service ran on it.
    """
    versions = {"python": sys.version.split()[0]}
    for distribution, module_name in COMPONENTS:
        module = sys.modules.get(module_name)
        loaded = getattr(module, "__version__", None)
        if isinstance(loaded, str):
            versions[distribution] = loaded
            continue
        installed = _installed_version(distribution)
        versions[distribution] = installed if module is not None or \
            installed == NOT_INSTALLED else \
            f"{installed} (installed, not imported)"
    return versions


_installed: dict[str, str] = {}


def _installed_version(distribution: str) -> str:
    # Looking a distribution up scans every path entry: once per process.
    if distribution not in _installed:
        try:
            _installed[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            _installed[distribution] = NOT_INSTALLED
    return _installed[distribution]


def collect(context: ReportContext) -> dict[str, Any]:
    """Return the product fields and component versions."""
    data: dict[str, Any] = product_fields(context.version)
    data["components"] = component_versions()
    return data


def format_lines(data: dict[str, Any]) -> list[str]:
    """Render the package section."""
    lines = [
        f"product = {data['product']}",
        f"vendor = {data['vendor']}",
        f"version = {data['version']}",
        "components:",
    ]
    lines.extend(
        f"  {name} = {version}"
        for name, version in data["components"].items()
    )
    return lines


SECTION = Section("package", "Package", collect, format_lines)
