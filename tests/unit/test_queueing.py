from __future__ import annotations

from shared.queueing import ANSWER_TOKENS, GRADE_TASK, PROMPT_OVERHEAD_TOKENS, enqueue_essays, plan_batches


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[int]]] = []

    def send_task(self, name: str, args: list[list[int]] = (), **_: object) -> None:  # type: ignore[assignment]
        self.sent.append((name, args[0]))


def test_batches_fit_the_budget_and_keep_similar_lengths_together() -> None:
    essays = [(i, 300 + (i % 7) * 200) for i in range(40)]
    budget = 12000
    batches = plan_batches(essays, budget)
    assert sorted(i for batch in batches for i in batch) == list(range(40))
    lengths = dict(essays)
    for batch in batches:
        widest = max(lengths[i] for i in batch) + PROMPT_OVERHEAD_TOKENS + ANSWER_TOKENS
        assert widest * len(batch) <= budget or len(batch) == 1
    # Sorted by length: every batch's shortest essay is at least as long as the previous batch's longest.
    for earlier, later in zip(batches, batches[1:], strict=False):
        assert min(lengths[i] for i in later) >= max(lengths[i] for i in earlier)


def test_an_essay_longer_than_the_budget_still_gets_its_own_batch() -> None:
    assert plan_batches([(1, 50_000), (2, 800)], 4000) == [[2], [1]]


def test_enqueue_sends_one_named_task_per_batch() -> None:
    recorder = Recorder()
    count = enqueue_essays(recorder, [(1, 800), (2, 820), (3, 790)], 100_000)
    assert count == 1
    assert recorder.sent == [(GRADE_TASK, [3, 1, 2])]
