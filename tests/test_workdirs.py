"""Workdirs never mix runs; config mistakes are caught before any data is loaded."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from ddat_jax.experiment import validate, workdirs
from ddat_jax.main import default_workdir

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def load_config(name: str, arg: str | None = None):
    spec = importlib.util.spec_from_file_location(name, CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_default_workdir_names_the_variant():
    assert default_workdir(load_config("recola_re")) == Path("runs/recola_re")
    assert default_workdir(load_config("recola_re", "smoke")) == Path("runs/recola_re-smoke")
    assert default_workdir(load_config("recola_re", "smoke,dimension=valence")) == Path(
        "runs/recola_re-dimension=valence-smoke"
    )


def test_same_config_resumes_other_config_is_refused_before_writing(tmp_path):
    arousal = load_config("recola_re", "smoke")
    assert workdirs.prepare(arousal, tmp_path) == "new"
    assert workdirs.prepare(arousal, tmp_path) == "resume"
    before = (tmp_path / "config.json").read_text()
    valence = load_config("recola_re", "smoke,dimension=valence")
    with pytest.raises(workdirs.WorkdirError, match=r"data.dimension: 'arousal' → 'valence'"):
        workdirs.prepare(valence, tmp_path)
    assert (tmp_path / "config.json").read_text() == before  # the record is untouched
    (tmp_path / "train").mkdir()
    assert workdirs.prepare(valence, tmp_path, overwrite=True) == "overwritten"
    assert not (tmp_path / "train").exists()
    assert json.loads((tmp_path / "config.json").read_text())["data"]["dimension"] == "valence"


def test_a_changed_override_is_named(tmp_path):
    config = load_config("recola_re", "smoke")
    workdirs.prepare(config, tmp_path)
    other = load_config("recola_re", "smoke")
    other.train.epochs = 5
    with pytest.raises(workdirs.WorkdirError, match=r"train.epochs: 3 → 5"):
        workdirs.prepare(other, tmp_path)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("model.arch", (1, 40), r"config.model.arch=\(1, 40\): expected a tuple of \(layers"),
        ("ddat.aux", "xyz", r"config.ddat.aux='xyz' is not valid; valid values"),
        ("ddat.loss", "huber", r"config.ddat.loss='huber' is not valid"),
        ("ddat.systems", ("stl", "dat"), r"unknown systems \['dat'\]"),
        ("grid.strategy", "fast", r"config.grid.strategy='fast' is not valid"),
        ("train.optimizer", "rmsprop", r"config.train.optimizer='rmsprop' is not valid"),
        ("postprocess.grids", "x", r"config.postprocess.grids='x' is not valid"),
        ("grid.seeds", 0, r"config.grid.seeds must be >= 1"),
        ("data.preset", "recolla", r"config.data.preset='recolla' is not an embedded corpus"),
        ("data.gold", "median", r"config.data.gold='median' is not valid"),
        ("data.layout", "arff", r"config.data.layout='arff' is not valid"),
    ],
)
def test_config_mistakes_get_a_sentence(field, value, message):
    config = load_config("recola_re", "smoke")
    section, name = field.split(".")
    with config.unlocked():
        config[section][name] = value
    with pytest.raises(ValueError, match=message):
        validate(config)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--config=configs/recola_re.py:smoke,foo=1"], r"unknown config argument 'foo'"),
        (
            ["--config=configs/recola_re.py:smoke", "--config.model.arch_search=seq"],
            r"config.model has no field 'arch_search'; its fields: \['arch'",
        ),
        (["--config=configs/recola_re.py", "--config.nosuch.x=1"], r"config has no field 'nosuch'"),
        (["--config=configs/nope.py"], r"no config file 'configs/nope.py'"),
    ],
)
def test_flag_mistakes_get_a_sentence(argv, message, monkeypatch):
    from ddat_jax.main import precheck

    monkeypatch.chdir(CONFIGS.parent)
    assert re.search(message, precheck(argv))


def test_valid_flags_pass_the_precheck(monkeypatch):
    from ddat_jax.main import precheck

    monkeypatch.chdir(CONFIGS.parent)
    argv = ["--config=configs/recola_re.py:smoke", "--config.train.epochs=5"]
    assert precheck(argv) is None
