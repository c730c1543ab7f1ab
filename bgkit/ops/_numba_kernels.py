"""The CPU kernels behind :mod:`bgkit.ops.kernels` (numba; imported only when used).

Each is one parallel pass over the rows of a full-size frame that does what several torch
operations do one after the other (each of which reads and writes the whole frame): the same
formulas, in float32, so the results agree with the torch definitions to rounding (the tests
hold them to that). Pictures are (H, W, 3) RGB, alphas and probabilities (H, W) float32 0..1.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_FLAT = np.float32(1e-4)
_ABOVE_HALF = np.float32(np.nextafter(np.float32(0.5), np.float32(1.0)))
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)
_255 = np.float32(255.0)


@njit(inline="always")
def _lerp(start, end, weight):  # torch.lerp's formula: exact at weight 0 and 1 (both sides, then a select: vectorises)
    diff = end - start
    low = start + weight * diff
    high = end - diff * (_ONE - weight)
    return low if weight < _HALF else high


@njit(inline="always")
def _byte(v):  # clamp to 0..255, round half up (torch: clamp_, add_(0.5), truncate)
    v = min(max(v, _ZERO), _255) + _HALF
    return np.uint8(np.int32(v))


@njit(inline="always")
def _spread3(src, dst):
    """``dst[3 x + c] = src[x]``: a row of per-pixel values (W,) laid out like an RGB row (3 W,)."""
    for x in range(src.shape[0]):
        v = src[x]
        dst[3 * x] = v
        dst[3 * x + 1] = v
        dst[3 * x + 2] = v


@njit(inline="always")
def _mirror(src, dst, w, c):
    """A row of ``w`` pixels of ``c`` channels (flat), mirrored left-right into ``dst``."""
    for x in range(w):
        for k in range(c):
            dst[(w - 1 - x) * c + k] = src[x * c + k]


@njit(inline="always")
def _rows_at(src, i0, i1, fy):
    """The channels of ``src`` (C, h, w) interpolated between its rows ``i0`` and ``i1`` by ``fy``: (C, w)."""
    c, _, wl = src.shape
    row = np.empty((c, wl), np.float32)
    for k in range(c):
        for x in range(wl):
            row[k, x] = src[k, i0, x] + (src[k, i1, x] - src[k, i0, x]) * fy
    return row


@njit(parallel=True, cache=True, nogil=True)
def apply_guided(ab, y0, y1, wy, x0, x1, wx, rgb, q):
    """``q = clamp(b + sum_k a_k I_k, 0, 1)`` with (a_r, a_g, a_b, b) = ``ab`` (4, h, w)
    interpolated bilinearly (each output row's two sample rows ``y0``, ``y1`` and weight ``wy``;
    columns alike) and ``I`` = ``rgb`` (H, W, 3) uint8 / 255.
    Every low row is first interpolated along to the full width (once, not once per output row)."""
    hh, ww = q.shape
    _, hl, wl = ab.shape
    hz = np.empty((hl, 4, ww), np.float32)  # every low row interpolated along to the full width
    for i in prange(hl):
        for k in range(4):
            src = ab[k, i]
            dst = hz[i, k]
            for x in range(ww):
                a = src[x0[x]]
                dst[x] = a + (src[x1[x]] - a) * wx[x]
    for y in prange(hh):
        i0, i1, fy = y0[y], y1[y], wy[y]
        co = np.empty((4, ww), np.float32)
        for k in range(4):
            ta = hz[i0, k]
            tb = hz[i1, k]
            ck = co[k]
            for x in range(ww):
                ck[x] = ta[x] + (tb[x] - ta[x]) * fy
        im = rgb[y].reshape(3 * ww)
        out = q[y]
        c0 = co[0]; c1 = co[1]; c2 = co[2]; c3 = co[3]
        for x in range(ww):
            acc = c3[x]
            acc += c0[x] * (np.float32(im[3 * x]) / _255)
            acc += c1[x] * (np.float32(im[3 * x + 1]) / _255)
            acc += c2[x] * (np.float32(im[3 * x + 2]) / _255)
            out[x] = min(max(acc, _ZERO), _ONE)



@njit(parallel=True, cache=True, nogil=True)
def apply_matting(coef, y0, y1, wy, x0, x1, wx, rgb, fgr, pha):
    """RVM's full-resolution end: the coefficients ``coef`` (8, h, w) (``A`` then ``b`` for r, g, b,
    grey) interpolated bilinearly as in :func:`apply_guided` and applied to ``I`` = ``rgb`` (H, W, 3)
    uint8 / 255 and its grey ``(r + g + b) / 3``: ``fgr = clamp(A I + b + I, 0, 1)`` (H, W, 3) and
    ``pha = clamp(A_g grey + b_g, 0, 1)`` (H, W), float32."""
    hh, ww = pha.shape
    for y in prange(hh):
        row = _rows_at(coef, y0[y], y1[y], wy[y])
        for x in range(ww):
            i, j, f = x0[x], x1[x], wx[x]
            r = np.float32(rgb[y, x, 0]) / _255
            g = np.float32(rgb[y, x, 1]) / _255
            b = np.float32(rgb[y, x, 2]) / _255
            grey = (r + g + b) / np.float32(3.0)
            for k in range(3):
                v = r if k == 0 else (g if k == 1 else b)
                a = row[k, i] + (row[k, j] - row[k, i]) * f
                c = row[k + 4, i] + (row[k + 4, j] - row[k + 4, i]) * f
                fgr[y, x, k] = min(max(a * v + c + v, _ZERO), _ONE)
            a = row[3, i] + (row[3, j] - row[3, i]) * f
            c = row[7, i] + (row[7, j] - row[7, i]) * f
            pha[y, x] = min(max(a * grey + c, _ZERO), _ONE)


@njit(parallel=True, cache=True, nogil=True)
def resize_taps(rgb, y1, y2, wy2, wy1, x1, x2, wx2, wx1, out):
    """Bilinear resize of ``rgb`` (H, W, 3) uint8 / 255 to ``out`` (3, h, w) float32 with given
    taps (rows ``y1``, ``y2`` with the weights of ``y2`` and of ``y1``; columns alike), summed as
    ``((w11 v11 + w12 v12) + w21 v21) + w22 v22``: bit for bit the arithmetic of
    :func:`bgkit.models.rvm.net.downsample` on the float frame."""
    _, hh, ww = out.shape
    for y in prange(hh):
        a, b, fa, fb = y1[y], y2[y], wy1[y], wy2[y]
        for x in range(ww):
            i, j, gi, gj = x1[x], x2[x], wx1[x], wx2[x]
            w11, w12, w21, w22 = gi * fa, gj * fa, gi * fb, gj * fb
            for k in range(3):
                v11 = np.float32(rgb[a, i, k]) / _255
                v12 = np.float32(rgb[a, j, k]) / _255
                v21 = np.float32(rgb[b, i, k]) / _255
                v22 = np.float32(rgb[b, j, k]) / _255
                out[k, y, x] = ((w11 * v11 + w12 * v12) + w21 * v21) + w22 * v22


@njit(parallel=True, cache=True, nogil=True)
def resize_weighted(rgb, ry, wy, ny, rx, wx, nx, mean, std, normalise, out, norm):
    """``rgb`` (H, W, 3) uint8 / 255 resampled to ``out`` (3, h, w) float32 with per-output taps:
    output row ``y`` sums the ``ny[y]`` source rows from ``ry[y]`` on with weights ``wy[y]``
    (columns alike), down the columns first (whole rows, vectorised), then along the rows. Where
    ``normalise``, also ``norm = (out - mean) / std`` per channel ((3,) float32 each)."""
    _, hh, ww = out.shape
    h, w, _ = rgb.shape
    n = 3 * w
    flat = rgb.reshape(h, n)
    for y in prange(hh):
        tmp = np.zeros(n, np.float32)
        for t in range(ny[y]):
            wt = wy[y, t]
            src = flat[ry[y] + t]
            for q in range(n):
                tmp[q] += wt * np.float32(src[q])
        o0, o1, o2 = out[0, y], out[1, y], out[2, y]
        for x in range(ww):
            s0, s1, s2 = _ZERO, _ZERO, _ZERO
            b = 3 * rx[x]
            for t in range(nx[x]):
                wt = wx[x, t]
                s0 += wt * tmp[b + 3 * t]
                s1 += wt * tmp[b + 3 * t + 1]
                s2 += wt * tmp[b + 3 * t + 2]
            o0[x] = s0 / _255
            o1[x] = s1 / _255
            o2[x] = s2 / _255
        if normalise:
            for c in range(3):
                src, dst, m, sd = out[c, y], norm[c, y], mean[c], std[c]
                for x in range(ww):
                    dst[x] = (src[x] - m) / sd


@njit(cache=True, nogil=True)
def _box_means(x, r, out):
    """Mean of ``x`` (h, w) over its ``(2r+1)^2`` windows clipped to the image (running sums), into
    ``out`` (h, w); float64 (:func:`bgkit.ops.refine.box_filter`)."""
    hh, ww = x.shape
    col = np.empty((hh, ww), np.float64)
    run = np.zeros(ww, np.float64)
    for y in range(min(r, hh)):
        for i in range(ww):
            run[i] += x[y, i]
    for y in range(hh):  # down the columns, a row at a time
        if y + r < hh:
            for i in range(ww):
                run[i] += x[y + r, i]
        if y - r - 1 >= 0:
            for i in range(ww):
                run[i] -= x[y - r - 1, i]
        inv = 1.0 / (min(y + r, hh - 1) - max(y - r, 0) + 1)
        for i in range(ww):
            col[y, i] = run[i] * inv
    for y in range(hh):  # along the rows
        s = 0.0
        for i in range(min(r, ww)):
            s += col[y, i]
        for i in range(ww):
            if i + r < ww:
                s += col[y, i + r]
            if i - r - 1 >= 0:
                s -= col[y, i - r - 1]
            out[y, i] = s / (min(i + r, ww - 1) - max(i - r, 0) + 1)


#: The 13 statistics of the colour guided filter as (channel a, channel b) of the centred
#: r, g, b, p: a alone (b = -1) for the four means, else the product a * b.
_STAT_A = np.array([0, 1, 2, 3, 0, 0, 0, 1, 1, 2, 0, 1, 2], np.int64)
_STAT_B = np.array([-1, -1, -1, -1, 0, 1, 2, 1, 2, 2, 3, 3, 3], np.int64)


@njit(parallel=True, cache=True, nogil=True)
def guided_coefficients_rgb(guide, p, sub, r, eps, ab):
    """The colour guided filter's window-averaged coefficients (a_r, a_g, a_b, b) into ``ab``
    (4, h, w) float32, as :func:`bgkit.ops.refine.guided_coefficients` computes them (in float64):
    the guide ``guide`` (3, H, W) and the input ``p`` (H, W), float32 0..1, first reduced to 2x2
    block means where ``sub`` is 2 (H, W even; in float32, summed as
    :func:`bgkit.ops.refine.refine_t` does), centred on their means, box radius ``r``,
    regulariser ``eps``.
    Few parallel steps: the reduced channels with their sums, then the 13 window means (each task
    makes its own centred product), the 3x3 solve, the 4 window means of the coefficients."""
    _, hh, ww = ab.shape
    lo = np.empty((4, hh, ww), np.float64)
    m = np.zeros(4, np.float64)
    for k in prange(4):
        src = p if k == 3 else guide[k]
        dst = lo[k]
        acc = 0.0
        for y in range(hh):
            row = dst[y]
            if sub == 2:
                s0 = src[2 * y]
                s1 = src[2 * y + 1]
                for x in range(ww):
                    row[x] = ((s0[2 * x] + s1[2 * x]) + (s0[2 * x + 1] + s1[2 * x + 1])) * np.float32(0.25)
            else:
                s0 = src[y]
                for x in range(ww):
                    row[x] = s0[x]
            for x in range(ww):
                acc += row[x]
        m[k] = acc / (hh * ww)
    mean = np.empty((13, hh, ww), np.float64)
    for k in prange(13):  # r g b p, rr rg rb gg gb bb, rp gp bp: centred, each made by its task
        a = _STAT_A[k]
        b = _STAT_B[k]
        st = np.empty((hh, ww), np.float64)
        ma = m[a]
        la = lo[a]
        if b < 0:
            for y in range(hh):
                for x in range(ww):
                    st[y, x] = la[y, x] - ma
        else:
            mb = m[b]
            lb = lo[b]
            for y in range(hh):
                for x in range(ww):
                    st[y, x] = (la[y, x] - ma) * (lb[y, x] - mb)
        _box_means(st, r, mean[k])
    coef = np.empty((4, hh, ww), np.float64)
    e = np.float64(eps)
    for y in prange(hh):
        for x in range(ww):
            r_, g_, b_, p_ = mean[0, y, x], mean[1, y, x], mean[2, y, x], mean[3, y, x]
            rr = mean[4, y, x] - r_ * r_ + e
            rg = mean[5, y, x] - r_ * g_
            rb = mean[6, y, x] - r_ * b_
            gg = mean[7, y, x] - g_ * g_ + e
            gb = mean[8, y, x] - g_ * b_
            bb = mean[9, y, x] - b_ * b_ + e
            cr = mean[10, y, x] - r_ * p_
            cg = mean[11, y, x] - g_ * p_
            cb = mean[12, y, x] - b_ * p_
            i_rr = gg * bb - gb * gb
            i_rg = gb * rb - rg * bb
            i_rb = rg * gb - gg * rb
            i_gg = rr * bb - rb * rb
            i_gb = rb * rg - rr * gb
            i_bb = rr * gg - rg * rg
            det = rr * i_rr + rg * i_rg + rb * i_rb
            a_r = (i_rr * cr + i_rg * cg + i_rb * cb) / det
            a_g = (i_rg * cr + i_gg * cg + i_gb * cb) / det
            a_b = (i_rb * cr + i_gb * cg + i_bb * cb) / det
            coef[0, y, x], coef[1, y, x], coef[2, y, x] = a_r, a_g, a_b
            coef[3, y, x] = p_ - (a_r * r_ + a_g * g_ + a_b * b_)
    out = np.empty((4, hh, ww), np.float64)
    for k in prange(4):
        _box_means(coef[k], r, out[k])
    for y in prange(hh):
        for x in range(ww):
            for k in range(3):
                ab[k, y, x] = np.float32(out[k, y, x])
            ab[3, y, x] = np.float32(out[3, y, x] + m[3] - (out[0, y, x] * m[0] + out[1, y, x] * m[1]
                                                            + out[2, y, x] * m[2]))


@njit(parallel=True, cache=True, nogil=True)
def threshold_into(q, t, on):
    """``on = q > t``."""
    h, w = q.shape
    for y in prange(h):
        for x in range(w):
            on[y, x] = q[y, x] > t


@njit(parallel=True, cache=True, nogil=True)
def soft_alpha(p, on, t, softness, r, alpha):
    """:func:`bgkit.soft_alpha`: 0/1 from ``on`` except near the edge (a pixel of the other side
    within ``r`` = ceil(softness / 2), edge pixels replicated), where it is the ramp
    ``0.5 + (p - t) / (|grad p| softness)`` (central differences), kept on ``on``'s side of 0.5.
    Row by row: the window counts of ``on`` (vectorised sums), 0/1 everywhere, then the ramp
    where the count is neither 0 nor full (a few pixels per row)."""
    h, w = p.shape
    half_soft = np.float32(0.5 * softness)
    full = (2 * r + 1) * (2 * r + 1)
    for y in prange(h):
        cs = np.zeros(w + 2 * r, np.int16)
        for dy in range(-r, r + 1):
            src = on[min(max(y + dy, 0), h - 1)]
            for x in range(w):
                cs[r + x] += np.int16(src[x])
        for x in range(r):
            cs[x] = cs[r]
            cs[r + w + x] = cs[r + w - 1]
        count = np.zeros(w, np.int16)
        for dx in range(2 * r + 1):
            for x in range(w):
                count[x] += cs[x + dx]
        o_row = on[y]
        out = alpha[y]
        for x in range(w):
            out[x] = _ONE if o_row[x] else _ZERO
        up = p[max(y - 1, 0)]
        down = p[min(y + 1, h - 1)]
        row = p[y]
        for x in range(w):
            c = count[x]
            if c == 0 or c == full:
                continue
            o = o_row[x]
            gy = down[x] - up[x]
            gx = row[min(x + 1, w - 1)] - row[max(x - 1, 0)]
            slope = np.float32(math.sqrt(np.float64(gx) * gx + np.float64(gy) * gy)) * half_soft
            if slope >= _FLAT:
                a = min(max((row[x] - t) / slope + _HALF, _ZERO), _ONE)
            else:
                a = _ONE if o else _ZERO
            out[x] = max(a, _ABOVE_HALF) if o else min(a, _HALF)


@njit(parallel=True, cache=True, nogil=True)
def blend(fg, fg_scale, bg, alpha, flip, out):
    """``out = round(lerp(bg, fg * fg_scale, alpha))``: fg and bg (H, W, 3) pictures (uint8 or
    float); mirrored left-right where ``flip``. Like every picture kernel here, each row runs as
    one flat loop over its 3 W values (the alpha spread to match), which the compiler vectorises."""
    h, w = alpha.shape
    n = 3 * w
    for y in prange(h):
        a3 = np.empty(n, np.float32)
        _spread3(alpha[y], a3)
        f = fg[y].reshape(n)
        b = bg[y].reshape(n)
        o = out[y].reshape(n)
        dst = np.empty(n, np.uint8) if flip else o
        for q in range(n):
            dst[q] = _byte(_lerp(np.float32(b[q]), np.float32(f[q]) * fg_scale, a3[q]))
        if flip:
            _mirror(dst, o, w, 3)


@njit(parallel=True, cache=True, nogil=True)
def blend_colour(fg, fg_scale, colour, alpha, flip, out):
    """:func:`blend` over one RGB ``colour`` (3,) float32."""
    h, w = alpha.shape
    n = 3 * w
    b = np.empty(n, np.float32)
    for x in range(w):
        for k in range(3):
            b[3 * x + k] = colour[k]
    for y in prange(h):
        a3 = np.empty(n, np.float32)
        _spread3(alpha[y], a3)
        f = fg[y].reshape(n)
        o = out[y].reshape(n)
        dst = np.empty(n, np.uint8) if flip else o
        for q in range(n):
            dst[q] = _byte(_lerp(b[q], np.float32(f[q]) * fg_scale, a3[q]))
        if flip:
            _mirror(dst, o, w, 3)


@njit(cache=True, nogil=True)
def _upsampling(h, w, f, start):
    """The samples of ``bgkit.ops.filters._upsample`` for an (h, w) output from 1/f resolution
    with phase ``start``: output row Y reads low rows k, k + 1 with ``k = (Y + start) // f``
    (rows ``k_first .. k_last`` in all), output column X columns ``cols[X]``, ``cols[X] + 1`` with
    weight ``tx[X]``: (k_first, k_last, cols (w,) int64, tx (w,) float32)."""
    cols = np.empty(w, np.int64)
    tx = np.empty(w, np.float32)
    for x in range(w):
        cols[x] = (x + start) // f
        tx[x] = _upsampling_weight(x, f, start)
    return start // f, (h - 1 + start) // f + 1, cols, tx


@njit(inline="always")
def _upsampling_weight(i, f, start):
    """The weight of the second sample for output pixel ``i`` (see :func:`_upsampling`)."""
    delta = np.float32(math.ceil((f - 1) / 2.0) - (f - 1) / 2.0)
    return (np.float32((i + start) % f) + delta) / np.float32(f)


@njit(parallel=True, cache=True, nogil=True)
def background_reduced_blur(img, alpha, f, pad, taps, out, sums):
    """A bokeh's background before it is brought to full size, in one pass over the frame: the
    background weights ``1 - alpha`` and the weighted picture reduced to f x f block means (as
    :func:`weighted_reduce`, ``pad`` blocks of padding) and blurred with ``taps`` (as
    :func:`separable_blur_valid`) into ``out`` (n, m, 4) float32 (blur(x w), blur(w)); ``sums``
    (bands, 4) float64 gets each band's sums of ``out`` (for the fallback colour). The output rows
    are split into ``bands`` bands, one task each, that reduce the rows they read themselves (2r
    rows twice), so the reduced picture is never written out whole."""
    w = alpha.shape[1]
    k = taps.shape[0]
    r = k // 2
    n_out, m_out = out.shape[0], out.shape[1]
    m = m_out + 2 * r
    nb = sums.shape[0]
    rows = m * 4
    width = m_out * 4
    for b in prange(nb):
        i0 = b * n_out // nb
        i1 = (b + 1) * n_out // nb
        part = np.zeros(4, np.float64)
        if i1 > i0:
            nr = i1 - i0 + 2 * r
            red = np.empty((nr, rows), np.float32)
            acc = np.empty(4 * w, np.float32)
            for li in range(nr):
                _reduced_row(img, alpha, True, i0 + li, f, pad, acc, red[li])
            tmp = np.empty(rows, np.float32)
            for li in range(i1 - i0):
                for q in range(rows):
                    tmp[q] = _ZERO
                for t in range(k):
                    wt = taps[t]
                    src = red[li + t]
                    for q in range(rows):
                        tmp[q] += wt * src[q]
                dst = out[i0 + li].reshape(width)
                for q in range(width):
                    dst[q] = _ZERO
                for t in range(k):
                    wt = taps[t]
                    off = 4 * t
                    for q in range(width):
                        dst[q] += wt * tmp[q + off]
                for j in range(m_out):
                    part[0] += dst[4 * j]
                    part[1] += dst[4 * j + 1]
                    part[2] += dst[4 * j + 2]
                    part[3] += dst[4 * j + 3]
        for c in range(4):
            sums[b, c] = part[c]


@njit(parallel=True, cache=True, nogil=True)
def blend_upsampled_background(fg, low, fb, eps, f, start, alpha, flip, out):
    """A blend over an upsampled background (as :func:`blend`) still to be normalised: ``low`` (n, m, 4) =
    (blur(x w), blur(w)) as :func:`background_reduced_blur` makes it, its colour
    ``(num + fb) / (den + eps)`` (``fb`` = eps times the fallback colour, (3,)) computed on the
    fly, as :func:`background_colour` does."""
    h, w = alpha.shape
    n = 3 * w
    k_first, k_last, cols, tx = _upsampling(h, w, f, start)
    hz = np.empty((k_last - k_first + 1, n), np.float32)
    m_low = low.shape[1]
    for kk in prange(k_last - k_first + 1):
        src = low[k_first + kk]
        colour = np.empty((m_low, 3), np.float32)  # the row's samples normalised once
        for j in range(m_low):
            den = src[j, 3] + eps
            for c in range(3):
                colour[j, c] = (src[j, c] + fb[c]) / den
        for x in range(w):
            mm = cols[x]
            t = tx[x]
            for c in range(3):
                a = colour[mm, c]
                hz[kk, 3 * x + c] = a + (colour[mm + 1, c] - a) * t
    for y in prange(h):
        kk = (y + start) // f - k_first
        ty = _upsampling_weight(y, f, start)
        a3 = np.empty(n, np.float32)
        _spread3(alpha[y], a3)
        fr = fg[y].reshape(n)
        o = out[y].reshape(n)
        dst = np.empty(n, np.uint8) if flip else o
        top = hz[kk]
        bot = hz[kk + 1]
        for q in range(n):
            back = top[q] + (bot[q] - top[q]) * ty
            dst[q] = _byte(_lerp(back, np.float32(fr[q]), a3[q]))
        if flip:
            _mirror(dst, o, w, 3)



@njit(inline="always")
def _reduced_row(img, weight, complement, i, f, pad, acc, dst):
    """Row ``i`` of :func:`weighted_reduce` (the weights ``1 - weight`` where ``complement``) into
    ``dst``, flat (m * 4,); ``acc`` (4 W,) float32 scratch: the block row's f rows summed per
    column, then the blocks along it."""
    h, w = weight.shape
    scale = np.float32(1.0 / (f * f))
    for q in range(4 * w):
        acc[q] = _ZERO
    for dy in range(f):
        y = min(max((i - pad) * f + dy, 0), h - 1)
        im = img[y].reshape(3 * w)
        wr = weight[y]
        for x in range(w):
            wv = _ONE - wr[x] if complement else wr[x]
            acc[4 * x] += np.float32(im[3 * x]) * wv
            acc[4 * x + 1] += np.float32(im[3 * x + 1]) * wv
            acc[4 * x + 2] += np.float32(im[3 * x + 2]) * wv
            acc[4 * x + 3] += wv
    for j in range(dst.shape[0] // 4):
        s0, s1, s2, s3 = _ZERO, _ZERO, _ZERO, _ZERO
        for dx in range(f):
            x = min(max((j - pad) * f + dx, 0), w - 1)
            s0 += acc[4 * x]
            s1 += acc[4 * x + 1]
            s2 += acc[4 * x + 2]
            s3 += acc[4 * x + 3]
        dst[4 * j] = s0 * scale
        dst[4 * j + 1] = s1 * scale
        dst[4 * j + 2] = s2 * scale
        dst[4 * j + 3] = s3 * scale


@njit(parallel=True, cache=True, nogil=True)
def weighted_reduce(img, weight, f, pad, out):
    """Means over f x f blocks of (img * weight, weight) with the picture's edge pixels
    replicated outward -- ``pad`` blocks of padding on every side and the partial last blocks
    -- as ``bgkit.ops.filters._reduce`` makes them: ``img`` (H, W, 3) uint8, ``weight`` (H, W)
    float32, ``out`` (ceil(H / f) + 2 pad, ceil(W / f) + 2 pad, 4) float32."""
    w = weight.shape[1]
    n, m = out.shape[0], out.shape[1]
    for i in prange(n):
        _reduced_row(img, weight, False, i, f, pad, np.empty(4 * w, np.float32), out[i].reshape(m * 4))


@njit(parallel=True, cache=True, nogil=True)
def separable_blur_valid(x, taps, out):
    """The valid part of a separable convolution of ``x`` (n, m, C) with the 1-D kernel ``taps``
    (2r + 1) down the columns and along the rows: ``out`` (n - 2r, m - 2r, C)."""
    n, m, c_n = x.shape
    k = taps.shape[0]
    r = k // 2
    rows = m * c_n
    flat = x.reshape(n, rows)
    width = (m - 2 * r) * c_n
    res = out.reshape(n - 2 * r, width)
    for i in prange(n - 2 * r):
        tmp = np.zeros(rows, np.float32)
        for t in range(k):  # down the columns: whole rows at a time (contiguous, vectorised)
            wt = taps[t]
            src = flat[i + t]
            for q in range(rows):
                tmp[q] += wt * src[q]
        dst = res[i]
        for q in range(width):
            dst[q] = _ZERO
        for t in range(k):  # along the rows: the same, shifted by whole pixels
            wt = taps[t]
            off = t * c_n
            for q in range(width):
                dst[q] += wt * tmp[q + off]


@njit(parallel=True, cache=True, nogil=True)
def background_colour(low, eps, out):
    """A masked blur's normalisation: ``low`` (n, m, 4) holds blur(x w) (3 channels) and blur(w);
    ``out`` (n, m, 3) = ``(num + eps * fallback) / (den + eps)`` with ``fallback`` the mean colour
    of the weighted picture, ``sum(num) / max(sum(den), eps)`` (sums in float64)."""
    n, m, _ = low.shape
    part = np.zeros((n, 4), np.float64)
    for i in prange(n):
        row = low[i].reshape(m * 4)
        s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
        for j in range(m):
            s0 += row[4 * j]
            s1 += row[4 * j + 1]
            s2 += row[4 * j + 2]
            s3 += row[4 * j + 3]
        part[i, 0], part[i, 1], part[i, 2], part[i, 3] = s0, s1, s2, s3
    tot = np.zeros(4, np.float64)
    for i in range(n):
        for c in range(4):
            tot[c] += part[i, c]
    d = max(tot[3], np.float64(eps))
    e = np.float32(eps)
    f0, f1, f2 = e * np.float32(tot[0] / d), e * np.float32(tot[1] / d), e * np.float32(tot[2] / d)
    for i in prange(n):
        row = low[i].reshape(m * 4)
        o = out[i].reshape(m * 3)
        for j in range(m):
            den = row[4 * j + 3] + e
            o[3 * j] = (row[4 * j] + f0) / den
            o[3 * j + 1] = (row[4 * j + 1] + f1) / den
            o[3 * j + 2] = (row[4 * j + 2] + f2) / den


@njit(parallel=True, cache=True, nogil=True)
def two_colour_mask(image, on, colours, weights, flip, out):
    """A binary mask drawn in two colours: ``round(lerp(image, colour, weight))`` with the
    colour and weight of the pixel's side (``colours`` (2, 3) float: person, background;
    ``weights`` (2,) float, the colours' alphas times the opacity)."""
    h, w = on.shape
    n = 3 * w
    cf = np.empty(n, np.float32)
    cb = np.empty(n, np.float32)
    for x in range(w):
        for k in range(3):
            cf[3 * x + k] = colours[0, k]
            cb[3 * x + k] = colours[1, k]
    wf, wb = weights[0], weights[1]
    for y in prange(h):
        o3 = np.empty(n, np.bool_)
        _spread3(on[y], o3)
        im = image[y].reshape(n)
        o = out[y].reshape(n)
        dst = np.empty(n, np.uint8) if flip else o
        for q in range(n):
            s = o3[q]
            a = wf if s else wb
            col = cf[q] if s else cb[q]
            v = im[q]
            lerped = _byte(_lerp(np.float32(v), col, a))
            dst[q] = v if a == _ZERO else lerped
        if flip:
            _mirror(dst, o, w, 3)


