import os
import subprocess
import sys

import pytest

from archkit.threads import apply_cli_thread_defaults, cli_thread_env, is_archkit_command, usable_cpus


def test_command_detected_for_console_script_and_dash_m_only():
    assert is_archkit_command(["/venv/bin/archkit", "demo"], ["/venv/bin/python", "/venv/bin/archkit", "demo"])
    assert is_archkit_command(["-m", "demo"], ["python", "-u", "-m", "archkit", "demo"])  # torchrun's workers
    assert is_archkit_command(["-m"], ["python", "-marchkit.cli"])
    assert not is_archkit_command(["-m", "x"], ["python", "-m", "pytest", "x"])
    assert not is_archkit_command(["train.py", "-m", "archkit"], ["python", "train.py", "-m", "archkit"])
    assert not is_archkit_command(["-c"], ["python", "-c", "import archkit"])
    assert not is_archkit_command([], [])


def test_passive_wait_unless_the_user_chose_a_wait_policy():
    assert cli_thread_env({}, usable=2, affinity=2) == {"OMP_WAIT_POLICY": "PASSIVE"}
    for var in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME"):
        assert cli_thread_env({var: "1"}, usable=2, affinity=2) == {}


def test_thread_count_set_only_below_the_affinity_mask_and_never_over_the_user():
    assert cli_thread_env({"OMP_WAIT_POLICY": "active"}, usable=4, affinity=16) == {"OMP_NUM_THREADS": "4"}
    assert cli_thread_env({"OMP_WAIT_POLICY": "active"}, usable=16, affinity=16) == {}
    assert cli_thread_env({"OMP_WAIT_POLICY": "active", "OMP_NUM_THREADS": "8"}, usable=4, affinity=16) == {}


def test_nothing_changes_once_torch_is_loaded():
    import torch  # noqa: F401  (the test process has it loaded already)

    env: dict[str, str] = {}
    assert apply_cli_thread_defaults(env) == {} and env == {}


def test_usable_cpus_within_the_affinity_mask():
    n = usable_cpus()
    assert 1 <= n <= (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def test_the_archkit_command_sets_passive_wait_before_torch_loads():
    # as the console script: argv[0] names it, so `import archkit` applies the defaults before torch loads
    # (the user's own variables and library use are covered by the tests above)
    code = (
        "import sys; sys.argv[0] = 'archkit'; import archkit, os; "
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "True"]


def test_map_cases_runs_whole_cases_on_one_thread_each_and_restores_torch():
    import torch

    from archkit.threads import map_cases

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []

        def case(i):
            seen.append((torch.get_num_threads(), torch.is_grad_enabled()))
            return i * i

        with torch.no_grad():
            assert map_cases(case, 7) == [i * i for i in range(7)]
        assert seen and all(s == (1, False) for s in seen)  # one thread each, the caller's grad mode
        assert torch.get_num_threads() == 2

        def broken(i):
            raise ValueError(f"case {i}")

        with pytest.raises(ValueError, match="case"):
            map_cases(broken, 3)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
