"""The sparse (L1) linear probe of the sentiment-neuron paper: the few units that together predict a
feature, chosen along the regularisation path and scored on held-out characters.

Owns: `l1_probe` and its solver (coordinate descent on the active set, proximal Newton for the
logistic loss, strong rules with KKT checks). Does not know: models or features (it is given traces
and values, checked by charlstm.neurons.ranking.check_inputs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from charlstm.errors import CharlstmError
from charlstm.neurons.ranking import Kind, auroc_columns, check_inputs, pearson_columns


@dataclass(frozen=True)
class ProbeUnit:
    """One unit the probe uses. weight: its coefficient on the unit standardised (zero mean, unit
    variance on the training characters); for a continuous feature in units of the feature's
    standard deviation, for a binary one in log-odds."""

    key: str
    unit: int
    weight: float

    @property
    def name(self) -> str:
        return f"{self.key}:{self.unit}"


@dataclass
class ProbeResult:
    """A sparse linear probe of a feature from all units.

    units: the units with non-zero weight, largest |weight| first.
    kind: "binary" (logistic) or "continuous" (least squares).
    intercept: the bias (log-odds, or feature standard deviations).
    heldout: metrics on the held-out tail of the text: binary {"accuracy", "baseline" (majority
        class), "auroc" (when both classes occur)}; continuous {"r2", "r"}.
    train_explained: on the training part, R^2 (continuous) or McFadden's pseudo-R^2 (binary).
    lam: the L1 strength (mean loss + lam * |w|_1) where the support was found.
    n_train, n_test: characters used for fitting and for `heldout`.
    path: (number of units, validation score) of each support met along the regularisation path: the
        R^2 or pseudo-R^2 of its refit on the validation quarter of the training characters (on the
        training characters themselves when selection had no validation part, or with C).
    """

    kind: Kind
    units: list[ProbeUnit]
    intercept: float
    heldout: dict[str, float]
    train_explained: float
    lam: float
    n_train: int
    n_test: int
    path: list[tuple[int, float]] = field(default_factory=list)

    @property
    def metric(self) -> float:
        """The headline held-out number: accuracy (binary) or R^2 (continuous); NaN if no test set."""
        return self.heldout.get("accuracy" if self.kind == "binary" else "r2", float("nan"))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def _residual(z: np.ndarray, y: np.ndarray, kind: Kind) -> np.ndarray:
    """d(loss)/d(z) per character: sigmoid(z) - y for the logistic loss, z - y for 1/2 squared."""
    return _sigmoid(z) - y if kind == "binary" else z - y


def _gram(a: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """a' diag(weights) a for a tall, narrow a [n, k] -> [k, k]. For small k this uses einsum, not
    BLAS: OpenBLAS's threaded gemm on a thin matrix is ~100x slower than a plain loop when the cores
    are oversubscribed (other jobs, parallel tests), and these products are the probe's inner loop."""
    aw = a if weights is None else a * weights[:, None]
    if a.shape[1] <= 64:
        return np.einsum("ti,tj->ij", aw, a)
    return aw.T @ a


def _cd_quadratic(h: np.ndarray, q: np.ndarray, lam: float, theta: np.ndarray, penalised: np.ndarray,
                  tol: float = 1e-7, max_sweeps: int = 500) -> np.ndarray:
    """Minimise 1/2 theta' h theta - q' theta + lam * sum(|theta_j| for penalised j) by cyclic
    coordinate descent. h: [k, k] symmetric positive semi-definite (a small active set's Gram
    matrix); theta: [k] warm start, updated in place and returned."""
    grad = h @ theta - q
    diag = np.diag(h).copy()
    thr = np.where(penalised, lam, 0.0)
    k = len(theta)

    def sweep(coords) -> float:
        biggest = 0.0
        for j in coords:
            if diag[j] <= 0:
                continue
            old = theta[j]
            z = old - grad[j] / diag[j]
            new = math.copysign(max(abs(z) - thr[j] / diag[j], 0.0), z)
            if new != old:
                theta[j] = new
                grad[:] += h[j] * (new - old)  # h is symmetric: row j is column j, contiguous
                biggest = max(biggest, abs(new - old) * math.sqrt(diag[j]))
        return biggest

    for _ in range(max_sweeps):
        if sweep(range(k)) < tol:
            break
        # Then cycle on the non-zero coordinates only until they settle (glmnet's active-set trick).
        for _ in range(max_sweeps):
            if sweep(np.flatnonzero((theta != 0) | ~penalised).tolist()) < tol:
                break
    return theta


