"""The shuffled PIN pad: shape, the contract with the shell, and uniformity."""

from __future__ import annotations

import math

import numpy as np

from mynad.core.flow import NEG, POS
from mynad.shell.pinentry import PinEntry
from mynad.ui.pinpad import DIGIT_POSITIONS, new_layout

ALPHA = 1e-4  # fixed significance: a correct shuffle fails about once in 10,000 runs
N = 50_000


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable: the regularized upper gamma Q(df/2, x/2)."""
    a, z = df / 2.0, x / 2.0
    if z <= 0:
        return 1.0
    log_prefix = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:  # series for P, then Q = 1 - P
        term = total = 1.0 / a
        n = a
        for _ in range(10_000):
            n += 1
            term *= z / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    # continued fraction for Q (modified Lentz)
    tiny = 1e-300
    b = z + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(log_prefix) * h


def test_chi2_sf_against_known_values():
    for x in (0.5, 1.0, 3.0, 10.0):
        assert math.isclose(chi2_sf(x, 2), math.exp(-x / 2), rel_tol=1e-12)
    assert math.isclose(chi2_sf(3.841458820694124, 1), 0.05, rel_tol=1e-9)
    # printed tables: the 95% / 99% points for 10 df, the 95% point for 100 df
    assert math.isclose(chi2_sf(18.307, 10), 0.05, rel_tol=1e-3)
    assert math.isclose(chi2_sf(23.209, 10), 0.01, rel_tol=1e-3)
    assert math.isclose(chi2_sf(124.342, 100), 0.05, rel_tol=1e-3)
    assert 0.45 < chi2_sf(81.0, 81) < 0.50


def test_layout_shape():
    for _ in range(200):
        layout = new_layout()
        assert isinstance(layout, tuple) and len(layout) == 12
        assert layout[9] == "取消" and layout[11] == "クリア"
        digits = [layout[p - 1] for p in DIGIT_POSITIONS]
        assert sorted(digits) == [str(d) for d in range(10)]


def test_layout_fits_the_shell():
    """pinentry maps a digit key through the layout; 10 and 12 stay plain keys."""
    from mynad.core.flow import ReceptionFlow

    class Active(ReceptionFlow):
        pin_entry_active = True

    flow = Active()
    entry = PinEntry()
    layout = new_layout()
    entry.start(4, layout)
    assert NEG == 10 and POS == 12
    events = [entry.route(flow, pos) for pos in (1, 11, 2, 3)]
    assert all(type(e).__name__ == "PinDigit" for e in events)
    assert type(entry.route(flow, 10)).__name__ == "KeyPressed"
    assert type(entry.route(flow, 12)).__name__ == "KeyPressed"
    buf = entry.take()
    assert buf.full
    buf.wipe()


def test_digit_position_uniformity():
    counts = np.zeros((10, 10), dtype=np.int64)  # digit x slot
    pairs = np.zeros((10, 10), dtype=np.int64)  # digit at key 1 x digit at key 2
    slot = {p: i for i, p in enumerate(DIGIT_POSITIONS)}
    for _ in range(N):
        layout = new_layout()
        for p in DIGIT_POSITIONS:
            counts[int(layout[p - 1]), slot[p]] += 1
        pairs[int(layout[0]), int(layout[1])] += 1
    assert (counts.sum(axis=0) == N).all() and (counts.sum(axis=1) == N).all()
    expected = N / 10
    stat = float(((counts - expected) ** 2 / expected).sum())
    p = chi2_sf(stat, 81)  # rows and columns both fixed: (10-1)*(10-1) degrees of freedom
    assert p > ALPHA, f"digit x position not uniform: chi2={stat:.1f}, p={p:.2e}"
    # pairs (two different digits on keys 1 and 2): 90 equally likely cells
    assert (np.diag(pairs) == 0).all()
    exp_pair = N / 90
    off = ~np.eye(10, dtype=bool)
    stat2 = float(((pairs[off] - exp_pair) ** 2 / exp_pair).sum())
    p2 = chi2_sf(stat2, 89)
    assert p2 > ALPHA, f"neighbouring digits not independent: chi2={stat2:.1f}, p={p2:.2e}"


def test_chi2_detects_a_biased_shuffle():
    """The test has teeth: a naive 'swap each with any' shuffle is caught."""
    rng = np.random.default_rng(1)
    counts = np.zeros((10, 10), dtype=np.int64)
    for _ in range(N):
        d = list(range(10))
        for i in range(10):
            j = int(rng.integers(0, 10))  # biased: should be integers(i, 10)
            d[i], d[j] = d[j], d[i]
        for s, digit in enumerate(d):
            counts[digit, s] += 1
    expected = N / 10
    stat = float(((counts - expected) ** 2 / expected).sum())
    assert chi2_sf(stat, 81) < ALPHA
