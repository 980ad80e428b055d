"""Binary graph cut on a pixel grid (min-cut / max-flow with SciPy's Dinic solver).

Energy, for a labelling ``L`` (1 = object) of an ``(H, W)`` grid::

    E(L) = sum_p  [L_p = 0] * max(t_p, 0) + [L_p = 1] * max(-t_p, 0)
         + sum_{p~q} w_pq * [L_p != L_q]

``t_p`` is the per-pixel evidence for the object (a log-odds: positive → object) and ``w_pq`` the
cost of cutting between 4- (and optionally diagonal) neighbours. Solved exactly with
:func:`scipy.sparse.csgraph.maximum_flow` (BSD licence; no GPL maxflow code). Capacities are
quantised to integers (``quant`` units per log-odds unit).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

__all__ = ["contrast_weights", "graph_cut"]


def contrast_weights(image: np.ndarray, *, diagonal: bool = True, beta: float | None = None) -> list:
    """Contrast-sensitive neighbour weights ``exp(-beta * |I_p - I_q|^2)`` of an image.

    ``image`` is ``float32 (H, W, C)`` (any colour space; Lab recommended) or ``(H, W)``. ``beta``
    defaults to ``1 / (2 * mean |I_p - I_q|^2)`` (Rother et al., GrabCut). Returns a list of
    ``(dy, dx, weights)`` with ``weights`` ``float32`` of shape ``(H - dy, W - |dx|)``: the weight
    between pixel ``(y, x)`` and ``(y + dy, x + dx)`` (diagonals already divided by sqrt 2).
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    offs = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if diagonal else [])
    diffs = []
    for dy, dx in offs:
        if dx >= 0:
            a = img[: img.shape[0] - dy, : img.shape[1] - dx]
            b = img[dy:, dx:]
        else:
            a = img[: img.shape[0] - dy, -dx:]
            b = img[dy:, : img.shape[1] + dx]
        diffs.append(((a - b) ** 2).sum(axis=2))
    if beta is None:
        m = float(np.mean([d.mean() for d in diffs[:2]])) if diffs[0].size else 1.0
        beta = 1.0 / (2.0 * max(m, 1e-6))
    out = []
    for (dy, dx), d in zip(offs, diffs):
        w = np.exp(-beta * d).astype(np.float32)
        if dy and dx:
            w /= np.sqrt(2.0)
        out.append((dy, dx, w))
    return out


def graph_cut(
    unary: np.ndarray,
    weights: list,
    *,
    smoothness: float = 1.0,
    quant: float = 64.0,
) -> np.ndarray:
    """Minimise the energy of the module docstring; return the labelling ``bool (H, W)``.

    Parameters
    ----------
    unary:
        ``float32 (H, W)`` log-odds for the object (positive = object).
    weights:
        From :func:`contrast_weights` on an image of the same ``(H, W)``.
    smoothness:
        Multiplier of the pairwise weights (λ), in log-odds units.
    quant:
        Integer capacity units per log-odds unit.
    """
    t = np.asarray(unary, dtype=np.float32)
    h, w = t.shape
    n = h * w
    if n == 0:
        return np.zeros((h, w), dtype=bool)
    idx = np.arange(n, dtype=np.int32).reshape(h, w)
    src, snk = n, n + 1
    rows = []
    cols = []
    caps = []
    for dy, dx, wt in weights:
        if dx >= 0:
            a = idx[: h - dy, : w - dx]
            b = idx[dy:, dx:]
        else:
            a = idx[: h - dy, -dx:]
            b = idx[dy:, : w + dx]
        c = np.rint(wt * (smoothness * quant)).astype(np.int32).ravel()
        keep = c > 0
        a = a.ravel()[keep]
        b = b.ravel()[keep]
        c = c[keep]
        rows += [a, b]
        cols += [b, a]
        caps += [c, c]
    tq = np.rint(t.ravel() * quant).astype(np.int64)
    tq = np.clip(tq, -(2**30), 2**30).astype(np.int32)
    pos = tq > 0
    neg = tq < 0
    flat = idx.ravel()
    rows += [np.full(int(pos.sum()), src, np.int32), flat[neg]]
    cols += [flat[pos], np.full(int(neg.sum()), snk, np.int32)]
    caps += [tq[pos], -tq[neg]]
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    v = np.concatenate(caps).astype(np.int32)
    g = sp.csr_matrix((v, (r, c)), shape=(n + 2, n + 2))
    g.sum_duplicates()
    if not pos.any():
        return np.zeros((h, w), dtype=bool)
    if not neg.any():
        return np.ones((h, w), dtype=bool)
    res = maximum_flow(g, src, snk, method="dinic")
    resid = (g - res.flow).tocsr()
    resid.data = (resid.data > 0).astype(np.int8)
    resid.eliminate_zeros()
    reach = breadth_first_order(resid, src, directed=True, return_predecessors=False)
    lab = np.zeros(n + 2, dtype=bool)
    lab[reach] = True
    return lab[:n].reshape(h, w)
