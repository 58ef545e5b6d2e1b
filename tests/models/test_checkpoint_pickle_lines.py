"""Files that need pickled code are refused in one clear line: the line names the pickled class (it quoted
torch's advice cut mid-word, "add_safe_globals([__main__"), and a plain `pickle.dump` file gives no torch
"Detected pickle protocol" warning line before the error."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch

from geodino.errors import CheckpointError
from geodino.models.checkpoints import read_backbone_weights


class _Pickled(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)


def test_module_pickle_names_its_class(tmp_path):
    path = tmp_path / "module.pth"
    torch.save(_Pickled(), path)
    with pytest.raises(CheckpointError) as exc:
        read_backbone_weights(path)
    msg = str(exc.value)
    assert f"(it pickles {__name__}._Pickled)" in msg and "refused for safety" in msg
    assert "add_safe_globals" not in msg and "\n" not in msg


def test_plain_pickle_is_one_line_without_torch_warning(tmp_path):
    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps(_Pickled, protocol=4))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match=r"plain\.pth is corrupt or not a torch file"):
            read_backbone_weights(path)
    assert not [w for w in seen if "pickle protocol" in str(w.message)]
