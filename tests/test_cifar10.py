"""engine.datasets.cifar10 on small fake archives in the real format (tests/dataset_fakes.py),
and engine.datasets.safe_pickle, which must refuse any pickle that would run code."""

import pickle

import numpy as np
import pytest

from engine.datasets import (
    DatasetCorruptError,
    DatasetNotFoundError,
    WrongDatasetError,
    cifar10,
    mnist,
    safe_pickle,
)
from tests.dataset_fakes import (
    cifar_batch,
    cifar_members,
    idx_files,
    python2_pickle,
    serving,
    sha256,
    tar_gz,
)

ARCHIVE = cifar10.ARCHIVE


@pytest.fixture
def fake(monkeypatch):
    """(archive bytes, batch dicts) of a tiny CIFAR-10 whose SHA-256 the loader accepts."""
    members, batches = cifar_members()
    archive = tar_gz(members)
    monkeypatch.setitem(cifar10.SHA256, ARCHIVE, sha256(archive))
    monkeypatch.setattr(cifar10, "MIRRORS", ("http://127.0.0.1:9/",))  # offline
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    return archive, batches


def expected_arrays(batches, names):
    """What Keras's load_data builds: (n, 3, 32, 32) rows moved to channels last."""
    x = np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32)
    y = np.concatenate([batches[n][b"labels"] for n in names]).astype(np.uint8)
    return x.transpose(0, 2, 3, 1), y.reshape(-1, 1)


def check_result(result, batches):
    (x_train, y_train), (x_test, y_test) = result
    want_x, want_y = expected_arrays(batches, cifar10.TRAIN_BATCHES)
    assert x_train.shape == (12, 32, 32, 3) and y_train.shape == (12, 1)
    assert x_test.shape == (3, 32, 32, 3) and y_test.shape == (3, 1)
    for a in (x_train, y_train, x_test, y_test):
        assert a.dtype == np.uint8 and a.flags.c_contiguous and a.flags.writeable
    assert np.array_equal(x_train, want_x) and np.array_equal(y_train, want_y)
    want_x, want_y = expected_arrays(batches, [cifar10.TEST_BATCH])
    assert np.array_equal(x_test, want_x) and np.array_equal(y_test, want_y)


def test_layout_by_hand(fake, tmp_path):
    archive, batches = fake
    (tmp_path / ARCHIVE).write_bytes(archive)
    (x_train, _), _ = cifar10.load_data(tmp_path)
    row = batches["data_batch_1"][b"data"][0]
    # Pixel (row 1, column 2) of the first image: red at 32+2, green at 1024+34, blue at 2048+34.
    assert x_train[0, 1, 2].tolist() == [row[34], row[1024 + 34], row[2048 + 34]]


@pytest.mark.parametrize("where", ["archive", "folder", "parent", "env"])
def test_archive_locations(fake, tmp_path, monkeypatch, where):
    archive, batches = fake
    folder = tmp_path / "root" / "cifar10"
    folder.mkdir(parents=True)
    (folder / ARCHIVE).write_bytes(archive)
    if where == "env":
        monkeypatch.setenv("XPCNN_DATA_DIR", str(tmp_path / "root"))
        path = None
    else:
        path = {"archive": folder / ARCHIVE, "folder": folder, "parent": tmp_path / "root"}[where]
    check_result(cifar10.load_data(path), batches)


@pytest.mark.parametrize("inner", [True, False], ids=["batches-folder", "flat"])
def test_extracted_batches(fake, tmp_path, inner):
    _, batches = fake
    folder = tmp_path / cifar10.BATCHES_DIR if inner else tmp_path
    folder.mkdir(exist_ok=True)
    for name, batch in batches.items():
        (folder / name).write_bytes(python2_pickle(batch))
    check_result(cifar10.load_data(tmp_path), batches)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="must hold all of") as exc:
        cifar10.load_data(tmp_path)
    assert str(folder / "data_batch_3") in str(exc.value)


