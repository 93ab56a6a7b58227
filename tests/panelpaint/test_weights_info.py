"""Weights metadata read without torch: the calibrated working size drives the default."""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from panelpaint.settings import load_settings
from panelpaint.weights import DEFAULT_WEIGHTS, FALLBACK_WORK_SIZE, WeightsFileError, read_info


def _weights(path, **meta):
    save_file({"generator.x": np.zeros(2, np.float32)}, str(path),
              metadata={"format": "panelpaint", "model_version": "9.9.9", **meta})
    return path


def test_the_work_size_comes_from_the_weights_unless_a_setting_overrides_it(tmp_path):
    w = _weights(tmp_path / "w.safetensors", work_size="192", train_sizes=json.dumps([96, 192]))
    info = read_info(w)
    assert (info.model_version, info.work_size, info.train_sizes) == ("9.9.9", 192, (96, 192))
    assert load_settings(weights=w, var_dir=tmp_path).effective_work_size() == 192
    assert load_settings(weights=w, work_size=320, var_dir=tmp_path).effective_work_size() == 320


def test_older_weights_without_a_work_size_get_the_fallback(tmp_path):
    assert read_info(_weights(tmp_path / "old.safetensors")).work_size == FALLBACK_WORK_SIZE


@pytest.mark.parametrize("content", [b"", b"not a safetensors file at all"])
def test_bad_weights_files_are_clear_errors(tmp_path, content):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    with pytest.raises(WeightsFileError, match="bad.safetensors"):
        read_info(bad)
    with pytest.raises(WeightsFileError, match="no weights file"):
        read_info(tmp_path / "missing.safetensors")
    with pytest.raises(WeightsFileError, match="outside"):
        read_info(_weights(tmp_path / "huge.safetensors", work_size="100000"))


def test_the_shipped_weights_record_their_calibrated_size():
    from safetensors import safe_open

    with safe_open(str(DEFAULT_WEIGHTS), framework="numpy") as f:
        meta = f.metadata()
    assert int(meta["work_size"]) == read_info(DEFAULT_WEIGHTS).work_size
