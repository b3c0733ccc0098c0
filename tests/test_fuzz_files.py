"""A short run of the file fuzzer (tests/fuzz_files.py) in every test run: mutated .npz,
.keras and .h5 files give documented errors only, leave the model as it was, never hang.
The long run: python -m tests.fuzz_files --cases 100000."""

import pytest

from tests import fuzz_files

pytest.importorskip("h5py", reason="the Keras files need h5py")


def test_mutated_files_are_refused_cleanly():
    counts = fuzz_files.run(400, seed=7)
    assert counts["refused"] > 400  # most mutations break the file; each was refused cleanly


def test_the_fuzzer_catches_an_undocumented_exception(monkeypatch):
    """The fuzzer is only worth something if it can fail."""
    import engine

    def broken(path, custom_objects=None):
        raise KeyError("a reader bug")

    monkeypatch.setattr(engine, "load_model", broken)
    with pytest.raises(AssertionError, match="KeyError"):
        fuzz_files.run(2, seed=0)
