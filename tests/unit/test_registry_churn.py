"""The greenlet registry forgets dead greenlets and keeps sites aligned."""

from __future__ import annotations

from tests.daemons import run_python


def test_registry_stays_small_under_churn():
    result = run_python("churn.py")
    first, second, third = result.stdout.splitlines()
    entries, alive, kept_with_sites = map(int, first.split())
    # 20,000 greenthreads forgotten at their exit, 5,000 plain greenlets
    # swept once dead: a registry of the living (and the last few dead)
    assert entries < 8192, result.stdout
    assert alive >= 10
    assert kept_with_sites == 10  # the survivors kept their spawn sites
    # 120 greenthreads that finished, were killed before they ran, or
    # were killed while parked: none left, nor any of their results
    assert second.split() == ["0", "0"], result.stdout
    # one whose link callback parks is still listed (it still runs)
    assert third.split() == ["False", "True"], result.stdout


def test_spawn_with_no_caller_frame_still_runs_and_is_tracked():
    result = run_python("spawn_edge.py")
    # and a loop of spawns (or of spawn_n) keeps one site tuple
    assert result.stdout.split() == ["['ran']", "True", "1", "1"]


def test_a_forked_child_that_renews_its_hub_frees_the_old_one():
    # The registry holds greenthreads spawned here strongly; a child must
    # not keep its parent's through it (nor their hub, nor its epoll fd).
    result = run_python("fork_renewed_hub.py")
    assert result.stdout.split() == ["old", "hub", "alive", "False"]


def test_same_code_in_two_files_keeps_each_file_as_site_and_origin():
    # Equal code objects of two files compare equal: sites are shared by
    # identity only.
    result = run_python("same_code_two_files.py")
    assert result.stdout.split() == ["copy_a.py", "copy_b.py",
                                     "copy_a.py", "copy_b.py"]


def test_greenthreads_of_a_thread_gone_do_not_keep_its_hub():
    result = run_python("thread_gone_hub.py")
    assert int(result.stdout.split()[-1]) <= 1, result.stdout
