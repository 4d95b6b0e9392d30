"""`trueprob.io.atomic_write`: complete or absent, one winner per race, no litter after a crash."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from trueprob.io import atomic_write
from trueprob.io.write import remove_stale_temporaries


def test_existing_file_is_refused_with_file_exists_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(FileExistsError, match=r"out\.txt"), \
            atomic_write(target, mode="w") as fh:
        fh.write("new")
    assert target.read_text() == "old"
    with atomic_write(target, mode="w", force=True) as fh:
        fh.write("new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_failure_inside_the_block_keeps_the_earlier_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def write_then_fail() -> None:
        with atomic_write(target, mode="w", force=True) as fh:
            fh.write("partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_mode_is_checked(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w'; got 'a'"), \
            atomic_write(tmp_path / "x", mode="a"):
        pass


@pytest.mark.parametrize("round_", range(25))
def test_two_racing_writers_exactly_one_wins(tmp_path, round_):
    # both pass the early exists() check, then race for the same new name: the exclusive link
    # lets exactly one in; the loser gets FileExistsError and its bytes never appear
    target = tmp_path / "same.json"
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def writer(name: str) -> None:
        try:
            with atomic_write(target, mode="w") as fh:
                fh.write(name)
                barrier.wait(timeout=10)  # both are inside, both temporaries written
            outcome[name] = "won"
        except FileExistsError:
            outcome[name] = "refused"

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcome.values()) == ["refused", "won"]
    winner = next(n for n, o in outcome.items() if o == "won")
    assert target.read_text() == winner
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.json"]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_writer_leaves_nothing_under_the_name_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "cal.json"
    target.write_text("earlier")
    code = (
        "import os, signal, sys\n"
        "from trueprob.io import atomic_write\n"
        "with atomic_write(sys.argv[1], force=True, mode='w') as fh:\n"
        "    fh.write('half')\n"
        "    fh.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(target)], check=False)
    assert proc.returncode == -9
    assert target.read_text() == "earlier"
    litter = [p.name for p in tmp_path.iterdir() if p.name != "cal.json"]
    assert len(litter) == 1 and litter[0].startswith(".cal.json.") and litter[0].endswith(".tmp")
    with atomic_write(target, force=True, mode="w") as fh:
        fh.write("next")
    assert target.read_text() == "next"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.json"]


def test_stale_cleanup_spares_live_writers_and_other_names(tmp_path):
    target = tmp_path / "r.html"
    dead = tmp_path / f".r.html.{_dead_pid()}.abc123.tmp"
    alive = tmp_path / f".r.html.{os.getppid()}.def456.tmp"  # a process that runs
    other = tmp_path / f".other.html.{_dead_pid()}.abc123.tmp"  # another target's
    mine = tmp_path / ".r.html.notapid.tmp"  # not our naming
    for p in (dead, alive, other, mine):
        p.write_text("x")
    removed = remove_stale_temporaries(target)
    assert removed == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (alive, other, mine))
