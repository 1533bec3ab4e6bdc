"""The study statistics against independent implementations and hand-computed cases."""

from __future__ import annotations

import math

import choix
import krippendorff
import numpy as np
import pytest

from trecs_eval.human.stats import fit_davidson, krippendorff_alpha_nominal, two_way_mean, wilson

ALPHA_ABS_TOL_VS_KRIPPENDORFF = 1e-10  # same formula, float64
THETA_ABS_TOL_VS_CHOIX = 2e-3  # both are MLEs; choix's default ridge (1e-6) and optimizer tolerance
THETA_ABS_TOL_HAND = 1e-4  # our ridge (1e-6) against the closed form
VARIANCE_REL_TOL = 1e-10


def test_alpha_matches_krippendorff_package():
    rng = np.random.default_rng(0)
    n_units, n_coders = 40, 6
    data = rng.integers(0, 3, (n_coders, n_units)).astype(float)
    data[:, ::3] = data[0, ::3]  # some agreement
    data[rng.random(data.shape) < 0.3] = np.nan  # missing judgments
    units, values = [], []
    for c in range(n_coders):
        for u in range(n_units):
            if not math.isnan(data[c, u]):
                units.append(u)
                values.append(int(data[c, u]))
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    ours = krippendorff_alpha_nominal(units, values)
    assert ours == pytest.approx(expected, abs=ALPHA_ABS_TOL_VS_KRIPPENDORFF)


def test_alpha_perfect_agreement_is_one():
    values = ["a", "a", "b", "b", "a", "a"]
    assert krippendorff_alpha_nominal([0, 0, 1, 1, 2, 2], values) == pytest.approx(1.0)


def test_bradley_terry_without_ties_matches_choix():
    rng = np.random.default_rng(1)
    truth = np.array([1.0, 0.3, -0.2, -1.1])
    i, j, y, pairs = [], [], [], []
    for _ in range(3000):
        a, b = rng.choice(4, 2, replace=False)
        win = rng.random() < 1 / (1 + math.exp(truth[b] - truth[a]))
        i.append(a)
        j.append(b)
        y.append(1.0 if win else 0.0)
        pairs.append((a, b) if win else (b, a))
    ours = fit_davidson(4, i, j, y)
    reference = choix.opt_pairwise(4, pairs, alpha=1e-6, tol=1e-10)
    assert ours.theta == pytest.approx(reference - reference.mean(), abs=THETA_ABS_TOL_VS_CHOIX)
    assert math.exp(ours.log_nu) < 1e-3  # no ties observed: the tie parameter goes to 0


def test_davidson_two_systems_closed_form():
    # Two systems saturate the model: pi1/pi2 = wins/losses and nu = ties / sqrt(wins * losses).
    wins, losses, ties = 30, 12, 9
    y = [1.0] * wins + [0.0] * losses + [0.5] * ties
    fit = fit_davidson(2, [0] * len(y), [1] * len(y), y)
    assert fit.theta[0] - fit.theta[1] == pytest.approx(math.log(wins / losses), abs=THETA_ABS_TOL_HAND)
    assert math.exp(fit.log_nu) == pytest.approx(ties / math.sqrt(wins * losses), abs=THETA_ABS_TOL_HAND)


def test_davidson_sides_do_not_matter():
    y = np.array([1.0, 0.0, 0.5, 1.0, 1.0, 0.5, 0.0, 1.0])
    i = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    j = np.array([1, 2, 0, 2, 0, 1, 1, 2])
    a, b = fit_davidson(3, i, j, y), fit_davidson(3, j, i, 1.0 - y)
    assert a.theta == pytest.approx(b.theta, abs=1e-8)


def _cgm_by_matrices(y, items, raters):
    """Two-way cluster variance of a mean from membership matrices: e' (c G G') e / n², combined."""
    e = np.asarray(y, float) - np.mean(y)

    def part(groups):
        labels = sorted(set(groups))
        member = np.array([[g == label for label in labels] for g in groups], float)
        return len(labels) / (len(labels) - 1) * float(e @ member @ member.T @ e)

    both = [f"{a}|{b}" for a, b in zip(items, raters, strict=True)]
    return (part(items) + part(raters) - part(both)) / len(e) ** 2


def test_two_way_variance_matches_membership_matrix_formula():
    rng = np.random.default_rng(2)
    items = [f"i{k}" for k in rng.integers(0, 15, 120)]
    raters = [f"r{k}" for k in rng.integers(0, 8, 120)]
    y = (rng.random(120) < 0.6).astype(float)
    est = two_way_mean(y, items, raters)
    variance = ((est.high - est.low) / 2) ** 2
    from scipy import stats

    t = stats.t.ppf(0.975, min(15, 8) - 1)
    assert variance / t**2 == pytest.approx(_cgm_by_matrices(y, items, raters), rel=VARIANCE_REL_TOL)
    assert est.value == pytest.approx(y.mean())


def test_two_way_reduces_to_one_way_when_raters_are_singletons():
    rng = np.random.default_rng(3)
    items = [f"i{k}" for k in rng.integers(0, 20, 100)]
    y = rng.random(100)
    two = two_way_mean(y, items, [f"r{k}" for k in range(100)])
    one = two_way_mean(y, items, ["same"] * 50 + ["other"] * 50)
    # with one judgment per rater, V_rater = V_both: only the item term is left
    e = y - y.mean()
    sums = np.array([e[[k for k, it in enumerate(items) if it == g]].sum() for g in sorted(set(items))])
    v_item = len(sums) / (len(sums) - 1) * np.sum(sums**2) / 100**2
    from scipy import stats

    assert ((two.high - two.low) / 2) ** 2 == pytest.approx(v_item * stats.t.ppf(0.975, 19) ** 2, rel=1e-9)
    assert one.n_raters == 2


def test_wilson_interval():
    low, high = wilson(8, 10)
    assert (low, high) == pytest.approx((0.4901625, 0.9433178), abs=1e-6)  # Wilson (1927) table value
