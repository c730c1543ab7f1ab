"""Fast Gaussian blurs for images held as numpy arrays (the CSS ``blur(Npx)`` filter).

The public functions take and return numpy arrays; their torch cores :func:`blur_hwc` and
:func:`masked_blur_hwc` take (H, W, C) float32 tensors on any device (the pipeline uses them
directly, so a frame on a GPU is blurred there). No autograd, no global settings touched.

Images
    ``(H, W)`` or ``(H, W, C)`` arrays (any number of channels, e.g. RGB or RGBA; the
    channel order is kept), dtype ``uint8`` (0..255) or floating point (any range).
    The result has the input's shape and dtype; ``uint8`` results are rounded to nearest.

Sigma
    ``sigma`` is the standard deviation of the Gaussian in pixels, which is what the CSS /
    canvas filter ``blur(Npx)`` means by ``N``. ``sigma == 0`` returns an unchanged copy.

Edges
    Pixels outside the image are taken to equal the nearest edge pixel ("replicate" /
    clamp-to-edge). A browser's canvas filter treats the outside as transparent black
    instead, which fades and darkens a blurred image towards its borders; replicating
    keeps full-frame backgrounds and masks uniform up to the edge, which is what a
    background-blur effect wants.

Kernel
    The sampled Gaussian ``exp(-x**2 / (2 sigma**2))`` on ``|x| <= ceil(3 sigma)``,
    normalised to sum 1, applied separably: down the columns, then along the rows.
    Each pass is ``2r + 1`` shifted multiply-adds of whole rows of the (H, W*C) image
    (vectorised passes over contiguous memory); the row pass works on the transposed image.

Reduced resolution
    For ``sigma > 3`` the image is first averaged over f x f blocks, with
    ``f = floor(sigma / 2)`` (edge pixels replicated for padding and partial blocks),
    blurred there with the sigma that makes the total spread match (about 2 reduced
    pixels), and brought back with bilinear interpolation. The result differs from the
    full-resolution blur by a fraction of a grey level on average (the tests check it on
    a photo), at a cost that no longer grows with sigma: a 640x480 RGB frame blurs in
    about 1 to 4 ms for any sigma in 0..20 on a 2-core CPU.
"""

from __future__ import annotations

import functools
import math
from numbers import Real

import numpy as np
import torch

from ..core.checks import check_number
from . import kernels

__all__ = ["background_blur_hwc", "background_blur_low", "blur_hwc", "bokeh_background_low", "effect_reduction_factor",
           "gaussian_blur", "kernel_radius", "mask_blur_low", "masked_blur", "masked_blur_hwc", "reduction_factor"]

#: Above this sigma (pixels) the blur is computed at a reduced resolution.
FULL_RESOLUTION_MAX_SIGMA = 3.0

#: Default ``eps`` of :func:`masked_blur`.
MASKED_BLUR_EPS = 1e-3


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------


def _check_sigma(sigma: object, name: str = "sigma") -> float:
    return check_number(sigma, name, 0.0, unit="px")


def _check_array(image: object, name: str = "image") -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{name} must be uint8 or floating point; got dtype {image.dtype}")
    if image.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (H, W) or (H, W, C); got {image.shape}")
    if image.size == 0:
        raise ValueError(f"{name} is empty (shape {image.shape})")
    return image


def kernel_radius(sigma: float) -> int:
    """Return the radius ``ceil(3 * sigma)`` in pixels of the Gaussian kernel for ``sigma``."""
    return int(math.ceil(3.0 * float(sigma) - 1e-9))