def _fit_l1(x: np.ndarray, y: np.ndarray, lam: float, w: np.ndarray, b: float, kind: Kind,
            max_newton: int = 50) -> tuple[np.ndarray, float]:
    """Minimise mean loss(x w + b, y) + lam |w|_1 over w [k] and the bias b, from the warm start
    (w, b). x: float64 [n, k], k small (an active set). Squared loss: one coordinate-descent solve on
    the Gram matrix. Logistic loss: proximal Newton (glmnet): coordinate descent on the local
    quadratic, with a backtracking line search on the true objective."""
    n, k = x.shape
    z_cols = np.hstack([x, np.ones((n, 1))])
    theta = np.append(w, b).astype(np.float64)
    penalised = np.ones(k + 1, dtype=bool)
    penalised[-1] = False  # the bias is never penalised
    if kind == "continuous":
        h = _gram(z_cols) / n
        theta = _cd_quadratic(h, z_cols.T @ y / n, lam, theta, penalised)
        return theta[:k], float(theta[-1])

    def objective(th: np.ndarray) -> float:
        zz = z_cols @ th
        return float(np.mean(np.logaddexp(0, zz) - y * zz)) + lam * float(np.abs(th[:k]).sum())

    f = objective(theta)
    for _ in range(max_newton):
        mu = _sigmoid(z_cols @ theta)
        g = z_cols.T @ (mu - y) / n
        h = _gram(z_cols, mu * (1 - mu)) / n + 1e-9 * np.eye(k + 1)
        target = _cd_quadratic(h, h @ theta - g, lam, theta.copy(), penalised)
        step = target - theta
        t = 1.0
        while True:
            cand = theta + t * step
            f_cand = objective(cand)
            if f_cand <= f + 1e-12 or t < 1e-6:
                break
            t *= 0.5
        converged = np.abs(cand - theta).max() < 1e-7
        theta, f = cand, f_cand
        if converged:
            break
    return theta[:k], float(theta[-1])


def _refit(x: np.ndarray, y: np.ndarray, kind: Kind) -> tuple[np.ndarray, float]:
    """Unpenalised fit on a small support (the "relaxed lasso": L1 picks the units, this sets their
    weights without shrinkage): (w [k], b). x: float64 [n, k] standardised; y: 0/1 or standardised.
    The logistic fit carries a tiny ridge so that separable data still gives finite weights."""
    n, k = x.shape
    if kind == "continuous":
        # y is centred on these characters (or nearly: a validation refit), so fit the bias too.
        z_cols = np.hstack([x, np.ones((n, 1))])
        # Normal equations (k is small); lstsq on them copes with duplicate units.
        theta = np.linalg.lstsq(_gram(z_cols), z_cols.T @ y, rcond=None)[0]
        return theta[:k], float(theta[-1])
    p = float(np.clip(y.mean(), 1e-12, 1 - 1e-12))
    z_cols = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(k + 1)
    theta[-1] = math.log(p / (1 - p))
    ridge = np.full(k + 1, 1e-4 * n)
    ridge[-1] = 0.0
    for _ in range(100):  # Newton (IRLS); k is small, so each step is a tiny linear solve
        mu = _sigmoid(z_cols @ theta)
        grad = z_cols.T @ (mu - y) + ridge * theta
        hess = _gram(z_cols, mu * (1 - mu)) + np.diag(ridge) + 1e-9 * np.eye(k + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:k], float(theta[-1])


