"""Stage-1 artifacts: atomic write, manifest checks, refusal of stale or corrupt folders."""

import json

import numpy as np
import pytest

from ddat_jax.methods.ddat import artifacts, difficulty


def _arrays(rng):
    return {
        "train": {"train_1": rng.normal(size=(7, 4)), "train_2": rng.normal(size=(5, 4))},
        "dev": {"dev_1": rng.normal(size=(6, 4))},
    }


def _write(folder, arrays, h="abc"):
    return artifacts.write_augmented(
        folder,
        arrays,
        feature_names=["f0", "f1", "f2"],
        difficulty_names=["d"],
        config_hash=h,
        extra={"stage1_dev_ccc": 0.5},
    )


def test_round_trip(tmp_path):
    arrays = _arrays(np.random.default_rng(0))
    folder = _write(tmp_path / "stage1" / "re_sum", arrays)
    back, manifest = artifacts.read_augmented(folder, expected_config_hash="abc")
    assert manifest["difficulty_names"] == ["d"] and manifest["stage1_dev_ccc"] == 0.5
    for p, recs in arrays.items():
        for name, arr in recs.items():
            np.testing.assert_array_equal(back[p][name], arr.astype(np.float32))
            assert back[p][name].dtype == np.float32
    assert not list((tmp_path / "stage1").glob("*.tmp-*"))


def test_refuses_other_config(tmp_path):
    folder = _write(tmp_path / "v", _arrays(np.random.default_rng(0)))
    with pytest.raises(artifacts.ManifestError, match="config hash abc"):
        artifacts.read_augmented(folder, expected_config_hash="zzz")


def test_refuses_missing_manifest_and_corruption(tmp_path):
    folder = _write(tmp_path / "v", _arrays(np.random.default_rng(0)))
    np.save(folder / "dev" / "dev_1.npy", np.zeros((6, 4), np.float32))
    with pytest.raises(artifacts.ManifestError, match="checksum"):
        artifacts.read_augmented(folder, expected_config_hash="abc")
    (folder / "manifest.json").unlink()
    with pytest.raises(artifacts.ManifestError, match="no manifest"):
        artifacts.read_augmented(folder, expected_config_hash="abc")


def test_killed_mid_write_leaves_nothing_readable(tmp_path, monkeypatch):
    """A crash while saving arrays leaves only a tmp folder, which the reader ignores."""
    calls = {"n": 0}
    real_save = np.save

    def dying_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        _write(tmp_path / "v", _arrays(np.random.default_rng(0)))
    monkeypatch.setattr(np, "save", real_save)
    assert not (tmp_path / "v").exists()
    with pytest.raises(artifacts.ManifestError):
        artifacts.read_augmented(tmp_path / "v", expected_config_hash="abc")
    # The next complete write cleans the leftover and succeeds.
    _write(tmp_path / "v", _arrays(np.random.default_rng(0)))
    assert [p.name for p in tmp_path.iterdir()] == ["v"]


def test_shape_mismatch_in_manifest(tmp_path):
    folder = _write(tmp_path / "v", _arrays(np.random.default_rng(0)))
    m = json.loads((folder / "manifest.json").read_text())
    m["files"]["dev/dev_1.npy"]["shape"] = [9, 4]
    (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(artifacts.ManifestError, match="shape"):
        artifacts.read_augmented(folder, expected_config_hash="abc")


def test_wrong_width_rejected(tmp_path):
    with pytest.raises(ValueError, match="expected \\[T, 4\\]"):
        _write(tmp_path / "v", {"train": {"train_1": np.zeros((3, 5))}})


@pytest.mark.parametrize(
    "reduce,fn",
    [("squared", np.square), ("abs", np.abs), ("signed", lambda e: e)],
)
def test_re_scalar_matches_numpy(reduce, fn):
    rng = np.random.default_rng(1)
    x, xh = rng.normal(size=(2, 9, 5)), rng.normal(size=(2, 9, 5))
    got = np.asarray(difficulty.re_scalar(x, xh, reduce=reduce))
    np.testing.assert_allclose(got[..., 0], fn(x - xh).sum(-1), rtol=1e-5)
    with pytest.raises(ValueError, match="valid"):
        difficulty.re_scalar(x, xh, reduce="max")