@njit(cache=True, nogil=True)
def _mask_colour_rows(colours, alphas, w):
    """The two colours of a blurred mask laid out as RGB rows (3 W,): premultiplied by their
    alphas (person, background), then as they are (person, background)."""
    n = 3 * w
    pf = np.empty(n, np.float32)
    pb = np.empty(n, np.float32)
    cf = np.empty(n, np.float32)
    cb = np.empty(n, np.float32)
    for x in range(w):
        for k in range(3):
            pf[3 * x + k] = colours[0, k] * alphas[0]
            pb[3 * x + k] = colours[1, k] * alphas[1]
            cf[3 * x + k] = colours[0, k]
            cb[3 * x + k] = colours[1, k]
    return pf, pb, cf, cb


@njit(inline="always")
def _blurred_mask_row(im, on_row, m_row, pf, pb, cf, cb, af, ab, opacity, eps, flip, o):
    """One row of :func:`blurred_two_colour_mask`: ``im``, ``o`` the picture's and the output's
    flat RGB rows (3 W,), ``on_row``, ``m_row`` the mask and its coverage (W,)."""
    n = im.shape[0]
    w = n // 3
    o3 = np.empty(n, np.bool_)
    m3 = np.empty(n, np.float32)
    _spread3(on_row, o3)
    _spread3(m_row, m3)
    dst = np.empty(n, np.uint8) if flip else o
    for q in range(n):
        mm = m3[q]
        cov = mm * (af - ab) + ab
        den = cov + eps
        a = cov * opacity
        own = cf[q] if o3[q] else cb[q]
        colour = (pb[q] + mm * (pf[q] - pb[q]) + eps * own) / den
        dst[q] = _byte(_lerp(np.float32(im[q]), colour, a))
    if flip:
        _mirror(dst, o, w, 3)