def _lasso_path(x: np.ndarray, y: np.ndarray, kind: Kind, max_units: int,
                C: float | None) -> list[tuple[tuple[int, ...], float]]:
    """The distinct non-empty supports (column indices, L1 strength) met along the regularisation path
    of mean loss + lam |w|_1 on x: float32 [n, p] standardised, y: float64 [n] (0/1, or standardised).

    Without C: lam from the smallest value that keeps every weight at 0 down to 1/1000 of it, stopping
    before more than max_units columns are in. With C: down to lam = 1 / (C n) only, returning the
    single support there (cut to its max_units largest weights)."""
    n, p = x.shape
    w = np.zeros(p)
    b = math.log(y.mean() / (1 - y.mean())) if kind == "binary" else float(y.mean())

    def full_gradient(w: np.ndarray, b: float) -> np.ndarray:
        idx = np.flatnonzero(w)
        z = (x[:, idx].astype(np.float64) @ w[idx] if len(idx) else np.zeros(n)) + b
        r = _residual(z, y, kind).astype(np.float32)
        return (x.T @ r).astype(np.float64) / n  # the one pass over all units per step

    g = full_gradient(w, b)
    lam_max = float(np.abs(g).max())
    if lam_max == 0:
        return []
    if C is None:
        lams = lam_max * np.geomspace(1.0, 1e-3, 61)[1:]
    else:
        target = 1.0 / (C * n)
        lams = lam_max * np.geomspace(1.0, target / lam_max, 31)[1:] if target < lam_max else np.zeros(0)
    def solve(lam: float, lam_prev: float, w: np.ndarray, b: float, g: np.ndarray):
        """The fit at lam, warm-started from the fit (w, b, gradient g) at lam_prev."""
        # Strong rule (Tibshirani et al. 2012): units far below the threshold stay out; the KKT check
        # on the full gradient afterwards adds any that the rule wrongly left out.
        active = (w != 0) | (np.abs(g) >= 2 * lam - lam_prev)
        while True:
            idx = np.flatnonzero(active)
            w_a, b = _fit_l1(x[:, idx].astype(np.float64), y, lam, w[idx], b, kind)
            w = np.zeros(p)
            w[idx] = w_a
            g = full_gradient(w, b)
            violators = ~active & (np.abs(g) > lam * (1 + 1e-4))
            if not violators.any():
                return w, b, g
            active |= violators

    supports: list[tuple[tuple[int, ...], float]] = []
    lam_prev = lam_max
    for lam in lams:
        w_new, b_new, g_new = solve(lam, lam_prev, w, b, g)
        support = tuple(np.flatnonzero(w_new).tolist())
        if C is None and len(support) > max_units:
            # Overshot: several units entered in one step. Bisect (in log lam) between the last fit
            # within max_units and this one, to meet the supports in between.
            lo, hi = float(lam), float(lam_prev)
            for _ in range(8):
                mid = math.sqrt(lo * hi)
                w_mid, b_mid, g_mid = solve(mid, hi, w, b, g)
                mid_support = tuple(np.flatnonzero(w_mid).tolist())
                if len(mid_support) > max_units:
                    lo = mid
                    continue
                hi, w, b, g = mid, w_mid, b_mid, g_mid
                if mid_support and (not supports or supports[-1][0] != mid_support):
                    supports.append((mid_support, mid))
            if not supports:  # units tied exactly: keep the largest weights of the overshoot
                keep = np.argsort(-np.abs(w_new[list(support)]), kind="stable")[:max_units]
                supports.append((tuple(sorted(support[i] for i in keep)), float(lam)))
            break
        w, b, g = w_new, b_new, g_new
        if support and (not supports or supports[-1][0] != support):
            supports.append((support, float(lam)))
        lam_prev = lam
    if C is not None:
        support = tuple(np.flatnonzero(w).tolist())
        if len(support) > max_units:  # too many at this C: keep the largest weights
            keep = np.argsort(-np.abs(w[list(support)]), kind="stable")[:max_units]
            support = tuple(sorted(support[i] for i in keep))
        return [(support, float(lams[-1]) if len(lams) else lam_max)] if support else []
    return supports


def _explained(x: np.ndarray, y: np.ndarray, w: np.ndarray, b: float, kind: Kind, y_ref: float) -> float:
    """R^2 (continuous) or McFadden pseudo-R^2 (binary) of the model (w, b) on (x, y), relative to the
    constant prediction y_ref (the training mean / positive rate). May be negative on new data."""
    z = x @ w + b
    if kind == "continuous":
        sst = float(np.sum((y - y_ref) ** 2))
        return 1.0 - float(np.sum((y - z) ** 2)) / sst if sst > 0 else 0.0
    p = min(max(y_ref, 1e-12), 1 - 1e-12)
    ll_null = float(np.sum(y * math.log(p) + (1 - y) * math.log(1 - p)))
    ll = float(np.sum(-y * np.logaddexp(0, -z) - (1 - y) * np.logaddexp(0, z)))
    return 1.0 - ll / ll_null if ll_null < 0 else 0.0


