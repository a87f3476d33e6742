"""BD-rate against cases whose answer is known in closed form."""
import numpy as np
import pytest

from aecodec.bench.bdrate import bd_rate
from aecodec.bench.metrics import ms_ssim_db, psnr

RATES = np.array([0.25, 0.5, 0.75, 1.0, 1.5])
PSNRS = np.array([27.0, 30.0, 32.0, 33.5, 35.5])


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.0, 1.3])
def test_constant_rate_factor(factor):
    assert bd_rate(RATES, PSNRS, RATES * factor, PSNRS) == pytest.approx(factor - 1, abs=1e-9)


def test_order_does_not_matter():
    perm = [3, 0, 4, 1, 2]
    assert bd_rate(RATES[perm], PSNRS[perm], RATES * 0.7, PSNRS) == pytest.approx(-0.3, abs=1e-9)


def test_quality_shift_on_log_linear_curve():
    # PSNR = 6/ln(2) * ln(rate) + c: +1 dB at equal rate is a rate factor 2**(-1/6).
    rates = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    q = 6 / np.log(2) * np.log(rates) + 40
    assert bd_rate(rates, q, rates, q + 1) == pytest.approx(2 ** (-1 / 6) - 1, abs=1e-6)


def test_partial_overlap_uses_shared_range_only():
    # On a log-linear curve pchip is exact, so a sub-curve 10% cheaper gives exactly -10%.
    rates = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    q = 6 / np.log(2) * np.log(rates) + 40
    assert bd_rate(rates, q, rates[2:] * 0.9, q[2:]) == pytest.approx(-0.1, abs=1e-9)


def test_no_overlap_is_an_error():
    with pytest.raises(ValueError):
        bd_rate(RATES, PSNRS, RATES, PSNRS + 20)


def test_metrics():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 16
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / (256 / 48)))
    assert ms_ssim_db(0.99) == pytest.approx(20.0)


def test_bd_percent_text():
    from aecodec.bench.run import bd_percent
    anchor = {"results": {"bpp": [0.5, 1.0, 2.0], "psnr-rgb": [30.0, 33.0, 36.0]}}
    half = {"results": {"bpp": [0.25, 0.5, 1.0], "psnr-rgb": [30.0, 33.0, 36.0]}}
    assert bd_percent(anchor, half) == "-50.0% / n/a"


def test_the_report_tool_answers_help_without_rewriting_anything(tmp_path, monkeypatch):
    """``python -m aecodec.bench.report --help`` once rewrote README.md and the model card."""
    from aecodec.bench import report
    (tmp_path / "README.md").write_text("untouched\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        report.main(["--help"])
    assert exit_info.value.code == 0
    assert (tmp_path / "README.md").read_text() == "untouched\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
