"""Scratch buffers that a layer reuses from step to step instead of reallocating.

A layer's large intermediates that never leave it (im2col patches and their
gradient) have the same shape at every step; allocating tens of megabytes afresh
each time costs page faults and evicts the caches. A Workspace hands out a view of
a kept flat buffer, growing it only when a larger one is asked for, so a smaller
last batch reuses it too.

Use it only for arrays that are dead before the next request under the same name:
whatever a layer returns to its caller must be a fresh array.
"""

import math


class Workspace:
    def __init__(self):
        self._buffers = {}

    def get(self, name, shape, dtype, xp):
        """An uninitialised ``xp`` array of ``shape`` and ``dtype``, a view of buffer ``name``."""
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if (
            buffer is None
            or buffer.size < size
            or buffer.dtype != dtype
            or not isinstance(buffer, xp.ndarray)
        ):
            buffer = xp.empty(size, dtype=dtype)
            self._buffers[name] = buffer
        return buffer[:size].reshape(shape)

    def clear(self):
        """Free every buffer (they are made again on the next request)."""
        self._buffers.clear()
