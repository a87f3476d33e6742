"""The context study (aecodec.bench.contexts) must see information where there is some."""
import numpy as np

from aecodec.bench.contexts import REFINEMENTS, refined_bits


def _copying_stages(seed: int) -> np.ndarray:
    """Indices [S, G, h, w] where every stage repeats stage 1 (a perfectly predictable stream
    for a model that looks at the previous stage's value, and not for the shipped contexts)."""
    rng = np.random.default_rng(seed)
    first = rng.integers(1, 16, (1, 3, 8, 8))
    return np.repeat(first, 3, axis=0)


def test_an_informative_refinement_saves_bits_and_a_useless_one_does_not():
    fit = [_copying_stages(i) for i in range(6)]
    held_out = [_copying_stages(100 + i) for i in range(2)]
    plain = refined_bits(None, fit, held_out, codes=16)
    previous = refined_bits(REFINEMENTS["previous stage's index value"], fit, held_out, codes=16)
    assert previous[0] == plain[0]                 # stage 1 has no previous stage
    assert (previous[1:] < 0.5 * plain[1:]).all()  # later stages are copies
    # the index above carries nothing here: no saving beyond the back-off's noise
    above = refined_bits(REFINEMENTS["index above (row-by-row coding)"], fit, held_out, codes=16)
    assert above.sum() > 0.95 * plain.sum()
