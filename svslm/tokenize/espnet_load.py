"""Loading ESPnet models (ESPnet-Codec, XEUS) strictly.

ESPnet's `AbsTask.build_model_from_file` loads the state dict with `strict=False`: a checkpoint
whose keys do not match the config (another model, another ESPnet version) gives a model with
random weights, and an ESPnet-Codec whose codebooks were never initialised (`inited` = 0) encodes
everything to the same codes, all without a word. Here the model is built from its config by the
task's own `build_model_from_file`, and the weights are then loaded with every key checked.
"""
from __future__ import annotations

from pathlib import Path

import torch

INSTALL_HINT = "./install.sh --espnet"


def import_task(module: str, name: str, what: str):
    """`espnet2.tasks.<module>.<name>`, or an ImportError saying how to install ESPnet."""
    try:
        mod = __import__(f"espnet2.tasks.{module}", fromlist=[name])
    except ImportError as err:
        raise ImportError(f"{what} needs ESPnet (install it with {INSTALL_HINT}); "
                          f"importing espnet2.tasks.{module} failed: {err}") from err
    return getattr(mod, name)


def _listing(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > limit else ''})"


def load_espnet_model(task, config_file: str | Path, model_file: str | Path, device: str = "cpu"):
    """(model in eval mode, train args) from an ESPnet `config.yaml` and model file, every key of
    the file matched to the model and the model's every key found in the file."""
    model, args = task.build_model_from_file(str(config_file), None, "cpu")
    state = torch.load(model_file, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "module" in state:  # a DeepSpeed checkpoint, as ESPnet accepts
        state = state["module"]
    if not isinstance(state, dict):
        raise TypeError(f"{model_file}: not a state dict (got {type(state).__name__})")
    result = model.load_state_dict(state, strict=False)
    problems = []
    if result.missing_keys:
        problems.append(f"missing from the file: {_listing(result.missing_keys)}")
    if result.unexpected_keys:
        problems.append(f"not in the model {Path(config_file).name} describes: {_listing(result.unexpected_keys)}")
    if problems:
        raise ValueError(f"{model_file}: does not match {config_file}; " + "; ".join(problems))
    return model.to(device).eval(), args