@njit(parallel=True, cache=True, nogil=True)
def blurred_two_colour_mask(image, on, m, colours, alphas, opacity, eps, flip, out):
    """A two-colour mask blurred by its coverage ``m`` (blur of the person): colour
    ``(c_f a_f m + c_b a_b (1 - m) + eps c) / (a_f m + a_b (1 - m) + eps)`` (``c`` the pixel's own
    colour), alpha ``(a_f m + a_b (1 - m)) * opacity``, drawn over the picture."""
    h, w = on.shape
    pf, pb, cf, cb = _mask_colour_rows(colours, alphas, w)
    af, ab = alphas[0], alphas[1]
    for y in prange(h):
        _blurred_mask_row(image[y].reshape(3 * w), on[y], m[y], pf, pb, cf, cb, af, ab, opacity, eps, flip,
                          out[y].reshape(3 * w))


@njit(parallel=True, cache=True, nogil=True)
def mask_block_means(on, f, pad, out):
    """Means over f x f blocks of a bool mask ``on`` (H, W) as 0/1, the edges replicated as in
    :func:`weighted_reduce`: ``out`` (ceil(H / f) + 2 pad, ceil(W / f) + 2 pad) float32."""
    h, w = on.shape
    n, m = out.shape
    scale = np.float32(1.0 / (f * f))
    for i in prange(n):
        acc = np.zeros(w, np.float32)
        for dy in range(f):
            src = on[min(max((i - pad) * f + dy, 0), h - 1)]
            for x in range(w):
                acc[x] += np.float32(src[x])
        for j in range(m):
            s = _ZERO
            for dx in range(f):
                s += acc[min(max((j - pad) * f + dx, 0), w - 1)]
            out[i, j] = s * scale


