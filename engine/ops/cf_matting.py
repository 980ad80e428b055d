"""Closed-form matting restricted to the unknown band, with optional per-pixel priors.

Solves for alpha on the unknown pixels ``U`` of an image by minimising

    E(alpha) = alpha^T L alpha + sum_p w_p (alpha_p - prior_p)^2

with the known pixels fixed, where ``L`` is the matting Laplacian of Levin, Lischinski & Weiss
("A Closed-Form Solution to Natural Image Matting", PAMI 2008) over 3x3 windows:

    L_ij = sum_{k | i,j in w_k} ( delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/9 I)^-1 (I_j - mu_k)) / 9 )

and ``w_p`` / ``prior_p`` an optional data term (a sampling estimate with its confidence, as in
Wang & Cohen's robust matting, or the motion-compensated previous alpha for temporal stability).
Setting the gradient to zero gives the sparse SPD system ``(L_UU + W) a_U = -L_UK a_K + W prior``.

Only windows that touch an unknown pixel are built, and the system is assembled directly in CSR
form from a 5x5 stencil per unknown pixel (no COO duplicates to sort), so the cost follows the
band's area, not the image's. It is solved by conjugate gradients with a Jacobi preconditioner
from a warm start (``x0``: the prior, or the previous frame's alpha), or directly (SuperLU)
for small systems.

Conventions: ``image`` float ``(H, W, 3)`` (any consistent scale; linear light compositing is
what the model assumes); ``known`` bool ``(H, W)``; ``values`` float ``(H, W)`` holding alpha on
the known pixels; result float32 ``(H, W)`` in [0, 1]. Pure function of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CFSystem", "build_system", "solve_alpha", "trimap_split"]

_OFFS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
_CHUNK = 65536  # windows / rows per step of the assembly


@dataclass
class CFSystem:
    """The linear system of one band: ``A x = b`` over the unknown pixels (raster order)."""

    A: object  # scipy.sparse.csr_matrix (n, n)
    b: np.ndarray  # (n,)
    index: np.ndarray  # int32 (int64 past 2**31 pixels) (H, W): unknown pixel -> row, else -1
    n: int


def trimap_split(trimap: np.ndarray, lo: float = 0.01, hi: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
    """``(known, values)`` from a trimap float in [0, 1] (or uint8 0/128/255): 0 and 1 are known."""
    t = np.asarray(trimap)
    if t.dtype == np.uint8:
        t = t.astype(np.float32) / 255.0
    t = np.asarray(t, np.float32)
    known = (t <= lo) | (t >= hi)
    return known, np.where(t >= hi, 1.0, 0.0).astype(np.float32)


def _inv3(cov: np.ndarray) -> np.ndarray:
    """Inverse of a stack of symmetric 3x3 matrices (K, 3, 3) by cofactors."""
    a, b, c = cov[:, 0, 0], cov[:, 0, 1], cov[:, 0, 2]
    d, e, f = cov[:, 1, 1], cov[:, 1, 2], cov[:, 2, 2]
    A = d * f - e * e
    B = c * e - b * f
    C = b * e - c * d
    D = a * f - c * c
    E = b * c - a * e
    F = a * d - b * b
    det = a * A + b * B + c * C
    inv = np.empty_like(cov)
    inv[:, 0, 0], inv[:, 0, 1], inv[:, 0, 2] = A, B, C
    inv[:, 1, 0], inv[:, 1, 1], inv[:, 1, 2] = B, D, E
    inv[:, 2, 0], inv[:, 2, 1], inv[:, 2, 2] = C, E, F
    inv /= det[:, None, None]
    return inv


def build_system(image: np.ndarray, known: np.ndarray, values: np.ndarray, *, epsilon: float = 1e-6,
                 prior: np.ndarray | None = None, weight: np.ndarray | float | None = None,
                 chunk: int = _CHUNK) -> CFSystem:
    """Assemble ``(L_UU + W) x = -L_UK a_K + W prior`` for the unknown pixels (``~known``).

    Windows and rows are processed ``chunk`` at a time (float64 within a chunk): the temporaries
    stay near ``chunk`` x 1.5 KB whatever the band's size, which keeps a 4K plate's band solve
    within the batch memory budget; the system is the same for any ``chunk``.
    """
    import cv2
    import scipy.sparse

    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"closed-form matting needs an (H, W, 3) image; got {img.shape}")
    if not np.issubdtype(img.dtype, np.floating):
        img = img.astype(np.float32)
    h, w = img.shape[:2]
    chunk = max(1, int(chunk))
    known = np.asarray(known, bool)
    unknown = ~known
    # the Laplacian's windows are interior only: unknown pixels on the outer frame border get
    # their constraints from the windows inside, which always exist for h, w >= 3
    n = int(unknown.sum())
    itype = np.int32 if h * w < 2**31 - 1 else np.int64  # column indices: half the bytes of int64
    index = np.full(h * w, -1, itype)
    index[unknown.ravel()] = np.arange(n, dtype=itype)
    if n == 0:
        return CFSystem(scipy.sparse.csr_matrix((0, 0)), np.zeros(0), index.reshape(h, w), 0)
    win = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    win[0, :] = win[-1, :] = False
    win[:, 0] = win[:, -1] = False
    centres = np.flatnonzero(win.ravel())
    del win
    flat = img.reshape(-1, 3)
    offsets = np.array([dy * w + dx for dy, dx in _OFFS], np.int64)
    stencil = np.zeros((n, 25), np.float64)
    for lo in range(0, centres.size, chunk):
        _add_windows(stencil, flat, index, centres[lo:lo + chunk], offsets, epsilon)
    vals = np.asarray(values).ravel()
    sel_u = unknown.ravel()
    b = np.zeros(n, np.float64)
    if prior is not None and weight is not None:
        wv = np.broadcast_to(np.asarray(weight, np.float64), (h, w)).ravel()[sel_u]
        stencil[:, 12] += wv
        b += wv * np.asarray(prior, np.float64).ravel()[sel_u]
    data, cols_out, counts = [], [], []
    upix = np.flatnonzero(sel_u)
    sy = np.repeat(np.arange(-2, 3), 5)
    sx = np.tile(np.arange(-2, 3), 5)
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        st = stencil[lo:hi]
        uy, ux = np.divmod(upix[lo:hi], w)
        ny = uy[:, None] + sy[None, :]
        nx = ux[:, None] + sx[None, :]
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        nflat = np.where(inside, ny * w + nx, 0)
        del ny, nx
        cols = np.where(inside, index[nflat], itype(-1))
        known_nb = inside & (cols < 0) & (st != 0)
        b[lo:hi] -= (st * np.where(known_nb, vals[nflat], 0.0)).sum(axis=1)
        keep = (cols >= 0) & (st != 0)
        data.append(st[keep])
        cols_out.append(cols[keep])
        counts.append(keep.sum(axis=1))
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(itype)
    A = scipy.sparse.csr_matrix((np.concatenate(data), np.concatenate(cols_out), indptr), shape=(n, n))
    A.has_sorted_indices = True
    return CFSystem(A, b, index.reshape(h, w), n)


def _add_windows(stencil: np.ndarray, flat: np.ndarray, index: np.ndarray, centre: np.ndarray,
                 offsets: np.ndarray, epsilon: float) -> None:
    """Add the Laplacian terms of the 3x3 windows centred at ``centre`` (flat pixel indices) to
    the 5x5 stencils of their unknown pixels, in place."""
    pix = centre[:, None] + offsets[None, :]  # (K, 9)
    C = flat[pix].astype(np.float64)  # (K, 9, 3)
    C -= C.mean(axis=1, keepdims=True)
    cov = np.einsum("kai,kaj->kij", C, C) / 9.0
    cov[:, [0, 1, 2], [0, 1, 2]] += epsilon / 9.0
    G = np.matmul(np.matmul(C, _inv3(cov)), C.transpose(0, 2, 1))  # (K, 9, 9): (I_a - mu)^T S^-1 (I_b - mu)
    del C, cov
    rows = index[pix]  # (K, 9) row of each window pixel (-1 known)
    # L is symmetric: visit each unordered pair (a, b) once and write both (a, b) and (b, a)
    for a, (ay, ax) in enumerate(_OFFS):
        ra = rows[:, a]
        sa = ra >= 0
        for b in range(a, 9):
            by, bx = _OFFS[b]
            val = -(1.0 + G[:, a, b]) / 9.0
            if a == b:
                stencil[ra[sa], 12] += val[sa] + 1.0
                continue
            stencil[ra[sa], (by - ay + 2) * 5 + (bx - ax + 2)] += val[sa]
            rb = rows[:, b]
            sb = rb >= 0
            stencil[rb[sb], (ay - by + 2) * 5 + (ax - bx + 2)] += val[sb]


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # an element-wise reduction, not BLAS: threaded BLAS thrashes on a busy machine for these sizes
    return float(np.einsum("i,i->", a, b))


def pcg(A, b: np.ndarray, x0: np.ndarray | None = None, *, rtol: float = 1e-5, maxiter: int = 2000) -> tuple[np.ndarray, int]:
    """Conjugate gradients with a Jacobi preconditioner for SPD ``A`` (CSR); ``(x, iterations)``.

    Stops when ``|b - A x| <= rtol * |b|``.
    """
    inv_d = 1.0 / A.diagonal()
    x = np.zeros_like(b) if x0 is None else np.array(x0, np.float64)
    r = b - A @ x
    nb = np.sqrt(_dot(b, b))
    if nb == 0:
        return np.zeros_like(b), 0
    z = inv_d * r
    p = z.copy()
    rz = _dot(r, z)
    tol2 = (rtol * nb) ** 2
    it = 0
    while it < maxiter and _dot(r, r) > tol2:
        q = A @ p
        alpha = rz / _dot(p, q)
        x += alpha * p
        r -= alpha * q
        z = inv_d * r
        rz_new = _dot(r, z)
        p *= rz_new / rz
        p += z
        rz = rz_new
        it += 1
    return x, it


def solve_alpha(image: np.ndarray, known: np.ndarray, values: np.ndarray, *, epsilon: float = 1e-6,
                prior: np.ndarray | None = None, weight: np.ndarray | float | None = None,
                x0: np.ndarray | None = None, rtol: float = 1e-5, maxiter: int = 2000,
                method: str = "auto") -> tuple[np.ndarray, dict]:
    """Alpha (float32 (H, W) in [0, 1]) and solver facts (``unknown``, ``iterations``, ``method``).

    ``x0`` (float (H, W)) starts conjugate gradients; ``method`` is ``cg``, ``direct`` or
    ``auto`` (direct below 6,000 unknowns).
    """
    import scipy.sparse.linalg as spla

    sys_ = build_system(image, known, values, epsilon=epsilon, prior=prior, weight=weight)
    out = np.where(np.asarray(known, bool), np.asarray(values, np.float32), 0.0).astype(np.float32)
    info = {"unknown": sys_.n, "iterations": 0, "method": "none"}
    if sys_.n == 0:
        return np.clip(out, 0, 1), info
    sel = sys_.index >= 0
    if method == "auto":
        method = "direct" if sys_.n < 6000 else "cg"
    if method == "direct":
        x = spla.spsolve(sys_.A.tocsc(), sys_.b)
        info["method"] = "direct"
    else:
        start = None
        if x0 is not None:
            start = np.asarray(x0, np.float64)[sel]
        elif prior is not None:
            start = np.asarray(prior, np.float64)[sel]
        x, its = pcg(sys_.A, sys_.b, start, rtol=rtol, maxiter=maxiter)
        info["method"] = "cg"
        info["iterations"] = its
    out[sel] = np.clip(x, 0.0, 1.0)
    return out, info
