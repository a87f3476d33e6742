"""Rate control alone, with a fake build: sizes follow a known law."""
import pytest
from hypothesis import given, strategies as st

from aecodec.ratecontrol import FINEST_UNLADDERED_STEP, fit

LADDER = [(1, 0.0), (2, 0.0), (3, 0.0), (3, 24.0), (3, 12.0)]


def fake_size(stages: int, step: float, scale: float = 1.0) -> int:
    """100 bytes per stage, plus a detail layer that costs 4000 / step bytes, all
    over the area coded."""
    return int((100 * stages + (4000 / step if step else 0)) / scale ** 2)


def run(budget, ladder=LADDER):
    calls = []

    def build(stages, step, scale):
        calls.append((stages, step, scale))
        return (stages, step, scale)
    return fit(ladder, budget, build, lambda f: fake_size(*f), max_step=4095.9), calls


def test_everything_fits():
    (stages, step, scale), calls = run(10_000)
    assert (stages, step, scale) == (3, 12.0, 1.0) and calls == [(3, 12.0, 1.0)]


def test_rungs_at_a_reduced_size():
    """A rung's scale goes to ``build``, in the ladder and between its rungs."""
    ladder = [(3, 0.0, 2.0), (3, 54.0, 2.0), (3, 54.0, 1.5), (3, 24.0)]
    assert run(10_000, ladder)[0] == (3, 24.0, 1.0)
    assert run(fake_size(3, 54.0, 1.5), ladder)[0] == (3, 54.0, 1.5)
    f, calls = run(fake_size(3, 54.0, 2.0) + 5, ladder)        # short of q3: a coarser step at its scale
    assert f[2] == 2.0 and fake_size(*f) <= fake_size(3, 54.0, 2.0) + 5 and f[1] <= 54.0
    assert [c[2] for c in calls[:3]] == [1.0, 1.5, 2.0] and {c[2] for c in calls[3:]} == {1.5}
    with pytest.raises(ValueError, match="first stage alone"):
        run(fake_size(3, 0.0, 2.0) - 1, ladder)


def test_refuses_what_cannot_fit():
    with pytest.raises(ValueError, match="first stage alone"):
        run(99)


def test_between_ladder_points_a_coarser_detail_step_is_spent():
    # q4 (3 stages, step 24) = 466 B fits 470 B; q5 (step 12) = 633 B does not: the
    # bisection between steps 12 and 96 finds a step that fills the last few bytes
    (stages, step, _), _ = run(470)
    assert stages == 3 and 466 <= fake_size(stages, step) <= 470 and 12.0 < step <= 24.0
    (stages, step, _), _ = run(600)
    assert stages == 3 and 12.0 < step < 24.0 and fake_size(stages, step) <= 600


def test_detail_over_a_base_that_the_ladder_codes_without_one():
    # q2 (200 B) fits, q3 (300 B) only adds a stage: what is left goes to a detail
    # layer over q2's base, at a step from FINEST_UNLADDERED_STEP up
    (stages, step, _), _ = run(299)
    assert stages == 2 and step >= FINEST_UNLADDERED_STEP and 200 < fake_size(stages, step) <= 299
    ladder = [(1, 0.0), (2, 0.0)]
    f = fit(ladder, 190, lambda s, t, scale: (s, t, scale), lambda f: fake_size(*f), max_step=4095.9)
    assert f[0] == 1 and f[1] >= FINEST_UNLADDERED_STEP and fake_size(*f) <= 190


@given(st.integers(min_value=100, max_value=2000))
def test_never_over_budget_and_never_worse_than_the_ladder(budget):
    (stages, step, _), _ = run(budget)
    assert fake_size(stages, step) <= budget
    best_ladder = max(fake_size(*e) for e in LADDER if fake_size(*e) <= budget)
    assert fake_size(stages, step) >= best_ladder
