"""PyDataset: the base class of datasets that fit, evaluate and predict read batch by
batch, as keras.utils.PyDataset (also engine.utils.PyDataset).

    class Batches(engine.utils.PyDataset):
        def __init__(self, files, batch_size, **kwargs):
            super().__init__(**kwargs)
            ...
        def __len__(self):              # batches per epoch
            return math.ceil(len(self.files) / self.batch_size)
        def __getitem__(self, index):   # batch ``index``: (x, y) or (x, y, sample_weight)
            ...

    model.fit(Batches(files, 32), epochs=10)

Any object with __len__ and __getitem__ works the same way; this class adds Keras's
num_batches and the on_epoch_begin / on_epoch_end hooks fit calls around each epoch.
Batches are read one at a time in this process: ``workers``, ``use_multiprocessing``
and ``max_queue_size`` are accepted for Keras programs and otherwise unused.
"""


class PyDataset:
    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self.workers = workers
        self.use_multiprocessing = use_multiprocessing
        self.max_queue_size = max_queue_size

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index).")

    @property
    def num_batches(self):
        """The number of batches: len(self), or None for an endless dataset."""
        return len(self) if hasattr(self, "__len__") else None

    def on_epoch_begin(self):
        """Called before each epoch's first batch."""

    def on_epoch_end(self):
        """Called after each epoch's last batch (e.g. to shuffle the files)."""
