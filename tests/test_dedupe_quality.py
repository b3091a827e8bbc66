"""Deduplication is measured on the labelled pair set (tests/data/dedupe/), through the real
store; this fails when precision or recall drops below the targets of the issue.
`python bench/dedupe_eval.py` prints the same figures per kind and per half."""

from __future__ import annotations

from tests.dedupe_labelled import evaluate, load_pairs

MIN_PRECISION, MIN_RECALL = 0.98, 0.90


def test_the_labelled_set_is_big_and_balanced_enough() -> None:
    pairs = load_pairs()
    assert len(pairs) >= 200
    assert len({p.id for p in pairs}) == len(pairs)
    dups = sum(p.label for p in pairs)
    assert dups >= 100 and len(pairs) - dups >= 100
    assert sum(not (p.a["text"] and p.b["text"]) for p in pairs) >= 20  # listings, no text


def test_precision_and_recall_meet_the_targets() -> None:
    total, parts = evaluate(load_pairs())
    report = "\n".join(total.errors)
    assert total.precision >= MIN_PRECISION, f"precision {total.precision:.3f}\n{report}"
    assert total.recall >= MIN_RECALL, f"recall {total.recall:.3f}\n{report}"
    # the held-out half too, not only the half the thresholds were tuned on
    held_out = parts["test"]
    assert held_out.precision >= MIN_PRECISION - 0.02 and held_out.recall >= MIN_RECALL - 0.05
