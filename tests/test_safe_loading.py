"""Weights load from safetensors only, and code shipped with a checkpoint never runs unless params allow it."""

from __future__ import annotations

import contextlib
import json
import shutil

import pytest
import torch

from tests.conftest import tiny_params
from transfer.core.errors import ModelError
from transfer.core.params import parse_params
from transfer.tasks.classification import load_classifier


@pytest.fixture
def params(tiny_model):
    return parse_params(tiny_params(tiny_model, {}))


def test_a_pickled_checkpoint_is_refused_with_what_to_do(tmp_path, tiny_model, params):
    from transformers import AutoModel

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_model, folder)
    torch.save(AutoModel.from_pretrained(tiny_model).state_dict(), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"pickle format \(pytorch_model.bin\).*safetensors only.*convert it once"):
        load_classifier(str(folder), params)
    assert load_classifier(str(tiny_model), params).config.num_labels == 3  # the safetensors copy loads


def test_remote_code_in_a_checkpoint_does_not_run_by_default(tmp_path, tiny_model, params):
    folder = tmp_path / "with-code"
    shutil.copytree(tiny_model, folder)
    marker = tmp_path / "code-ran"
    (folder / "modeling_custom.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.Custom"}
    (folder / "config.json").write_text(json.dumps(config))
    assert not params.model.trust_remote_code
    with contextlib.suppress(ValueError, OSError):  # refusing is fine too; what matters is that it never ran
        load_classifier(str(folder), params)
    assert not marker.exists()
