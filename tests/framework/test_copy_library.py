"""``python -m teal_taskstore copy-library DEST``: what the init container leaves in the volume."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import teal_taskstore
from teal_taskstore.framework import COPY_LIBRARY_COMMAND, ENTRY_FILE_NAME


def run_copy(destination: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *COPY_LIBRARY_COMMAND[1:4], str(destination)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_package_is_copied_whole_without_bytecode_and_readable_by_anyone(
    tmp_path: Path,
) -> None:
    result = run_copy(tmp_path / "volume")
    assert result.returncode == 0, result.stderr
    copied = tmp_path / "volume" / "teal_taskstore"
    source = Path(teal_taskstore.__file__).parent
    sources = {p.relative_to(source) for p in source.rglob("*") if "__pycache__" not in p.parts}
    assert {p.relative_to(copied) for p in copied.rglob("*")} == sources
    for path in [copied, *copied.rglob("*"), tmp_path / "volume" / ENTRY_FILE_NAME]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o755 if path.is_dir() else 0o644), path
    assert f"entry file {tmp_path / 'volume' / ENTRY_FILE_NAME}" in result.stdout


def test_copying_again_replaces_the_previous_copy(tmp_path: Path) -> None:
    assert run_copy(tmp_path).returncode == 0
    stale = tmp_path / "teal_taskstore" / "stale_module.py"
    stale.write_text("")
    (tmp_path / ENTRY_FILE_NAME).write_text("broken")
    assert run_copy(tmp_path).returncode == 0
    assert not stale.exists()
    assert "teal_taskstore" in (tmp_path / ENTRY_FILE_NAME).read_text()
    assert sorted(os.listdir(tmp_path)) == sorted([ENTRY_FILE_NAME, "teal_taskstore"])


def test_a_destination_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_copy(blocker / "volume")
    assert result.returncode == 1
    assert f"copy-library failed: {blocker / 'volume'}" in result.stderr
