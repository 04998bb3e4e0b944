"""The benchmarks' scratch folders go when the benchmark exits: left-over runs once filled the disk CI shares."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAKE = (
    "import sys; sys.path.insert(0, sys.argv[1]); from bench import common\n"
    "p = common.scratch_dir('scratch-test-'); (p / 'checkpoint.bin').write_bytes(b'x' * 1000); print(p)"
)


def _make(tmp_path: Path, **env: str) -> Path:
    done = subprocess.run([sys.executable, "-c", MAKE, str(REPO)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TMPDIR=str(tmp_path), **env))  # fmt: skip
    assert done.returncode == 0, done.stderr
    folder = Path(done.stdout.strip())
    assert folder.parent == tmp_path and folder.name.startswith("scratch-test-")
    return folder


def test_a_benchmark_scratch_folder_is_removed_at_exit(tmp_path):
    assert not _make(tmp_path, BENCH_KEEP="0").exists()


def test_bench_keep_leaves_the_folder_for_a_look(tmp_path):
    folder = _make(tmp_path, BENCH_KEEP="1")
    assert (folder / "checkpoint.bin").stat().st_size == 1000


def test_no_benchmark_makes_a_temporary_folder_of_its_own():
    """Every benchmark takes its folder from common.scratch_dir (a context-managed TemporaryDirectory is fine too)."""
    offenders = [p.name for p in (REPO / "bench").glob("*.py") if p.name != "common.py" and "mkdtemp" in p.read_text()]
    assert offenders == []