def test_download_into_cache_from_a_local_server(fake, tmp_path, monkeypatch):
    archive, batches = fake
    monkeypatch.delenv("XPCNN_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with serving({f"/kriz/{ARCHIVE}": archive}) as server:
        monkeypatch.setattr(cifar10, "MIRRORS", (f"{server.base}/gone/", f"{server.base}/kriz/"))
        check_result(cifar10.load_data(), batches)
        assert server.requests == [f"/gone/{ARCHIVE}", f"/kriz/{ARCHIVE}"]
        cache = tmp_path / "cache" / "xpcnn" / "cifar10"
        assert [p.name for p in cache.iterdir()] == [ARCHIVE]
        assert (cache / ARCHIVE).read_bytes() == archive
        check_result(cifar10.load_data(), batches)
        assert len(server.requests) == 2  # the second load used the cache


def test_download_of_wrong_bytes(fake, tmp_path, monkeypatch):
    with serving({f"/{ARCHIVE}": b"<html>moved</html>"}) as server:
        monkeypatch.setattr(cifar10, "MIRRORS", (f"{server.base}/",))
        with pytest.raises(DatasetNotFoundError, match="SHA-256 mismatch") as exc:
            cifar10.load_data(tmp_path)
    assert f"CIFAR-10 file {ARCHIVE} is missing from {tmp_path}" in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_offline_message(fake, tmp_path):
    with pytest.raises(DatasetNotFoundError) as exc:
        cifar10.load_data(tmp_path / "empty")
    message = str(exc.value)
    assert "http://127.0.0.1:9/" + ARCHIVE in message
    assert cifar10.BATCHES_DIR in message and "XPCNN_DATA_DIR" in message
    assert not (tmp_path / "empty").exists()
    with pytest.raises(DatasetNotFoundError, match="no such file"):
        cifar10.load_data(tmp_path / "other.tar.gz")


def test_damaged_archive(fake, tmp_path):
    archive, _ = fake
    (tmp_path / ARCHIVE).write_bytes(archive[: len(archive) // 2])
    with pytest.raises(DatasetCorruptError, match="SHA-256 mismatch") as exc:
        cifar10.load_data(tmp_path)
    assert str(tmp_path / ARCHIVE) in str(exc.value) and "Delete it and retry" in str(exc.value)


def test_another_datasets_file_is_named(fake, tmp_path, monkeypatch):
    data, _ = idx_files()
    monkeypatch.setitem(mnist.SHA256, "train-images-idx3-ubyte.gz", sha256(data[next(iter(data))]))
    given = tmp_path / "train-images-idx3-ubyte.gz"
    given.write_bytes(data["train-images-idx3-ubyte.gz"])
    with pytest.raises(WrongDatasetError, match="these are the MNIST files, not CIFAR-10") as exc:
        cifar10.load_data(given)
    assert "use engine.datasets.mnist" in str(exc.value) and str(given) in str(exc.value)


def archive_with(monkeypatch, tmp_path, **replace):
    """A fake archive whose members ``replace`` overrides (None removes one); accepted."""
    members, _ = cifar_members()
    members.update(replace)
    archive = tar_gz({k: v for k, v in members.items() if v is not None})
    monkeypatch.setitem(cifar10.SHA256, ARCHIVE, sha256(archive))
    (tmp_path / ARCHIVE).write_bytes(archive)
    return tmp_path / ARCHIVE


def bad_batch(key, value):
    batch = cifar_batch(2, 0)
    batch[key] = value
    return python2_pickle(batch)


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (python2_pickle([1, 2]), "holds a list, expected a dict"),
        (bad_batch(b"data", np.zeros((2, 3071), np.uint8)), r"shape \(2, 3071\)"),
        (bad_batch(b"data", np.zeros((2, 3072), np.int64)), "'data' is a int64 array"),
        (bad_batch(b"labels", [1]), "must be a list of 2 ints"),
        (bad_batch(b"labels", [1, 10]), r"range over 1\.\.10"),
        (b"\x80\x02}q\x00", "not a CIFAR batch pickle"),
    ],
    ids=["not-dict", "shape", "dtype", "count", "range", "truncated"],
)
def test_malformed_batch(monkeypatch, tmp_path, member, message):
    archive = archive_with(monkeypatch, tmp_path, data_batch_2=member)
    with pytest.raises(DatasetCorruptError, match=message) as exc:
        cifar10.load_data(archive)
    assert f"{archive}, member cifar-10-batches-py/data_batch_2" in str(exc.value)


def test_archive_missing_a_batch(monkeypatch, tmp_path):
    archive = archive_with(monkeypatch, tmp_path, test_batch=None)
    with pytest.raises(DatasetCorruptError, match="lacks") as exc:
        cifar10.load_data(archive)
    assert "cifar-10-batches-py/test_batch" in str(exc.value)


class _Exploit:
    """Unpickling this calls the function named in __reduce__: here it would write a file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_code_in_a_pickle_is_refused(monkeypatch, tmp_path):
    marker = tmp_path / "pwned"
    evil = python2_pickle({b"data": _Exploit(marker), b"labels": []})
    pickle.loads(evil)["data"].close()  # Python 2 strings decoded as ASCII
    assert marker.exists()  # the plain unpickler runs it ...
    marker.unlink()
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (io|builtins)\.open"):
        safe_pickle.loads(evil)  # ... the restricted one does not
    archive = archive_with(monkeypatch, tmp_path, data_batch_1=evil)
    with pytest.raises(DatasetCorruptError, match="refusing to load"):
        cifar10.load_data(archive)
    assert not marker.exists()


def test_safe_pickle_reads_numpy_arrays_of_both_numpy_spellings():
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    for data in (python2_pickle({b"a": a}), pickle.dumps({"a": a}, protocol=4)):
        got = safe_pickle.loads(data)
        key = b"a" if b"a" in got else "a"
        assert np.array_equal(got[key], a) and got[key].dtype == np.uint8
