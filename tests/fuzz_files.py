"""A fuzzer for the file readers: mutated .npz, .keras and .h5 files into engine.load_model
and model.load_weights. The only exceptions allowed out are the documented ones
(WeightFileError and its subclasses: KerasFileError, WeightFileNotFoundError); a model a
refused file was loaded into must be unchanged; no case may take more than a few seconds.

    python -m tests.fuzz_files --cases 100000          # the long run (prints counts)

tests/test_fuzz_files.py runs a short one in CI. Mutations are drawn from a seeded
generator, so a failing case is reproduced by its number.
"""

import argparse
import io
import json
import signal
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

import engine
from engine import WeightFileError, layers

CASE_SECONDS = 10


def seed_model():
    """A small compiled and trained model: the source of the valid files mutated."""
    engine.utils.set_random_seed(0)
    inputs = layers.Input((6, 6, 1))
    x = layers.Conv2D(2, 3, activation="relu")(inputs)
    x = layers.Add()([layers.Conv2D(2, 1)(x), x])
    outputs = layers.Dense(3)(layers.Flatten()(layers.MaxPooling2D(2)(x)))
    model = engine.Model(inputs, outputs)
    model.compile(
        "adam", engine.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    )
    rng = np.random.default_rng(0)
    model.fit(rng.random((8, 6, 6, 1)), rng.integers(0, 3, 8), epochs=1, verbose=0)
    return model


def valid_files(model, folder):
    """Bytes of each kind of file the readers take, written by the model."""
    files = {}
    for name, save in (
        ("model.npz", model.save),
        ("weights.npz", model.save_weights),
        ("model.keras", model.save),
        ("model.weights.h5", model.save_weights),
    ):
        save(folder / name)
        files[name] = (folder / name).read_bytes()
    return files


# -- mutations ----------------------------------------------------------------------------


def flip_bits(data, rng):
    data = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(len(data)))
        data[i] ^= 1 << int(rng.integers(8))
    return bytes(data)


def overwrite(data, rng):
    data = bytearray(data)
    start = int(rng.integers(len(data)))
    length = int(rng.integers(1, 65))
    data[start : start + length] = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    return bytes(data)


def truncate(data, rng):
    return data[: int(rng.integers(len(data)))]


def splice(data, rng):
    """A chunk deleted or repeated somewhere: offsets inside the file go wrong."""
    a, b = sorted(int(v) for v in rng.integers(len(data), size=2))
    return data[:a] + data[b:] if rng.random() < 0.5 else data[:b] + data[a:b] + data[b:]


BYTE_MUTATIONS = (flip_bits, overwrite, truncate, splice)


def mutate_json(value, rng):
    """One random edit somewhere in a JSON document: a value of another type, a key gone."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = list(value)[int(rng.integers(len(value)))]
        if rng.random() < 0.15:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: mutate_json(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        i = int(rng.integers(len(value)))
        return [*value[:i], mutate_json(value[i], rng), *value[i + 1 :]]
    choices = [None, -1, 0, 10**9, 2.5, float("nan"), "", "Evil", [], {}, [1, 2], True, "x" * 50]
    return choices[int(rng.integers(len(choices)))]


def mutate_zip_member(data, rng):
    """A zip (.npz or .keras) with one member's bytes (or, for JSON, its content) mutated
    and the archive rebuilt, so the mutation gets past the zip's checksums."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    name = list(members)[int(rng.integers(len(members)))]
    content = members[name]
    if name.endswith(".json"):
        try:
            content = json.dumps(mutate_json(json.loads(content), rng)).encode()
        except ValueError:
            content = flip_bits(content, rng)
    elif name == "__config__.npy" and rng.random() < 0.7:
        header, body = content[:128], content[128:]
        try:
            edited = json.dumps(mutate_json(json.loads(body.decode("utf-8")), rng)).encode()
            body = edited
            header = _npy_header(len(body))
        except (ValueError, UnicodeDecodeError):
            body = flip_bits(body, rng)
        content = header + body
    else:
        content = BYTE_MUTATIONS[int(rng.integers(len(BYTE_MUTATIONS)))](content, rng)
    members[name] = content
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member, value in members.items():
            archive.writestr(member, value)
    return out.getvalue()


def _npy_header(length):
    """The header of a 1-D uint8 .npy array of ``length`` bytes (the npz's config)."""
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(length, np.uint8))
    return buffer.getvalue()[: -length or None]


def mutated(data, rng):
    if data[:2] == b"PK" and rng.random() < 0.6:
        try:
            return mutate_zip_member(data, rng)
        except (zipfile.BadZipFile, ValueError):
            pass
    return BYTE_MUTATIONS[int(rng.integers(len(BYTE_MUTATIONS)))](data, rng)


# -- the run ---------------------------------------------------------------------------------


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout


def run(cases, seed=0, report_every=0):
    """Fuzz ``cases`` inputs; returns counts per outcome. Raises AssertionError on a bug."""
    model = seed_model()
    target = seed_model()
    before = target.get_weights()
    counts = {"refused": 0, "loaded": 0}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = valid_files(model, folder)
        names = sorted(files)
        previous = signal.signal(signal.SIGALRM, _alarm)
        started = time.perf_counter()
        try:
            for case in range(cases):
                rng = np.random.default_rng([seed, case])
                name = names[case % len(names)]
                path = folder / f"case-{name}"
                path.write_bytes(mutated(files[name], rng))
                for reader in ("load_model", "load_weights"):
                    signal.alarm(CASE_SECONDS)
                    try:
                        if reader == "load_model":
                            engine.load_model(path)
                        else:
                            target.load_weights(path)
                            before = target.get_weights()  # a benign mutation loaded
                        counts["loaded"] += 1
                    except WeightFileError:
                        counts["refused"] += 1
                        now = target.get_weights()
                        assert all(
                            np.array_equal(a, b, equal_nan=True) for a, b in zip(now, before)
                        ), f"case {case} ({name}): {reader} refused the file but changed the model"
                    except CaseTimeout:
                        raise AssertionError(
                            f"case {case} ({name}): {reader} took over {CASE_SECONDS}s"
                        ) from None
                    except Exception as exc:
                        raise AssertionError(
                            f"case {case} ({name}, seed {seed}): {reader} raised "
                            f"{type(exc).__name__}: {exc}"
                        ) from exc
                    finally:
                        signal.alarm(0)
                if report_every and (case + 1) % report_every == 0:
                    rate = (case + 1) / (time.perf_counter() - started)
                    print(f"{case + 1} cases, {counts}, {rate:.0f} cases/s", flush=True)
        finally:
            signal.signal(signal.SIGALRM, previous)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    counts = run(args.cases, args.seed, report_every=5000)
    print(f"done: {args.cases} files, each to load_model and load_weights: {counts}")


if __name__ == "__main__":
    sys.exit(main())
