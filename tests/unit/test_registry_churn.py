"""The greenlet registry forgets dead greenlets and keeps sites aligned."""

from __future__ import annotations

from tests.daemons import run_python


def test_registry_stays_small_under_churn(hook_env):
    result = run_python("churn.py", env=hook_env)
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


def test_spawn_with_no_caller_frame_still_runs_and_is_tracked(hook_env):
    result = run_python("spawn_edge.py", env=hook_env)
    # and a loop of spawns (or of spawn_n) keeps one site tuple
    assert result.stdout.split() == ["['ran']", "True", "1", "1"]


def test_a_forked_child_that_renews_its_hub_frees_the_old_one(hook_env):
    # The registry holds greenthreads spawned here strongly; a child must
    # not keep its parent's through it (nor their hub, nor its epoll fd).
    result = run_python("fork_renewed_hub.py", env=hook_env)
    assert result.stdout.split() == ["old", "hub", "alive", "False"]


def test_same_code_in_two_files_keeps_each_file_as_site_and_origin(hook_env):
    # Equal code objects of two files compare equal: sites are shared by
    # identity only.
    result = run_python("same_code_two_files.py", env=hook_env)
    assert result.stdout.split() == ["copy_a.py", "copy_b.py",
                                     "copy_a.py", "copy_b.py"]


def test_greenthreads_of_a_thread_gone_do_not_keep_its_hub(hook_env):
    result = run_python("thread_gone_hub.py", env=hook_env)
    assert int(result.stdout.split()[-1]) <= 1, result.stdout


def test_spawn_shortcuts_change_no_site_no_lifetime_and_no_link(hook_env):
    result = run_python("spawn_cache.py", env=hook_env)
    sites, local_alive, never_run, links = result.stdout.splitlines()
    # one helper's loop, called from two places: each its own caller
    assert sites == "['first_caller'] ['second_caller']", result.stdout
    # the frame held for the shortcut let go once the collector ran
    assert local_alive == "False", result.stdout
    # never-run greenthreads that only the registry held are let go once
    # it has doubled; one the service holds, and the parked, stay
    assert never_run == "9999 0 True True", result.stdout
    assert links == "['result'] False", result.stdout


def test_eventlet_resolve_links_still_does_nothing_without_links():
    # The exit hook skips the call when a greenthread has no exit function
    # (df_gmr.greenlets, forgotten_at_exit): that holds while eventlet's
    # _resolve_links returns at once then.  A new eventlet that does more
    # there fails this test, not the services.
    import inspect

    from eventlet import greenthread

    lines = [line.strip() for line in inspect.getsource(
        greenthread.GreenThread._resolve_links).splitlines()
        if line.strip() and not line.strip().startswith("#")]
    assert lines[1:5] == ["if self._resolving_links:", "return",
                          "if not self._exit_funcs:", "return"], lines


def test_spawn_hook_does_eventlets_init_only_when_it_is_the_known_one(
        hook_env):
    # The installed eventlet's GreenThread.__init__ is the known one: the
    # hook does its lines itself, and a greenthread so made is one that
    # eventlet's own __init__ makes (same attributes, parent, run).
    same = run_python("spawn_inline.py", "same",
                      env=hook_env).stdout.splitlines()
    assert same == [
        "True", "True",
        "True [('_exit_event', 'Event'), ('_exit_funcs', 'NoneType'), "
        "('_resolving_links', 'bool')]",
        "True result 0"], same
    # A wrapped __init__ is not the known code: the hook calls it.
    wrapped = run_python("spawn_inline.py", "wrapped",
                         env=hook_env).stdout.splitlines()
    assert wrapped[0] == "False" and wrapped[-1] == "True result 1", wrapped


def test_a_resumed_generator_never_lends_one_callers_site_to_another(
        hook_env):
    # A generator's frame is one object whichever caller resumes it: the
    # memo of the spawn and thread-start hooks never holds one.
    result = run_python("spawn_resumed.py", env=hook_env)
    assert result.stdout.splitlines() == [
        "caller_x caller_y",  # spawned from two functions in turn
        "1",  # from two greenthreads, spawned a line apart
        "start_from_x start_from_y",  # threads started from two functions
    ], result.stdout
