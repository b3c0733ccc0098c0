"""A Conv2D and the 2x2 max pooling after it, run as one step on the CPU.

Sequential runs a Conv2D (activation 'relu' or none) followed by MaxPooling2D with
pool 2x2, stride 2 and no padding as one ConvPool2x2 step on NumPy, because there:

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

from engine import im2col, maxpool
from engine.workspace import Workspace
from layers.conv import Conv2D, column_sums
from layers.pooling import MaxPooling2D

# Non-decreasing activations that therefore commute with max.
_MONOTONE = ("relu", "linear")

# False makes Sequential run every layer on its own (to compare, or to debug a layer).
ENABLED = True


def can_fuse(conv, pool):
    """True for a built Conv2D ('relu' or no activation) then a built 2x2/2 unpadded pooling."""
    return (
        isinstance(conv, Conv2D)
        and isinstance(pool, MaxPooling2D)
        and conv.built
        and pool.built
        and conv.activation.name in _MONOTONE
        and pool.pool_size == (2, 2)
        and pool.strides == (2, 2)
        and not any(pool._pads)
    )


def fuse(layers):
    """The layers as steps to run, each fusable (Conv2D, MaxPooling2D) pair as a ConvPool2x2."""
    steps, i = [], 0
    while i < len(layers):
        if i + 1 < len(layers) and can_fuse(layers[i], layers[i + 1]):
            steps.append(ConvPool2x2(layers[i], layers[i + 1]))
            i += 2
        else:
            steps.append(layers[i])
            i += 1
    return steps


class ConvPool2x2:
    """Runs ``conv`` then ``pool`` as one step; fills conv.grads like Conv2D.backward."""

    # As Conv2D: training never needs the model input's gradient.
    can_skip_input_gradient = True

    def __init__(self, conv, pool):
        self.conv, self.pool = conv, pool
        self._workspace = Workspace()  # patches, z and their gradients, reused every step
        self._cache = None

    def __call__(self, x, training=False):
        return self.forward(x, training=training)

    def forward(self, x, training=False):
        conv = self.conv
        (kh, kw), (sh, sw) = conv.kernel_size, conv.strides
        n, c, f = x.shape[0], x.shape[3], conv.filters
        ph, pw = conv._out_hw[0] // 2, conv._out_hw[1] // 2
        m, k = 4 * n * ph * pw, kh * kw * c
        # Training keeps patches and z until backward; inference has buffers of its own.
        tag = "" if training else "_inference"
        # One input channel: K-major patches, which the copy writes in contiguous runs.
        if c == 1:
            patches = self._workspace.get("cols" + tag, (k, m), x.dtype, np).T
        else:
            patches = self._workspace.get("cols" + tag, (m, k), x.dtype, np)
        padded = im2col.pad_cpu(x, conv._pads)
        im2col.quadrant_patches_cpu(padded, kh, kw, sh, sw, ph, pw, out=patches)
        kernel = conv.params["kernel"].reshape(k, f)
        z = self._workspace.get("z" + tag, (m, f), np.result_type(patches, kernel), np)
        np.matmul(patches, kernel, out=z)
        z = z.reshape(4, m // 4, f)
        zmax = maxpool.max_of_quarters(z)
        y = zmax + conv.params["bias"] if conv.use_bias else zmax.copy()
        y = conv.activation.forward(y, inplace=True)
        if training:  # an inference call in between leaves what backward needs
            self._cache = (patches, z, zmax, y, x.shape, padded.shape)
        return y.reshape(n, ph, pw, f)

    def backward(self, dy, input_gradient=True):
        """Fill the conv's grads; return dx, or None when ``input_gradient`` is False."""
        if self._cache is None:
            raise RuntimeError(
                f"{self.conv.name}: backward() needs a forward(x, training=True) first."
            )
        patches, z, zmax, y, x_shape, padded_shape = self._cache
        self._cache = None
        conv = self.conv
        n, ph, pw, f = dy.shape
        g = conv.activation.backward(dy.reshape(-1, f), y)  # on the pooled map
        dz = self._workspace.get("dz", z.shape, g.dtype, np)
        maxpool.route_to_first_max(g, z, zmax, dz)  # each quadrant of dz, in place
        kernel = conv.params["kernel"]
        conv.grads["kernel"] = (patches.T @ dz.reshape(-1, f)).reshape(kernel.shape)
        if conv.use_bias:
            # Each window's gradient reaches exactly one conv output, so dz sums to g.
            conv.grads["bias"] = column_sums(g, self._workspace)
        if not input_gradient:
            return None
        # The input gradient from dz put back in the conv's own (N, 2*PH, 2*PW, F) layout:
        # its additions then run long contiguous runs, where the quadrants' strided views
        # would add F-wide pieces (3x slower).
        dz_map = self._workspace.get("dz_map", (n, 2 * ph, 2 * pw, f), g.dtype, np)
        for q, (a, b) in enumerate(maxpool.OFFSETS_2X2):
            dz_map[:, a::2, b::2, :] = dz[q].reshape(n, ph, pw, f)
        (kh, kw), (sh, sw) = conv.kernel_size, conv.strides
        dx = np.zeros(padded_shape, dtype=g.dtype)
        reach = dx[:, : (2 * ph - 1) * sh + kh, : (2 * pw - 1) * sw + kw]  # what the map reads
        im2col.add_input_gradient_cpu(reach, dz_map.reshape(-1, f), kernel, sh, sw, self._workspace)
        top, _, left, _ = conv._pads
        return dx[:, top : top + x_shape[1], left : left + x_shape[2], :]
