"""A Conv2D and the 2x2 max pooling after it, run as one step on the CPU.

The fusion pass (engine/fusion.py) runs a Conv2D (activation 'relu' or none, no
dilation, one group) followed by MaxPooling2D with pool 2x2, stride 2 and no padding
as one ConvPool2x2 step on NumPy, in any model, because there:

- computing the convolution per window quadrant, outputs (2*py + a, 2*px + b) for
  quadrant (a, b), puts the four candidates of every window in four contiguous
  arrays: pooling and its gradient routing run on contiguous data, and an odd last
  row or column that pooling drops is never computed (17% of MNIST's second conv);
- max commutes with adding a per-channel bias and with ReLU (both non-decreasing), so
  bias, activation and the activation's gradient run on the quarter-size pooled map.

The results are the two layers', up to float rounding; a window's gradient goes to
its first maximum in row-major order, MaxPooling2D's tie rule (compared before the
bias is added). On the GPU the layers run one by one with their own kernels.

    x:       (N, H, W, C)          the Conv2D's input
    patches: (4*N*PH*PW, KH*KW*C)  the im2col rows of each quadrant's outputs (for one
                                   input channel, the transpose of a K-major array)
    z:       (4, N*PH*PW, F)       the convolution before the bias, by quadrant
    zmax:    (N*PH*PW, F)          z's maximum over each window
    y:       (N, PH, PW, F)        activation(zmax + bias), the pooling's output
"""

import numpy as np

from engine import fusion, im2col, maxpool
from layers.conv import Conv2D, column_sums
from layers.pooling import MaxPooling2D

# Non-decreasing activations that therefore commute with max.
_MONOTONE = ("relu", "linear")


def can_fuse(conv, pool):
    """True for a built Conv2D ('relu' or no activation, no dilation, one group) then a built
    2x2/2 unpadded pooling."""
    return (
        isinstance(conv, Conv2D)
        and isinstance(pool, MaxPooling2D)
        and conv.built
        and pool.built
        and conv.activation.name in _MONOTONE
        and conv.dilation_rate == (1, 1)
        and conv.groups == 1
        and pool.pool_size == (2, 2)
        and pool.strides == (2, 2)
        and not any(pool.pads)
    )


@fusion.register
class ConvPool2x2:
    """Runs ``conv`` then ``pool`` as one step; its backward fills the conv's gradients."""

    backends = ("numpy",)
    can_fuse = staticmethod(can_fuse)
    mixes_samples = False

    def __init__(self, conv, pool):
        self.conv, self.pool = conv, pool
        self.name = f"{conv.name}+{pool.name}"

    @property
    def params(self):
        return self.conv.params

    @property
    def trainable_weights(self):
        return self.conv.trainable_weights

    def forward(self, x, ctx):
        conv, workspace = self.conv, ctx.workspace
        (kh, kw), (sh, sw) = conv.kernel_size, conv.strides
        n, c, f = x.shape[0], x.shape[3], conv.filters
        ph, pw = conv.output_hw[0] // 2, conv.output_hw[1] // 2
        m, k = 4 * n * ph * pw, kh * kw * c
        # One input channel: K-major patches, which the copy writes in contiguous runs.
        if c == 1:
            patches = workspace.get("cols", (k, m), x.dtype, np).T
        else:
            patches = workspace.get("cols", (m, k), x.dtype, np)
        padded = im2col.zero_pad(x, conv.pads)
        im2col.quadrant_patches_cpu(padded, kh, kw, sh, sw, ph, pw, out=patches)
        kernel = conv.kernel.reshape(k, f)
        z = workspace.get("z", (m, f), np.result_type(patches, kernel), np)
        np.matmul(patches, kernel, out=z)
        z = z.reshape(4, m // 4, f)
        zmax = maxpool.max_of_quarters(z)
        y = zmax + conv.bias if conv.use_bias else zmax.copy()
        y = conv.activation.forward(y, inplace=True)
        if ctx.for_backward:
            ctx.patches, ctx.z, ctx.zmax, ctx.y = patches, z, zmax, y
            ctx.x_shape, ctx.padded_shape = x.shape, padded.shape
        return y.reshape(n, ph, pw, f)

    def backward(self, ctx, dy):
        conv, workspace = self.conv, ctx.workspace
        n, ph, pw, f = dy.shape
        g = conv.activation.backward(dy.reshape(-1, f), ctx.y)  # on the pooled map
        dz = workspace.get("dz", ctx.z.shape, g.dtype, np)
        maxpool.route_to_first_max(g, ctx.z, ctx.zmax, dz)  # each quadrant of dz, in place
        if ctx.needs_weight_grads:
            ctx.grads["kernel"] = conv.kernel_gradient(ctx.patches, dz.reshape(-1, f))
            if conv.use_bias:
                # Each window's gradient reaches exactly one conv output, so dz sums to g.
                ctx.grads["bias"] = column_sums(g, workspace)
        if not ctx.needs_input_grad[0]:
            return None
        # The input gradient from dz put back in the conv's own (N, 2*PH, 2*PW, F) layout:
        # its additions then run long contiguous runs, where the quadrants' strided views
        # would add F-wide pieces (3x slower).
        dz_map = workspace.get("dz_map", (n, 2 * ph, 2 * pw, f), g.dtype, np)
        for q, (a, b) in enumerate(maxpool.OFFSETS_2X2):
            dz_map[:, a::2, b::2, :] = dz[q].reshape(n, ph, pw, f)
        (kh, kw), (sh, sw) = conv.kernel_size, conv.strides
        dx = np.zeros(ctx.padded_shape, dtype=g.dtype)
        reach = dx[:, : (2 * ph - 1) * sh + kh, : (2 * pw - 1) * sw + kw]  # what the map reads
        im2col.add_input_gradient_cpu(reach, dz_map.reshape(-1, f), conv.kernel, sh, sw, workspace)
        top, _, left, _ = conv.pads
        return dx[:, top : top + ctx.x_shape[1], left : left + ctx.x_shape[2], :]
