"""`roleplay bench voices`: its word error rate, line choice and CPU clock (the run itself is slow)."""

from __future__ import annotations

import pytest

from roleplay.bench.voices import LINES, bench_lines, cpu_s, word_error_rate


def test_word_error_rate_counts_substitutions_insertions_and_deletions():
    assert word_error_rate(["Ik wil een dokter!"], ["ik wil een dokter"]) == 0.0
    assert word_error_rate(["ik wil een dokter"], ["ik wil de dokter"]) == 25.0
    assert word_error_rate(["ik wil een dokter"], ["ik wil een dokter nu"]) == 25.0
    assert word_error_rate(["ik wil een dokter"], [""]) == 100.0
    assert word_error_rate(["a b", "c d e f"], ["a b", "c"]) == pytest.approx(50.0)


def test_bench_lines_are_spread_over_the_scenarios():
    nl = bench_lines("nl", LINES["nl"])
    assert len(nl) == LINES["nl"] >= 24 and len(set(nl)) == len(nl)
    assert len(bench_lines("en", LINES["en"])) == LINES["en"]


def test_cpu_clock_counts_this_process():
    before = cpu_s()
    sum(i * i for i in range(300_000))
    assert cpu_s() > before