@njit(parallel=True, cache=True, nogil=True)
def blurred_two_colour_mask_upsampled(image, on, low, f, start, colours, alphas, opacity, eps, flip, out):
    """:func:`blurred_two_colour_mask` with the coverage given at 1/f resolution, ``low`` (n, m),
    brought to full size on the fly as ``bgkit.ops.filters._upsample`` does (torch.lerp along the
    rows, then down the columns)."""
    h, w = on.shape
    n = 3 * w
    k_first, k_last, cols, tx = _upsampling(h, w, f, start)
    hz = np.empty((k_last - k_first + 1, w), np.float32)  # the low rows read, interpolated along
    for kk in prange(k_last - k_first + 1):
        src = low[k_first + kk]
        for x in range(w):
            hz[kk, x] = _lerp(src[cols[x]], src[cols[x] + 1], tx[x])
    pf, pb, cf, cb = _mask_colour_rows(colours, alphas, w)
    af, ab = alphas[0], alphas[1]
    for y in prange(h):
        kk = (y + start) // f - k_first
        ty = _upsampling_weight(y, f, start)
        top = hz[kk]
        bot = hz[kk + 1]
        mrow = np.empty(w, np.float32)
        for x in range(w):
            mrow[x] = _lerp(top[x], bot[x], ty)
        _blurred_mask_row(image[y].reshape(n), on[y], mrow, pf, pb, cf, cb, af, ab, opacity, eps, flip,
                          out[y].reshape(n))


@njit(parallel=True, cache=True, nogil=True)
def cutout(fg, fg_scale, alpha, flip, out):
    """RGBA: ``round(fg * fg_scale)`` (or the picture as it is, for uint8 ``fg`` and scale 1)
    with alpha ``round(255 * alpha)``."""
    h, w = alpha.shape
    for y in prange(h):
        f = fg[y].reshape(3 * w)
        o = out[y].reshape(4 * w)
        a = alpha[y]
        dst = np.empty(4 * w, np.uint8) if flip else o
        for x in range(w):
            dst[4 * x] = _byte(np.float32(f[3 * x]) * fg_scale)
            dst[4 * x + 1] = _byte(np.float32(f[3 * x + 1]) * fg_scale)
            dst[4 * x + 2] = _byte(np.float32(f[3 * x + 2]) * fg_scale)
            dst[4 * x + 3] = _byte(a[x] * _255)
        if flip:
            _mirror(dst, o, w, 4)