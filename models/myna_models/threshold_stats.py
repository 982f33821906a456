"""Error rates, confidence bounds and identity-disjoint cross-validation for a match threshold (pure numpy).

Why identity-level statistics: in a calibration set every photo takes part in many
impostor pairs, and every identity in hundreds, so the pairs are far from
independent. A Clopper-Pearson bound that counts photo pairs as independent trials
is several times too optimistic, and a threshold picked on the same identities it is
then measured on looks better than it is on new faces. So:

* the FMR bound counts **distinct identity pairs** ({A, B} is one trial: "does any photo
  pair of A and B match at t?"), which over-counts a single matching photo pair as a
  whole pair of people matching, i.e. errs on the safe side;
* a **bootstrap over identities** (resample people, not pairs) gives a second,
  cluster-aware bound on the pair-level rate (useless at zero observed errors, where it
  collapses to 0: then only the Clopper-Pearson bound speaks);
* the selection rule is checked by **cross-validation with identity-disjoint folds**:
  choose the threshold on the training identities' pairs only, count false accepts on the
  pairs that involve a held-out identity.

Scores are cosine similarities; a match is ``score >= t``. Thresholds are on a 0.001 grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRID = 1000  # thresholds are multiples of 1/GRID


def binom_upper(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound for a rate with k events in n independent trials."""
    if n <= 0 or k >= n:
        return 1.0
    if k <= 0:
        return 1.0 - (1.0 - conf) ** (1.0 / n)

    def cdf(p: float) -> float:
        lp, lq = math.log(p), math.log1p(-p)
        return sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
                   for i in range(k + 1))

    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if cdf(mid) > 1 - conf:
            lo = mid
        else:
            hi = mid
    return hi


def trials_needed(target: float, conf: float = 0.95) -> int:
    """Independent trials needed, with no event at all, for the upper bound to reach ``target``."""
    return math.ceil(math.log(1 - conf) / math.log1p(-target))


def identities_needed(target: float, conf: float = 0.95) -> int:
    """People needed so that their distinct pairs m(m-1)/2 reach :func:`trials_needed`."""
    n = trials_needed(target, conf)
    return math.ceil((1 + math.sqrt(1 + 8 * n)) / 2)


def fmr_fnmr(genuine: np.ndarray, impostor: np.ndarray, t: float) -> tuple[float, float]:
    return float(np.mean(impostor >= t)) if len(impostor) else 0.0, float(np.mean(genuine < t)) if len(genuine) else 0.0


def _grid_above(v: float) -> float:
    """The smallest grid threshold strictly above score v."""
    t = math.floor(v * GRID) / GRID + 1.0 / GRID
    while t <= v:  # float rounding
        t += 1.0 / GRID
    return round(t, 6)


def threshold_at_fmr(impostor: np.ndarray, target: float) -> float:
    """Smallest grid threshold whose FMR on ``impostor`` (pairs counted as they are) is <= target.

    This is the in-sample rule: it fits the highest impostor scores of the set it is run on.
    """
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    k = int(math.floor(target * len(imp) + 1e-9))  # impostor pairs allowed at or above the threshold
    if k >= len(imp):
        return -1.0
    t = _grid_above(float(imp[k]))
    while float(np.mean(impostor >= t)) > target:
        t = round(t + 1.0 / GRID, 6)
    return t


