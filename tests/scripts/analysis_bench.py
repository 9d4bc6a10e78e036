"""Time diff, convert and summarize on synthetic reports (df-gmr's CLI).

Usage: analysis_bench.py DIR [--rich] [--options N]
Writes two 100k-greenthread reports of one process and 1,000 reports of
1k greenthreads under DIR (analysis_synth.py), then runs, in fresh
interpreters as an operator would, ``df-gmr diff`` of the two, ``df-gmr
convert`` of one (folded and speedscope) and ``df-gmr summarize`` of the
1,000, and prints the wall time of each (best of 3).  --rich gives every
greenthread its own details (wait age, spawn site): the largest files.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def timed(*args: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "df_gmr.cli", *args],
                       check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory")
    parser.add_argument("--rich", action="store_true")
    parser.add_argument("--options", type=int, default=0)
    args = parser.parse_args()
    extra = ["--options", str(args.options)] + (["--rich"] if args.rich
                                                else [])
    pair = os.path.join(args.directory, "pair")
    fleet = os.path.join(args.directory, "fleet")
    synth = os.path.join(HERE, "analysis_synth.py")
    subprocess.run([sys.executable, synth, pair, "--pair", "--greenthreads",
                    "100000", "--groups", "20", *extra], check=True)
    subprocess.run([sys.executable, synth, fleet, "--reports", "1000",
                    "--greenthreads", "1000", *extra], check=True)
    old, new = (os.path.join(pair, name) for name in ("old.json",
                                                       "new.json"))
    size = os.path.getsize(old) / 1e6
    files = sorted(glob.glob(os.path.join(fleet, "*.json")))
    total = sum(os.path.getsize(path) for path in files) / 1e6
    print(f"diff of two 100k reports ({size:.1f} MB each): "
          f"{timed('diff', old, new):.2f} s (text), "
          f"{timed('diff', old, new, '--format', 'json'):.2f} s (json)")
    print(f"convert of a 100k report: "
          f"{timed('convert', old, '--to', 'folded'):.2f} s (folded), "
          f"{timed('convert', old, '--to', 'speedscope'):.2f} s "
          "(speedscope)")
    print(f"summarize of {len(files)} reports of 1k greenthreads "
          f"({total:.0f} MB): {timed('summarize', *files):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