def l1_probe(traces: Mapping[str, np.ndarray], values: np.ndarray, kind: str = "auto",
             max_units: int = 10, C: float | None = None, min_gain: float = 0.01, holdout: float = 0.2,
             mask: np.ndarray | None = None) -> ProbeResult:
    """Find the few units that together predict a feature: an L1-regularised logistic (binary) or
    least-squares (continuous) regression on all units, standardised, as in Radford et al.'s
    sentiment neuron.

    traces: {key: [T, units]}; values: [T]; kind: "binary", "continuous" or "auto";
    mask: optional bool [T] of characters to use. Splits are contiguous, in text order, because
    neighbouring characters are far from independent: the last `holdout` fraction of the (masked)
    characters is the test set, reported in `heldout` and used for nothing else; the rest trains.

    Without C (default): the regularisation path runs from the empty model until more than
    `max_units` units would be in, on the first 75% of the training characters; each support met is
    refit without penalty there and scored on the other 25%; the smallest support scoring within
    `min_gain` (R^2 or pseudo-R^2) of the best is kept (min_gain=0: the best). Units that only fit
    noise do not help on the validation characters, so they are left out.
    With C (sklearn's convention: larger C, weaker penalty; the L1 strength is 1 / (C * n_train)):
    the support of the one fit on all training characters, cut to the max_units largest weights.
    Either way the kept units are refit without penalty on all training characters (the "relaxed
    lasso": L1 picks the units, the refit sets unshrunk weights).
    Cost: one pass over the [T, U] matrix per path step; the optimisation runs on the few active
    units only (strong rules with KKT checks), so thousands of characters by thousands of units take
    about a second. Memory: one float32 copy of all traces, T x U x 4 bytes.
    """
    items, y_all, kind = check_inputs(traces, values, kind, mask)
    if max_units < 1:
        raise CharlstmError(f"max_units must be at least 1, got {max_units}")
    if not 0.0 <= holdout < 1.0:
        raise CharlstmError(f"holdout must be in [0, 1), got {holdout}")
    if C is not None and not C > 0:
        raise CharlstmError(f"C must be positive, got {C}")
    columns = [(key, u) for key, arr in items for u in range(arr.shape[1])]
    t = len(y_all)
    n_test = int(round(t * holdout))
    n = t - n_test
    y = y_all[:n]
    if n < 4 or y.max() == y.min():
        raise CharlstmError(f"the feature does not vary on the first {n} characters used for fitting; use a longer "
                            f"text or a smaller holdout")

    # One standardised float32 copy of all units (training statistics); constant units become zeros.
    xs = np.concatenate([arr.astype(np.float32, copy=False) for _, arr in items], axis=1)
    mu = xs[:n].mean(axis=0, dtype=np.float64)
    sd = xs[:n].std(axis=0, dtype=np.float64)
    scale = np.where(sd > 1e-6 * np.maximum(1.0, np.abs(mu)), 1.0 / np.where(sd > 0, sd, 1.0), 0.0)
    xs -= mu.astype(np.float32)
    xs *= scale.astype(np.float32)
    y_mu, y_sd = 0.0, 1.0
    if kind == "continuous":  # standardised so that the path's lam has the same scale for every feature
        y_mu, y_sd = float(y.mean()), float(y.std())
        y = (y - y_mu) / y_sd

    n_fit = int(n * 0.75)
    y_fit, y_val = y[:n_fit], y[n_fit:]
    selecting = C is None and len(y_val) >= 2 and y_fit.max() > y_fit.min() and y_val.max() > y_val.min()
    if C is not None or not selecting:
        # No usable validation part (a feature that only varies early, a tiny text): select on the
        # training characters themselves, which can keep a few more units than needed.
        n_fit, y_fit = n, y
    supports = _lasso_path(xs[:n_fit], y_fit, kind, max_units, C)

    path: list[tuple[int, float]] = []
    chosen: tuple[int, ...] = ()
    if supports:
        y_ref = float(y_fit.mean())
        scored = []
        for support, lam in supports:
            cols = list(support)
            w_s, b_s = _refit(xs[:n_fit, cols].astype(np.float64), y_fit, kind)
            if selecting:
                score = _explained(xs[n_fit:n, cols].astype(np.float64), y_val, w_s, b_s, kind, y_ref)
            else:
                score = _explained(xs[:n_fit, cols].astype(np.float64), y_fit, w_s, b_s, kind, y_ref)
            scored.append((support, lam, score))
            path.append((len(support), score))
        best = max(sc for _, _, sc in scored)
        chosen, lam, _ = min((f for f in scored if f[2] >= best - min_gain), key=lambda f: (len(f[0]), -f[2]))
    else:
        lam = float("nan")
    cols = list(chosen)
    x_train = xs[:n, cols].astype(np.float64)
    w_s, b_s = _refit(x_train, y, kind)
    explained = _explained(x_train, y, w_s, b_s, kind, float(y.mean()))

    heldout: dict[str, float] = {}
    if n_test:
        z = xs[n:, cols].astype(np.float64) @ w_s + b_s
        y_test = y_all[n:]
        if kind == "binary":
            heldout["accuracy"] = float(np.mean((z > 0) == (y_test > 0.5)))
            heldout["baseline"] = float(max(y_test.mean(), 1 - y_test.mean()))
            if 0 < y_test.sum() < len(y_test):
                heldout["auroc"] = float(auroc_columns(z[:, None], y_test)[0])
        else:
            pred = z * y_sd + y_mu
            sst = float(np.sum((y_test - y_test.mean()) ** 2))
            heldout["r2"] = 1.0 - float(np.sum((y_test - pred) ** 2)) / sst if sst > 0 else 0.0
            heldout["r"] = float(pearson_columns(pred[:, None], y_test)[0])
    units = [ProbeUnit(columns[j][0], columns[j][1], float(wj)) for j, wj in zip(cols, w_s)]
    units.sort(key=lambda pu: -abs(pu.weight))
    return ProbeResult(kind=kind, units=units, intercept=float(b_s), heldout=heldout,
                       train_explained=float(explained), lam=float(lam), n_train=n, n_test=n_test, path=path)