def reduction_factor(sigma: float) -> int:
    """Return the integer downsampling factor used to blur with ``sigma`` (1 = full resolution)."""
    sigma = float(sigma)
    if sigma <= FULL_RESOLUTION_MAX_SIGMA:
        return 1
    return max(1, int(sigma // 2.0))


@functools.lru_cache(maxsize=64)
def _kernel(sigma: float) -> tuple[torch.Tensor, int]:
    """The normalised 1-D Gaussian of ``sigma`` (2r + 1 float32 taps, shared: read it, don't write
    it) and its radius r; made once per sigma (a frame asks for the same ones every time)."""
    r = kernel_radius(sigma)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    k /= k.sum()
    return torch.from_numpy(k.astype(np.float32)), r


# ---------------------------------------------------------------------------
# core: images are (H, W, C) float32 torch tensors ("HWC", contiguous), on any
# device; numpy arrays are converted only at the public functions.
# ---------------------------------------------------------------------------


def _nchw(x: torch.Tensor) -> torch.Tensor:
    """(H, W, C) -> (1, C, H, W) view (channels-last when x is contiguous)."""
    return x.permute(2, 0, 1).unsqueeze(0)


def _hwc(t: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) -> (H, W, C) view."""
    return t[0].permute(1, 2, 0)



def _conv_rows(a: torch.Tensor, k: torch.Tensor, r: int, pad: bool) -> torch.Tensor:
    """Convolve every column of the 2-D tensor ``a`` (n, m) with the 1-D kernel ``k``.

    ``pad``: replicate ``r`` rows at both ends first (same size out), else a valid
    convolution (n - 2r rows out). The kernel is applied as ``2r + 1`` shifted
    multiply-adds of whole rows: each is one vectorised pass over contiguous memory
    (measured several times faster on a CPU than a convolution of the same data).
    """
    if pad and r:
        a = torch.cat([a[:1].expand(r, -1), a, a[-1:].expand(r, -1)])
    n = a.shape[0] - 2 * r
    taps = k.tolist()
    y = a[0:n] * taps[0]
    for i in range(1, 2 * r + 1):
        y.add_(a[i:i + n], alpha=taps[i])
    return y


def _sep_blur(x: torch.Tensor, k: torch.Tensor, r: int, pad: bool) -> torch.Tensor:
    """Separable blur of (H, W, C) float32 with kernel ``k`` (radius ``r``); see ``_conv_rows``.

    Rows first on the (H, W*C) matrix, then columns as rows of the transposed image.
    """
    h, w, c = x.shape
    v = _conv_rows(x.reshape(h, w * c), k, r, pad)
    h2 = v.shape[0]
    vt = v.reshape(h2, w, c).transpose(0, 1).contiguous()  # (W, H2, C)
    u = _conv_rows(vt.view(w, h2 * c), k, r, pad)
    w2 = u.shape[0]
    return u.reshape(w2, h2, c).transpose(0, 1).contiguous()


def _blur_full(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k, r = _kernel(sigma)
    if r == 0:
        return x.clone()
    return _sep_blur(x, k.to(x.device), r, pad=True)


def _block_sums_1d(v: torch.Tensor, f: int) -> torch.Tensor:
    """Sums of ``f`` consecutive entries of ``v`` (n, C) along axis 0, the last block
    completed by repeating ``v[-1]`` (replicate edge); shape (ceil(n / f), C)."""
    n = v.shape[0]
    if n % f:
        v = torch.cat([v, v[-1:].expand(f - n % f, -1)])
    return v.reshape(-1, f, v.shape[1]).sum(dim=1)


def _block_means(x: torch.Tensor, f: int) -> torch.Tensor:
    """Means of the f x f blocks of (H, W, C) ``x`` (H, W multiples of f): f - 1 adds of whole
    rows, then f - 1 strided adds along them (a few times faster on a CPU than ``avg_pool2d``)."""
    h, w, c = x.shape
    if not x.is_contiguous():
        x = x.contiguous()
    rows = x.view(h // f, f, w * c)
    s = rows[:, 0].clone()
    for i in range(1, f):
        s += rows[:, i]
    s = s.view(h // f, w // f, f, c)
    out = s[:, :, 0].clone()
    for j in range(1, f):
        out += s[:, :, j]
    return out.mul_(1.0 / (f * f))


def _reduce(x: torch.Tensor, f: int, p: int) -> torch.Tensor:
    """Average f x f blocks of the edge-replicated image, with ``p`` blocks of padding
    on every side; returns (ceil(H/f) + 2p, ceil(W/f) + 2p, C) float32.

    Equal to ``avg_pool(replicate_pad(x))`` with the padding and the partial last blocks
    made by repeating edge pixels, but only the interior goes through a full-size pass.
    """
    h, w, c = x.shape
    hf, wf = h // f, w // f
    hc, wc = -(-h // f), -(-w // f)
    out = x.new_empty((hc + 2 * p, wc + 2 * p, c))
    if hf and wf:
        out[p:p + hf, p:p + wf] = _block_means(x[: hf * f, : wf * f], f)
    ff = float(f)
    if h % f:  # last, partial row of blocks (also fills the corner block)
        rows = x[hf * f:].sum(dim=0) + (f - h % f) * x[-1]
        out[p + hf, p:p + wc] = _block_sums_1d(rows, f) / (ff * ff)
    if w % f and hf:  # last, partial column of blocks
        cols = x[: hf * f, wf * f:].sum(dim=1) + (f - w % f) * x[: hf * f, -1]
        out[p:p + hf, p + wf] = cols.reshape(hf, f, c).sum(dim=1) / (ff * ff)
    if p:
        out[:p, p:p + wc] = _block_sums_1d(x[0], f) / ff
        out[p + hc:, p:p + wc] = _block_sums_1d(x[-1], f) / ff
        out[p:p + hc, :p] = (_block_sums_1d(x[:, 0], f) / ff)[:, None]
        out[p:p + hc, p + wc:] = (_block_sums_1d(x[:, -1], f) / ff)[:, None]
        out[:p, :p] = x[0, 0]
        out[:p, p + wc:] = x[0, -1]
        out[p + hc:, :p] = x[-1, 0]
        out[p + hc:, p + wc:] = x[-1, -1]
    return out


def _upsample(low: torch.Tensor, f: int, start: int, h: int, w: int) -> torch.Tensor:
    """Bilinear upsampling by ``f`` between block centres.

    ``low`` is (n, m, C) with sample ``k`` at (upsampled) position ``k f`` minus a phase;
    returns output pixels ``start .. start + h`` (rows) and ``start .. start + w``
    (columns) of the linear interpolation, each output pixel lying strictly between
    two samples, i.e. ``interpolate(scale_factor=f, mode='bilinear', align_corners=False)``
    without its edge clamping. Columns first, on the small array; the one full-size
    pass is then along rows, whose inner dimension (W * C) is long and contiguous.
    """
    n, m, c = low.shape
    delta = math.ceil((f - 1) / 2.0) - (f - 1) / 2.0
    phases = [(j + delta) / f for j in range(f)]
    hz = low.new_empty((n, m - 1, f, c))
    for j, t in enumerate(phases):  # one lerp with a scalar weight per phase: vectorised passes
        torch.lerp(low[:, :-1], low[:, 1:], t, out=hz[:, :, j])
    hz = hz.view(n, (m - 1) * f, c)[:, start:start + w]
    out = low.new_empty((n - 1, f, w, c))
    for j, t in enumerate(phases):
        torch.lerp(hz[:-1], hz[1:], t, out=out[:, j])
    return out.view((n - 1) * f, w, c)[start:start + h]


def _reduced_kernel(sigma: float, f: int) -> tuple[torch.Tensor, int]:
    """The reduced-resolution Gaussian (taps, radius) of a blur of ``sigma`` at reduction ``f``.

    Variances (in full-resolution pixels) add up: the f x f box average contributes
    (f^2 - 1) / 12, bilinear upsampling by f about f^2 / 6 (a triangle of half-width f),
    the reduced blur f^2 sigma_r^2. Pick sigma_r so the total is sigma^2."""
    var_r = (sigma * sigma - (f * f - 1) / 12.0 - f * f / 6.0) / (f * f)
    return _kernel(math.sqrt(max(var_r, 0.25)))


def mask_blur_low(on: torch.Tensor, sigma: float) -> tuple[torch.Tensor, int, int] | None:
    """``blur_hwc(on.float()[..., None], sigma)`` of a bool mask (H, W) before it is brought to
    full size: (the blurred mask at 1/f resolution (n, m) float32, f, the phase to upsample it
    with, as ``_upsample`` takes them), made by the fused CPU kernels without a full-size float
    copy; None where the blur runs at full resolution or the kernels don't run."""
    f = reduction_factor(sigma)
    if f == 1 or on.dtype != torch.bool or on.dim() != 2:
        return None
    k, r = _reduced_kernel(sigma, f)
    low = kernels.mask_block_means(on, f, r + 1)
    blurred = None if low is None else kernels.separable_blur_valid(low, k)
    if blurred is None:
        return None
    return blurred[:, :, 0], f, f - math.ceil((f - 1) / 2.0)


def _reduced_blur_low(x: torch.Tensor, sigma: float, f: int, weight: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, int]:
    """The reduced-resolution blur of (H, W, C) ``x`` before upsampling, and the phase
    ``start`` to upsample it with (see :func:`_upsample`). With ``weight`` (H, W), ``x`` is a
    uint8 picture and what is blurred is (x * weight, weight), (H, W, C + 1), as a masked blur
    needs: the fused CPU kernels then make the reduced copy without a full-size product."""
    k, r = _reduced_kernel(sigma, f)
    # r blocks of padding feed the reduced kernel; one more lets the bilinear
    # upsampling interpolate (never clamp) at the frame's edges.
    low = None if weight is None else kernels.weighted_reduce(x, weight, f, r + 1)
    if low is None:
        low = _reduce(x if weight is None else _weighted(x, weight), f, r + 1)
    blurred = kernels.separable_blur_valid(low, k)
    # valid: blocks -1 .. ceil(H/f) (rows), same for columns
    low = blurred if blurred is not None else _sep_blur(low, k.to(low.device), r, pad=False)
    # low[0] is centred on image pixel -f + (f - 1) / 2.
    return low, f - math.ceil((f - 1) / 2.0)


def _blur_reduced(x: torch.Tensor, sigma: float, f: int) -> torch.Tensor:
    h, w, _ = x.shape
    low, start = _reduced_blur_low(x, sigma, f)
    return _upsample(low, f, start, h, w)


def blur_hwc(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of an (H, W, C) float32 tensor (any device; sigma in pixels, >= 0).

    Returns a new tensor (possibly a strided view of one). The torch core of
    :func:`gaussian_blur`, for callers that already hold tensors (the pipeline).
    """
    if sigma <= 0:
        return x.clone()
    f = reduction_factor(sigma)
    if f == 1:
        return _blur_full(x, sigma)
    return _blur_reduced(x, sigma, f)


def _weighted(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(H, W, C + 1) float32: ``x * w`` (``x`` (H, W, C), uint8 or float) with the weights ``w``
    (H, W) as the last channel -- what a normalised convolution blurs."""
    h, wd, c = x.shape
    buf = w.new_empty((h, wd, c + 1), dtype=torch.float32)
    torch.mul(x, w.unsqueeze(-1), out=buf[:, :, :c])
    buf[:, :, c] = w
    return buf


def masked_blur_hwc(
    x: torch.Tensor, w: torch.Tensor, sigma: float, eps: float = MASKED_BLUR_EPS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised convolution of (H, W, C) float32 ``x`` with (H, W) float32 weights ``w``.

    Returns ``((blur(x w) + eps x) / (blur(w) + eps), blur(w))``, shapes (H, W, C) and (H, W).
    The torch core of :func:`masked_blur`.
    """
    c = x.shape[2]
    y = blur_hwc(_weighted(x, w), sigma)
    den = y[:, :, c:]
    out = torch.add(y[:, :, :c], x, alpha=eps).div_(den + eps)
    return out, den[:, :, 0]


#: Effects (a bokeh's background) blur at a resolution reduced by ``floor(sigma / this)``: a
#: coarser reduction than :func:`reduction_factor`'s, still about 1.5 reduced pixels of sigma.
EFFECT_SIGMA_PER_FACTOR = 1.5


def effect_reduction_factor(sigma: float) -> int:
    """The reduction factor of an effect's blur (:func:`background_blur_hwc`): 1 up to
    sigma 3 excluded, then ``floor(sigma / 1.5)`` (sigma 3 blurs at half resolution)."""
    return max(1, int(float(sigma) // EFFECT_SIGMA_PER_FACTOR)) if sigma >= 2 * EFFECT_SIGMA_PER_FACTOR else 1


def background_blur_hwc(
    x: torch.Tensor, w: torch.Tensor, sigma: float, eps: float = MASKED_BLUR_EPS, weights_out: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A bokeh's blurred background: the normalised convolution of :func:`masked_blur_hwc`,
    ``blur(x w) / blur(w)``, at the effect's reduced resolution (:func:`effect_reduction_factor`)
    and normalised there, so only the result is brought back to full size.

    ``x`` (H, W, C) float32, ``w`` (H, W) float32 weights (the background: 1 - alpha). Where no
    weight is within reach the result falls back to the background's mean colour (it lies under
    the person there). Returns ((H, W, C), the blurred weights (H, W) if ``weights_out`` else
    None). With a reduction factor of 1 it is :func:`masked_blur_hwc`.
    """
    f = effect_reduction_factor(sigma)
    if f == 1:
        out, den = masked_blur_hwc(x, w, sigma, eps)
        return out, den if weights_out else None
    h, wd, c = x.shape
    colour, den, start = _background_low(x, w, sigma, f, eps)
    if weights_out:
        up = _upsample(torch.cat([colour, den], dim=-1), f, start, h, wd)
        return up[:, :, :c], up[:, :, c]
    return _upsample(colour, f, start, h, wd), None


def background_blur_low(x: torch.Tensor, w: torch.Tensor, sigma: float, eps: float = MASKED_BLUR_EPS
                        ) -> tuple[torch.Tensor, int, int] | None:
    """:func:`background_blur_hwc`'s result before it is brought to full size: (colour at 1/f
    resolution, f, the phase to upsample it with, as ``_upsample`` takes them), or None where
    the blur runs at full resolution (f = 1)."""
    f = effect_reduction_factor(sigma)
    if f == 1:
        return None
    colour, _, start = _background_low(x, w, sigma, f, eps)
    return colour, f, start


def bokeh_background_low(image: torch.Tensor, alpha: torch.Tensor, sigma: float
                         ) -> tuple[torch.Tensor, np.ndarray, int, int] | None:
    """:func:`background_blur_low` of a uint8 picture (H, W, 3) behind the person ``alpha`` (H, W)
    (weights ``1 - alpha``) by the fused CPU kernels, still to be normalised: ((n, m, 4) float32 =
    (blur(x w), blur(w)), the fallback colour (3,) (the background's mean colour), f, the phase to
    upsample with), for :func:`bgkit.ops.kernels.blend_upsampled_background`; None where the blur
    runs at full resolution or the kernels don't run."""
    f = effect_reduction_factor(sigma)
    if f == 1:
        return None
    k, r = _reduced_kernel(sigma, f)
    low = kernels.background_reduced_blur(image, alpha, f, r + 1, k)
    if low is None:
        return None
    blurred, sums = low
    fallback = (sums[:3] / max(float(sums[3]), MASKED_BLUR_EPS)).astype(np.float32)
    return blurred, fallback, f, f - math.ceil((f - 1) / 2.0)


def _background_low(x: torch.Tensor, w: torch.Tensor, sigma: float, f: int, eps: float
                    ) -> tuple[torch.Tensor, torch.Tensor, int]:
    c = x.shape[2]
    low, start = _reduced_blur_low(x, sigma, f, weight=w)
    num, den = low[:, :, :c], low[:, :, c:]
    if c == 3:
        colour = kernels.background_colour(low, eps)
        if colour is not None:
            return colour, den, start
    fallback = num.sum(dim=(0, 1)) / den.sum().clamp(min=eps)  # the background's mean colour
    colour = (num + eps * fallback) / (den + eps)
    return colour.contiguous(), den, start


def _hwc_f32(arr: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) numpy -> (H, W, C) float32 tensor (sharing memory where it can)."""
    a = arr[:, :, None] if arr.ndim == 2 else arr
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    elif any(s < 0 for s in a.strides) or not a.flags.writeable:
        a = np.array(a)  # torch.from_numpy refuses negative strides and warns on read-only
    return torch.from_numpy(a)


def _from_hwc(y: torch.Tensor, dtype: np.dtype, ndim: int) -> np.ndarray:
    if dtype == np.uint8:
        out = y.clamp(0.0, 255.0).add_(0.5).to(torch.uint8).numpy()
    else:
        out = np.ascontiguousarray(y.numpy(), dtype=dtype)
    return np.ascontiguousarray(out[:, :, 0]) if ndim == 2 else out


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Blur an image with a Gaussian of standard deviation ``sigma`` pixels (CSS ``blur``).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
        uint8 (0..255) or floating-point image; channels (e.g. RGB order) are blurred
        independently and kept in order.
    sigma : float
        Standard deviation in pixels, >= 0 (``blur(Npx)`` has ``sigma = N``).
        ``0`` returns an unchanged copy.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image``; uint8 results are rounded to nearest.

    Notes
    -----
    Separable sampled Gaussian of radius ``ceil(3 sigma)``; outside the image the edge
    pixels are replicated. For ``sigma > 3`` the blur runs at a resolution reduced by
    ``floor(sigma / 2)`` and is upsampled bilinearly (see the module docstring).

    Raises
    ------
    TypeError
        ``image`` is not a uint8/float numpy array, or ``sigma`` is not a number.
    ValueError
        Wrong shape, empty image, or negative / non-finite ``sigma``.
    """
    arr = _check_array(image)
    s = _check_sigma(sigma)
    if s == 0:
        return arr.copy()
    with torch.inference_mode():
        return _from_hwc(blur_hwc(_hwc_f32(arr), s), arr.dtype, arr.ndim)


def masked_blur(
    image: np.ndarray, weight: np.ndarray, sigma: float, eps: float = MASKED_BLUR_EPS
) -> np.ndarray:
    """Blur only the pixels that have weight: ``(blur(image * w) + eps * image) / (blur(w) + eps)``.

    This is normalised convolution. With ``w = 1 - person`` it blurs the background of a
    frame as if the person were not there: person pixels carry no weight, so none of
    their colour bleeds into the blurred background (a halo-free bokeh). Where no
    weighted pixel lies within reach of the kernel the result falls back smoothly to the
    pixel's own value (the ``eps * image`` term); with ``sigma == 0`` it is ``image``.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
        uint8 (0..255) or floating-point image.
    weight : ndarray, shape (H, W)
        Non-negative weights, usually in 0..1 (float, bool or integer dtype).
    sigma : float
        Standard deviation in pixels, >= 0 (same blur as :func:`gaussian_blur`).
    eps : float, optional
        Small positive regulariser for the division.

    Returns
    -------
    ndarray
        Same shape and dtype as ``image`` (uint8 rounded to nearest).

    Raises
    ------
    TypeError, ValueError
        As :func:`gaussian_blur`; also when ``weight`` does not match ``image`` in
        height and width, has negative or non-finite values, or ``eps <= 0``.
    """
    arr = _check_array(image)
    s = _check_sigma(sigma)
    wt = np.asarray(weight)
    if wt.ndim != 2 or wt.shape != arr.shape[:2]:
        raise ValueError(
            f"weight must have shape (H, W) = {arr.shape[:2]} to match the image; got {wt.shape}"
        )
    if wt.dtype == bool or np.issubdtype(wt.dtype, np.integer):
        wt = wt.astype(np.float32)
    elif not np.issubdtype(wt.dtype, np.floating):
        raise TypeError(f"weight must be a float, bool or integer array; got dtype {wt.dtype}")
    if not np.isfinite(wt).all() or (wt.size and float(wt.min()) < 0):
        raise ValueError("weight must hold finite values >= 0")
    if not (isinstance(eps, (Real, np.floating)) and math.isfinite(float(eps)) and float(eps) > 0):
        raise ValueError(f"eps must be a finite number > 0; got {eps!r}")
    if s == 0:
        return arr.copy()
    with torch.inference_mode():
        out, _ = masked_blur_hwc(_hwc_f32(arr), _hwc_f32(wt)[:, :, 0], s, float(eps))
        return _from_hwc(out, arr.dtype, arr.ndim)
