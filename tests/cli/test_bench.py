"""`percpu bench` runs its fixed workload and reports what the targets need (no timing asserts)."""

import json
import subprocess
import sys


def test_bench_reports_rates_memory_and_touched_pages():
    out = subprocess.run([sys.executable, "-m", "percpu", "bench", "--rounds", "2",
                          "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert [r["cache"] for r in results] == [True, False]
    for r in results:
        # 8 processes x 2 rounds x 9,472 references, all simulated.
        assert r["refs"] == 8 * 2 * 9472
        assert r["refs_per_s"] > 0 and r["peak_rss_bytes"] > 0
        # Heaps are touched sparsely in 2 rounds: at least the hot sets and windows.
        assert r["touched_pages"] >= 4096 + 8 * (512 + 128)  # page cache + hot sets + windows


def test_bench_rejects_an_unknown_scheme():
    out = subprocess.run([sys.executable, "-m", "percpu", "bench", "-s", "nope"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "unknown scheme 'nope'" in out.stderr


def test_bench_from_a_checkout_root_measures_the_installed_package(tmp_path):
    # The current directory holds a `percpu` source tree without the built extension (a
    # checkout's root under a non-editable install): the measurement children must not
    # import it. The parent itself is started with -P so that it does not either.
    decoy = tmp_path / "percpu"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise ImportError('the checkout, not the install')\n")
    out = subprocess.run([sys.executable, "-P", "-m", "percpu", "bench", "--rounds", "1",
                          "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert [r["refs"] for r in json.loads(out.stdout)] == [8 * 9472, 8 * 9472]
