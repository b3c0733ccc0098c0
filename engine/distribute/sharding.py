"""Each rank's share of a global batch: contiguous, disjoint, covering it.

A global batch of B samples splits as np.array_split does: the first B % p ranks take
B // p + 1 samples, the others B // p (a rank may get none when B < p). The batches
themselves come from the usual sources (engine/data_adapter.py) on every rank alike, so
the shuffle depends only on (seed, epoch) whatever the number of processes.
"""


def shard_slice(n, rank, size):
    """The slice of an n-sample batch that ``rank`` of ``size`` takes."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def shard_batch(batch, rank, size):
    """(x, y, sample_weight) of one batch cut to the rank's share; the global count too."""
    x, y, w = batch
    n = len(x[0])
    part = shard_slice(n, rank, size)
    y = None if y is None else [t[part] for t in y]
    w = None if w is None else [None if a is None else a[part] for a in w]
    return ([a[part] for a in x], y, w), n


class ShardedBatches:
    """A batch source (ArrayBatches, DatasetBatches) that yields this rank's share of each
    batch; ``samples`` is the global batch's sample count of the batch last yielded."""

    def __init__(self, source, rank, size):
        self.source, self.rank, self.size = source, rank, size
        self.samples = 0
        self.sample_shapes = source.sample_shapes

    @property
    def steps(self):
        return self.source.steps

    @steps.setter
    def steps(self, value):  # fit learns a generator's length on its first pass
        self.source.steps = value

    @property
    def exhausted(self):
        return getattr(self.source, "exhausted", False)

    def batches(self, seed=None, epoch=0, shuffle=False):
        yield from self._shares(self.source.batches(seed, epoch, shuffle))

    def in_order(self):
        yield from self._shares(self.source.in_order())

    def _shares(self, batches):
        for batch in batches:
            share, self.samples = shard_batch(batch, self.rank, self.size)
            yield share

    def on_epoch_begin(self):
        self.source.on_epoch_begin()

    def on_epoch_end(self):
        self.source.on_epoch_end()
