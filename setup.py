"""Build df-gmr; also ship df_gmr_autostart.pth at the top of the wheel.

The .pth file is what lets ``DF_GMR_ENABLE=1`` activate df_gmr in any
Python process without code change (see df_gmr/autostart.py).
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "df_gmr_autostart.pth"


class build_py_with_pth(build_py):
    def run(self):
        super().run()
        source = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              PTH_NAME)
        target = os.path.join(self.build_lib, PTH_NAME)
        self.copy_file(source, target, preserve_mode=0)

    def get_outputs(self, include_bytecode=True):
        return [*super().get_outputs(include_bytecode),
                os.path.join(self.build_lib, PTH_NAME)]


setup(cmdclass={"build_py": build_py_with_pth})
