"""Build df-gmr; also ship df_gmr_autostart.pth at the top of site-packages.

The C module df_gmr._sites (the spawn hook's per-spawn work, see
df_gmr/_sites.c) is built where it applies (CPython 3.11 or newer, with
the GIL) and is optional: without a compiler the build says why and
installs the package without it, and df_gmr runs its pure-Python hook
(``df-gmr doctor`` says which one runs).

The .pth file is what lets ``DF_GMR_ENABLE=1`` activate df_gmr in any
Python process without code change (see df_gmr/autostart.py).  A regular
wheel gets it from ``build_py``; an editable install (``pip install -e``,
devstack's ``setup_develop``) builds an editable wheel that carries only
a path finder, so the file is written into that wheel as well.
"""

import os
import platform
import sys
import sysconfig

from setuptools import Extension
from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64: no PEP 660 editable wheels
    editable_wheel = None

PTH_NAME = "df_gmr_autostart.pth"
PTH_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          PTH_NAME)


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, PTH_NAME)
        self.copy_file(PTH_SOURCE, target, preserve_mode=0)

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode),
                os.path.join(self.build_lib, PTH_NAME)]


class _StrategyWithPth:
    """Wrap setuptools' editable strategy: it also writes our .pth file."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        with open(PTH_SOURCE, "rb") as handle:
            wheel.writestr(PTH_NAME, handle.read())

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)


class optional_build_ext(build_ext):
    """Build the C module, or say why not and go on without it."""

    def run(self):
        try:
            super().run()
        except Exception as error:
            self._skipped(error)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:
            self._skipped(error)

    def copy_file(self, infile, outfile, *args, **kwargs):
        # In place (an editable install, devstack's setup_develop): a
        # running service may have the old module mapped, and writing
        # over it would change code under it.  A new file, renamed over.
        partial = f"{outfile}.{os.getpid()}.tmp"
        _, copied = super().copy_file(infile, partial, *args, **kwargs)
        if copied:
            os.replace(partial, outfile)
        return outfile, copied

    def _skipped(self, error):
        print(f"df-gmr: the C spawn hook (df_gmr._sites) was not built "
              f"({error}); df_gmr runs its pure-Python hook",
              file=sys.stderr)


def extensions():
    """The C module, where it applies (see the module's docstring)."""
    if platform.python_implementation() != "CPython" \
            or sys.version_info < (3, 11) \
            or sysconfig.get_config_var("Py_GIL_DISABLED"):
        return []
    return [Extension("df_gmr._sites", ["df_gmr/_sites.c"],
                      optional=True)]


cmdclass = {"build_py": build_py_with_pth, "build_ext": optional_build_ext}
if editable_wheel is not None and hasattr(editable_wheel, "_select_strategy"):

    class editable_wheel_with_pth(editable_wheel):
        # _select_strategy is setuptools' own (since 64): without it the
        # editable install still works, and `df-gmr doctor` says that the
        # activation file is missing.
        def _select_strategy(self, *args, **kwargs):
            return _StrategyWithPth(super()._select_strategy(*args, **kwargs))

    cmdclass["editable_wheel"] = editable_wheel_with_pth

setup(cmdclass=cmdclass, ext_modules=extensions())
