"""The cross-run comparisons the workflow tests rely on can fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.workflow_helpers import CROSS_RUN_ATOL, arrays_match, rule_blocks, tables_match


def test_arrays_match_tolerates_rounding_only() -> None:
    a = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    assert arrays_match(a, a + np.float32(CROSS_RUN_ATOL / 3))
    assert not arrays_match(a, a + np.float32(1e-3))
    assert not arrays_match(a, a[:2])
    assert not arrays_match(a, a.astype(np.float64))
    ints = np.arange(4)
    assert arrays_match(ints, ints.copy()) and not arrays_match(ints, ints + 1)


def test_tables_match_compares_text_exactly_and_numbers_within_tolerance(tmp_path: Path) -> None:
    def table(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    ref = table("ref.tsv", "roi\tmean\nV1\t0.1234567\nV2\t-1.5\n")
    assert tables_match(ref, table("round.tsv", "roi\tmean\nV1\t0.1234601\nV2\t-1.5\n"))
    assert not tables_match(ref, table("name.tsv", "roi\tmean\nV3\t0.1234567\nV2\t-1.5\n"))
    assert not tables_match(ref, table("value.tsv", "roi\tmean\nV1\t0.1244567\nV2\t-1.5\n"))
    assert not tables_match(ref, table("short.tsv", "roi\tmean\nV1\t0.1234567\n"))
    assert not tables_match(ref, table("column.tsv", "roi\tmax\nV1\t0.1234567\nV2\t-1.5\n"))
    words = table("words.tsv", "word\tstart\nNA\t0.5\nnull\t1.0\n")
    assert tables_match(words, words)
    assert not tables_match(words, table("empty.tsv", "word\tstart\n\t0.5\nnull\t1.0\n"))
    assert not tables_match(words, table("nan.tsv", "word\tstart\nNA\t0.5\nnan\t1.0\n"))


def test_rule_blocks_reads_rules_made_in_a_loop() -> None:
    text = (
        'for m in ["a", "b"]:\n\n    rule:\n        name:\n            f"x_{m}"\n'
        '        output:\n            f"{RESULTS}/{m}.txt",\n'
        '        threads: 2\n\n\nrule y:\n    log:\n        "y.log",\nZ = 1\n    q: 3\n'
    )
    assert rule_blocks(text) == {
        "x_{m}": {"name": ['f"x_{m}"'], "output": ['f"{RESULTS}/{m}.txt",'], "threads": ["2"]},
        "y": {"log": ['"y.log",']},
    }
