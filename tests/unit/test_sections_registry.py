"""Third-party sections register as the built-ins do: an entry point."""

from __future__ import annotations

from tests.daemons import child_env
from tests.daemons import run_python

SCENE = (
    "from df_gmr import guru_meditation_report as gmr\n"
    "text = gmr.TextGuruMeditation('1').run()\n"
    "import re\n"
    "print(re.findall(r'^==== (.+?) +====$', text, re.M))\n"
    "print('ours' if 'HELLO FROM THE PLUGIN' in text else 'missing')\n"
    "print('failed shown' if 'could not be loaded: ModuleNotFoundError' "
    "in text else 'failed hidden')\n"
)


def plugin(tmp_path):
    (tmp_path / "gmr_plugin.py").write_text(
        "from df_gmr.sections import Section\n"
        "def lines(data):\n"
        "    return [data]\n"
        "SECTION = Section('plugin', 'Plugin', "
        "lambda context: 'HELLO FROM THE PLUGIN', lines)\n"
        "def generator():\n"
        "    return {'answer': 42}\n")
    info = tmp_path / "gmr_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gmr-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[df_gmr.sections]\n"
        "plugin = gmr_plugin:SECTION\n"
        "Plugin Generator = gmr_plugin:generator\n"
        "broken = gmr_missing_module:SECTION\n")
    return str(tmp_path)


def test_entry_point_sections_follow_the_built_ins(tmp_path):
    path = plugin(tmp_path)
    env = child_env()
    env["PYTHONPATH"] = path + ":" + env["PYTHONPATH"]
    result = run_python(SCENE, env=env)
    titles, ours, failed = result.stdout.splitlines()
    # Built-ins first, then the others by entry-point name.
    assert titles.endswith(
        "'Processes', 'Configuration', 'Plugin Generator', 'broken', "
        "'Plugin']"), titles
    assert titles.startswith(
        "['Guru Meditation', 'Findings', 'Package', 'Threads'")
    assert ours == "ours"
    assert failed == "failed shown"
