"""Small fake dataset files in the real formats, and a local HTTP server to download them from.

No machine that runs the tests can reach the datasets' servers, so the
download path is tested against :func:`serving` on 127.0.0.1, with the fake
files' own SHA-256 injected into the dataset module (:func:`inject_sums`).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.server
import io
import pickle
import struct
import tarfile
import threading

import numpy as np

from engine.datasets import cifar10, idx


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- IDX (MNIST, Fashion-MNIST) -----------------------------------------------------


def idx_files(n_train=6, n_test=4, seed=0, mtime=0):
    """{file name: gzipped IDX bytes} of a tiny MNIST-format dataset, and its arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        idx.TRAIN_IMAGES: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        idx.TRAIN_LABELS: rng.integers(0, 10, n_train, dtype=np.uint8),
        idx.TEST_IMAGES: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        idx.TEST_LABELS: rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    data = {}
    for name, a in arrays.items():
        magic = 2051 if a.ndim == 3 else 2049
        raw = struct.pack(f">I{a.ndim}I", magic, *a.shape) + a.tobytes()
        data[name] = gzip.compress(raw, mtime=mtime)
    return data, arrays


def inject_sums(monkeypatch, module, data: dict, content=True):
    """Make ``module`` (a dataset module) accept ``data``'s files as its published ones."""
    for name, blob in data.items():
        monkeypatch.setitem(module.SHA256, name, sha256(blob))
        if content and name in module.CONTENT_SHA256:
            monkeypatch.setitem(module.CONTENT_SHA256, name, sha256(gzip.decompress(blob)))


# --- CIFAR-10 ---------------------------------------------------------------------


class _Python2Pickler(pickle._Pickler):
    """Writes bytes and str as Python 2's ``str`` (BINSTRING opcodes), as the real CIFAR
    pickles hold them (dict keys, the arrays' raw data, NumPy's dtype byte order); Python
    3's protocol 2 would instead write unicode and call the global ``_codecs.encode``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_python2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_python2_str
    dispatch[str] = save_python2_str


def python2_pickle(obj) -> bytes:
    """``obj`` pickled as CIFAR's Python 2 files are (protocol 2, numpy.core globals)."""
    out = io.BytesIO()
    _Python2Pickler(out, protocol=2).dump(obj)
    # NumPy 2 names its module numpy._core; the real files, written by NumPy 1, numpy.core.
    return out.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def cifar_batch(n, seed, label="training batch"):
    """One batch dict as in the archive: data (n, 3072) uint8, labels list of n ints."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"image_{seed}_{i}.png".encode() for i in range(n)],
    }


def cifar_members(sizes=(3, 2, 4, 1, 2), n_test=3):
    """{batch name: pickled batch} of a tiny CIFAR-10, and the batch dicts."""
    batches = {name: cifar_batch(n, seed) for seed, (name, n) in enumerate(
        zip(cifar10.TRAIN_BATCHES, sizes)
    )}  # fmt: skip
    batches[cifar10.TEST_BATCH] = cifar_batch(n_test, 99, "testing batch 1 of 1")
    return {name: python2_pickle(b) for name, b in batches.items()}, batches


def tar_gz(members: dict, prefix=cifar10.BATCHES_DIR + "/") -> bytes:
    """A .tar.gz holding ``members`` (name -> bytes) under ``prefix``, plus a readme."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in {"readme.html": b"<html></html>", **members}.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


# --- a local HTTP server ----------------------------------------------------------


@contextlib.contextmanager
def serving(files: dict):
    """Serve ``files`` ({url path: bytes}) on 127.0.0.1; yields the server, whose
    ``base`` is its URL and ``requests`` the paths asked for. Others answer 404."""
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    server.requests = requests
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