def equal_error(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """(EER, threshold at the EER point)."""
    cands = np.unique(np.concatenate([genuine, impostor, [1.0 + 1e-6]]))
    imp_sorted, gen_sorted = np.sort(impostor), np.sort(genuine)
    fmr = 1.0 - np.searchsorted(imp_sorted, cands, side="left") / len(imp_sorted)
    fnmr = np.searchsorted(gen_sorted, cands, side="left") / len(gen_sorted)
    i = int(np.argmin(np.abs(fmr - fnmr)))
    return float((fmr[i] + fnmr[i]) / 2), float(cands[i])


def roc_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cands = np.unique(np.concatenate([genuine, impostor]))[::-1]
    fmr = 1.0 - np.searchsorted(np.sort(impostor), cands, side="left") / len(impostor)
    fnmr = np.searchsorted(np.sort(genuine), cands, side="left") / len(genuine)
    return cands, fmr, fnmr


# ---------------------------------------------------------------- pairs with their identities

@dataclass
class Pairs:
    """Scores of the card-vs-live pairs with the identity (index into ``names``) of each side."""

    names: list[str]
    genuine: np.ndarray      # (G,) scores
    gen_id: np.ndarray       # (G,) identity of the pair
    impostor: np.ndarray     # (I,) scores
    imp_card: np.ndarray     # (I,) identity of the card side
    imp_live: np.ndarray     # (I,) identity of the live side

    @property
    def n_ids(self) -> int:
        return len(self.names)

    @property
    def imp_key(self) -> np.ndarray:
        """Unordered identity pair {card, live} of each impostor pair, as one integer."""
        lo, hi = np.minimum(self.imp_card, self.imp_live), np.maximum(self.imp_card, self.imp_live)
        return lo * self.n_ids + hi

    def subset(self, keep_ids: np.ndarray) -> "Pairs":
        """Only the pairs whose identities are all in ``keep_ids`` (indices keep their meaning)."""
        keep = np.zeros(self.n_ids, bool)
        keep[np.asarray(keep_ids, int)] = True
        g = keep[self.gen_id]
        i = keep[self.imp_card] & keep[self.imp_live]
        return Pairs(self.names, self.genuine[g], self.gen_id[g], self.impostor[i], self.imp_card[i],
                     self.imp_live[i])


def identity_pair_max(p: Pairs) -> np.ndarray:
    """The highest impostor score of each distinct identity pair present in ``p``."""
    if len(p.impostor) == 0:
        return np.zeros(0)
    _, inv = np.unique(p.imp_key, return_inverse=True)
    mx = np.full(int(inv.max()) + 1, -np.inf)
    np.maximum.at(mx, inv, p.impostor)
    return mx


def identity_pair_accepts(p: Pairs, t: float) -> tuple[int, int]:
    """(identity pairs with at least one impostor photo pair accepted at t, identity pairs)."""
    mx = identity_pair_max(p)
    return int(np.sum(mx >= t)), len(mx)


def threshold_for_bound(p: Pairs, target: float, conf: float = 0.95) -> float | None:
    """Smallest grid threshold whose per-identity-pair Clopper-Pearson FMR bound is <= target.

    None when the set is too small for that: even with no identity pair matching at all,
    the bound over its identity pairs stays above the target.
    """
    mx = np.sort(identity_pair_max(p))[::-1]
    n = len(mx)
    if n == 0 or binom_upper(0, n, conf) > target:
        return None
    k_max = 0  # identity pairs allowed to match: the most that keeps the bound <= target
    while k_max + 1 < n and binom_upper(k_max + 1, n, conf) <= target:
        k_max += 1
    return _grid_above(float(mx[k_max]))  # the (k_max+1)-th highest pair must not match


def bootstrap_upper(p: Pairs, t: float, conf: float = 0.95, rounds: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap over identities: (FMR, FNMR) upper ``conf`` quantiles at t.

    People are drawn with replacement; a drawn person brings all their photo pairs, and a
    pair of two drawn people counts once per combination of draws. Deterministic (seeded).
    """
    n = p.n_ids
    acc = np.zeros((n, n))
    cnt = np.zeros((n, n))
    np.add.at(acc, (p.imp_card, p.imp_live), (p.impostor >= t).astype(float))
    np.add.at(cnt, (p.imp_card, p.imp_live), 1.0)
    rej = np.bincount(p.gen_id, weights=(p.genuine < t).astype(float), minlength=n)
    gcnt = np.bincount(p.gen_id, minlength=n).astype(float)
    rng = np.random.default_rng(seed)
    c = rng.multinomial(n, np.full(n, 1.0 / n), size=rounds).astype(float)
    num = np.einsum("bi,ij,bj->b", c, acc, c)
    den = np.einsum("bi,ij,bj->b", c, cnt, c)
    fmr = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    gden = c @ gcnt
    fnmr = np.where(gden > 0, (c @ rej) / np.maximum(gden, 1e-12), 0.0)
    return float(np.quantile(fmr, conf)), float(np.quantile(fnmr, conf))


# ---------------------------------------------------------------- the selection rule and its cross-validation

def select_threshold(p: Pairs, target: float, floor: float, conf: float = 0.95) -> tuple[float, bool]:
    """(threshold, bound met) by the reader's rule.

    When the data supports it, the smallest threshold whose identity-pair FMR bound is
    <= target. When it does not (too few people), never below ``floor`` (the public
    reference for the model), raised just above the highest impostor score seen if that
    is higher: a threshold that the data itself shows to be passable is not kept.
    """
    tb = threshold_for_bound(p, target, conf)
    if tb is not None:
        return tb, True
    seen = _grid_above(float(p.impostor.max())) if len(p.impostor) else floor
    return max(floor, seen), False


@dataclass
class Fold:
    held_out: list[str]
    train_ids: int
    train_id_pairs: int
    insample_threshold: float        # the old rule on the training pairs: in-sample FMR <= target
    insample_train_fmr: float
    threshold: float                 # the reader's rule on the training pairs
    bound_met: bool
    test_impostor: int               # held-out impostor pairs (involving a held-out identity)
    test_accepts_insample: int
    test_accepts: int
    test_genuine: int                # genuine pairs of the held-out identities
    test_rejects_insample: int
    test_rejects: int
    accepted_keys_insample: frozenset
    accepted_keys: frozenset


def folds_of(n_ids: int, max_folds: int = 20) -> list[np.ndarray]:
    """Leave one identity out when there are few people; else ``max_folds`` identity groups (round-robin)."""
    k = n_ids if n_ids <= max_folds else max_folds
    return [np.arange(i, n_ids, k) for i in range(k)]


def cross_validate(p: Pairs, target: float, floor: float, conf: float = 0.95, max_folds: int = 20) -> list[Fold]:
    """Identity-disjoint cross-validation of both the in-sample rule and :func:`select_threshold`.

    Test pairs of a fold are the pairs that involve a held-out identity (its card form
    against everyone's live form and the reverse); the threshold never saw them. An impostor
    pair of two people in different folds is tested twice, once with each fold's threshold.
    """
    out = []
    all_ids = np.arange(p.n_ids)
    key = p.imp_key
    for held in folds_of(p.n_ids, max_folds):
        train = p.subset(np.setdiff1d(all_ids, held))
        t_in = threshold_at_fmr(train.impostor, target)
        t_rule, met = select_threshold(train, target, floor, conf)
        is_held = np.zeros(p.n_ids, bool)
        is_held[held] = True
        ti = is_held[p.imp_card] | is_held[p.imp_live]
        tg = is_held[p.gen_id]
        imp, gen, keys = p.impostor[ti], p.genuine[tg], key[ti]
        out.append(Fold(
            held_out=[p.names[i] for i in held], train_ids=p.n_ids - len(held),
            train_id_pairs=len(identity_pair_max(train)),
            insample_threshold=t_in, insample_train_fmr=float(np.mean(train.impostor >= t_in)),
            threshold=t_rule, bound_met=met,
            test_impostor=int(len(imp)), test_accepts_insample=int(np.sum(imp >= t_in)),
            test_accepts=int(np.sum(imp >= t_rule)),
            test_genuine=int(len(gen)), test_rejects_insample=int(np.sum(gen < t_in)),
            test_rejects=int(np.sum(gen < t_rule)),
            accepted_keys_insample=frozenset(int(k) for k in keys[imp >= t_in]),
            accepted_keys=frozenset(int(k) for k in keys[imp >= t_rule])))
    return out


@dataclass
class CvSummary:
    folds: int
    insample_fmr: float        # mean in-sample FMR of the old rule on the training pairs
    heldout_fmr_insample_rule: float
    heldout_fnmr_insample_rule: float
    heldout_fmr: float         # the reader's rule
    heldout_fnmr: float
    id_pairs: int
    id_pairs_accepted_insample_rule: int
    id_pairs_accepted: int
    fmr_upper: float           # CP over identity pairs of the held-out accepts, reader's rule
    fmr_upper_insample_rule: float


def summarise(folds: list[Fold], n_id_pairs: int, conf: float = 0.95) -> CvSummary:
    ti = sum(f.test_impostor for f in folds) or 1
    tg = sum(f.test_genuine for f in folds) or 1
    k_in = len(frozenset().union(*(f.accepted_keys_insample for f in folds)))
    k = len(frozenset().union(*(f.accepted_keys for f in folds)))
    return CvSummary(
        folds=len(folds),
        insample_fmr=float(np.mean([f.insample_train_fmr for f in folds])),
        heldout_fmr_insample_rule=sum(f.test_accepts_insample for f in folds) / ti,
        heldout_fnmr_insample_rule=sum(f.test_rejects_insample for f in folds) / tg,
        heldout_fmr=sum(f.test_accepts for f in folds) / ti,
        heldout_fnmr=sum(f.test_rejects for f in folds) / tg,
        id_pairs=n_id_pairs, id_pairs_accepted_insample_rule=k_in, id_pairs_accepted=k,
        fmr_upper=binom_upper(k, n_id_pairs, conf), fmr_upper_insample_rule=binom_upper(k_in, n_id_pairs, conf))
