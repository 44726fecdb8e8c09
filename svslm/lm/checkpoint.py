"""ESPnet-SpeechLM checkpoints: read what ESPnet writes, write what ESPnet reads (docs/formats.md).

A checkpoint is a weights file (`model.pth`, `valid.acc.ave.pth`, `<N>epoch.pth`, ...: a state dict,
flat or nested under `model`/`module`) with the trainer's `config.yaml` beside it (inline
`token_list`, `token_bias`, `transformer_conf.hf_model_tag`, `codec_token_in_use`, the
preprocessor and loss settings). The backbone geometry is the HF `config.json` that
`hf_model_tag` names: a directory (relative to the checkpoint, then to the working directory as
ESPnet resolves it), or a hub tag found in the local HF cache; never guessed.

Loading checks everything before touching the model, names every missing key, unexpected key and
shape mismatch at once, and records what it tolerated (`model.load_notes`).
"""
from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path

import torch
import yaml

from svslm.lm.model import LossConfig, SpeechLM
from svslm.lm.sequence import SequenceConfig
from svslm.lm.vocab import Vocabulary, VocabularyError
from svslm.utils.config import ConfigError, from_dict, read_yaml_mapping, set_by_path
from svslm.utils.fileio import atomic_dir

log = logging.getLogger(__name__)

WEIGHT_NAMES = ("model.pth", "valid.acc.ave.pth", "valid.loss.ave.pth", "valid.acc.best.pth", "valid.loss.best.pth")
EPOCH_FILE = re.compile(r"(\d+)epoch\.pth$")
FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
HF_CONFIG_DIR = "hf_config"  # svslm writes the backbone's config.json here, beside model.pth
SVSLM_KEY = "svslm"  # config.yaml entry with svslm's own settings (ESPnet ignores unknown keys)


class CheckpointError(ValueError):
    """A checkpoint that does not match the ESPnet-SpeechLM format or the model."""


def find_files(path: str | Path, config: str | Path | None = None) -> tuple[Path, Path, list[str]]:
    """(weights file, config.yaml, notes) of a checkpoint directory or weights file."""
    path = Path(path)
    notes = []
    if path.is_dir():
        candidates = [path / n for n in WEIGHT_NAMES if (path / n).is_file()]
        candidates += sorted((p for p in path.glob("*ave*.pth") if p not in candidates), key=lambda p: p.name)
        epochs = sorted((int(m.group(1)), p) for p in path.glob("*epoch.pth") if (m := EPOCH_FILE.search(p.name)))
        candidates += [p for _, p in reversed(epochs)]
        if not candidates:
            raise CheckpointError(f"{path}: no weights file (model.pth, valid.acc.ave.pth, <N>epoch.pth, ...)")
        weights = candidates[0]
        if len(candidates) > 1:
            notes.append(f"weights: {weights.name} chosen among {[p.name for p in candidates]}")
        directory = path
    elif path.is_file():
        weights, directory = path, path.parent
    else:
        raise CheckpointError(f"{path}: no such checkpoint directory or weights file")
    config_path = Path(config) if config is not None else directory / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: no config.yaml (an ESPnet-SpeechLM checkpoint has the trainer's "
                              "config.yaml beside its weights; pass --config)")
    return weights, config_path, notes


def read_config(config_path: Path) -> dict:
    config = read_yaml_mapping(config_path, CheckpointError)
    for key in ("token_list", "token_bias"):
        if key not in config:
            raise CheckpointError(f"{config_path}: missing '{key}'")
        value = config[key]
        if isinstance(value, str):  # ESPnet also takes a path to token_list.json / token_bias.json
            file = Path(value) if Path(value).is_file() else config_path.parent / Path(value).name
            if not file.is_file():
                raise CheckpointError(f"{config_path}: {key} names {value}, which is not there")
            config[key] = json.loads(file.read_text(encoding="utf-8"))
    if not isinstance(config["token_list"], list):
        raise CheckpointError(f"{config_path}: token_list must be a list")
    return config


def load_raw_state(weights: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """(state dict as stored, the key it was nested under or None), checked to be float tensors."""
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{weights}: cannot be read as a torch state dict: {err}") from err
    nested = next((k for k in ("model", "module") if isinstance(state, dict) and isinstance(state.get(k), dict)), None)
    if nested:
        state = state[nested]
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{weights}: not a state dict (nor one nested under 'model' or 'module')")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor) or v.dtype not in FLOAT_DTYPES]
    if bad:
        raise CheckpointError(f"{weights}: entries that are not float tensors: {bad[:10]}")
    return state, nested


def read_state(weights: Path, notes: list[str]) -> dict[str, torch.Tensor]:
    """The flat float32 state dict of a weights file (nesting and dtype noted)."""
    state, nested = load_raw_state(weights)
    if nested:
        notes.append(f"weights nested under '{nested}' (taken from there)")
    dtypes = sorted({str(v.dtype).replace("torch.", "") for v in state.values()})
    if dtypes != ["float32"]:
        notes.append(f"weights stored as {dtypes}, computed in float32")
    return {k: v.float() for k, v in state.items()}


def resolve_hf_config(config: dict, config_path: Path, notes: list[str]) -> dict:
    """The backbone's HF config.json, from `transformer_conf.hf_model_tag`."""
    if config.get("transformer", "huggingface") != "huggingface":
        raise CheckpointError(f"{config_path}: transformer is {config['transformer']!r}; svslm reads the "
                              "'huggingface' backbone only")
    tconf = config.get("transformer_conf") or {}
    tag = tconf.get("hf_model_tag")
    directory = config_path.parent
    if not tag:
        raise CheckpointError(f"{config_path}: transformer_conf.hf_model_tag is missing: it names the HF "
                              "backbone whose config.json gives the geometry")
    for base, how in ((directory, "relative to the checkpoint"), (Path.cwd(), "relative to the working directory")):
        cand = Path(tag) if Path(tag).is_absolute() else base / tag
        if (cand / "config.json").is_file():
            notes.append(f"geometry: {cand / 'config.json'} (hf_model_tag {tag!r}, {how})")
            return json.loads((cand / "config.json").read_text(encoding="utf-8"))
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(tag, "config.json", revision=tconf.get("revision"))
    except ValueError:  # not a valid repo id (HFValidationError)
        cached = None
    if isinstance(cached, str):
        notes.append(f"geometry: {cached} (hf_model_tag {tag!r}, from the local HF cache)")
        return json.loads(Path(cached).read_text(encoding="utf-8"))
    copy_path = directory / HF_CONFIG_DIR / "config.json"
    if copy_path.is_file():
        notes.append(f"geometry: {copy_path} (svslm's copy of {tag!r}'s config.json)")
        return json.loads(copy_path.read_text(encoding="utf-8"))
    raise CheckpointError(
        f"{config_path}: transformer_conf.hf_model_tag {tag!r}: no {directory / tag}/config.json, no ./{tag}/config.json "
        f"and not in the local HF cache. Only its config.json is needed (the weights are in the checkpoint): "
        f"`huggingface-cli download {tag} config.json`, or put it at {copy_path}")


def load_state_dict_into(model: SpeechLM, state: dict[str, torch.Tensor], where: str) -> None:
    """Copy `state` into `model`, or raise naming every missing/unexpected key and bad shape."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mismatched = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys ({len(missing)}): {missing}")
    if unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {unexpected}")
    if mismatched:
        problems.append(f"shape mismatches ({len(mismatched)}): {mismatched}")
    if problems:
        raise CheckpointError(f"{where} does not fit the model:\n  " + "\n  ".join(problems))
    model.load_state_dict(state, strict=True)


def _drop_criterion_aliases(state: dict[str, torch.Tensor], where: str, notes: list[str]) -> None:
    """`criterion.lm_head.weight` is the loss module's alias of corelm.lm_head.weight."""
    alias = state.pop("criterion.lm_head.weight", None)
    head = state.get("corelm.lm_head.weight")
    if alias is None or head is None:
        return
    if alias.shape != head.shape:
        notes.append(f"criterion.lm_head.weight {tuple(alias.shape)} is a stale copy (as ESPnet's vocabulary "
                     f"extension leaves it); corelm.lm_head.weight {tuple(head.shape)} used")
    elif not torch.equal(alias, head):
        raise CheckpointError(f"{where}: criterion.lm_head.weight differs from corelm.lm_head.weight; they are one "
                              "tensor in ESPnet's model, so this file was edited inconsistently")


def _sequence_config(config: dict, where: str) -> SequenceConfig:
    own = (config.get(SVSLM_KEY) or {}).get("sequence", {})
    data = {k: config[k] for k in ("loss_region", "speaker_prompt_length", "pad_speaker_prompt") if k in config}
    data.update({k: v for k, v in own.items() if k in ("ssl_id0", "n_ctx")})
    data.setdefault("n_ctx", (config.get("transformer_conf") or {}).get("n_ctx", 8192))
    try:
        return from_dict(SequenceConfig, data, where)
    except ConfigError as err:
        raise CheckpointError(str(err)) from err


def load_checkpoint(path: str | Path, loss: LossConfig | None = None, attn_implementation: str = "sdpa",
                    config: str | Path | None = None, overrides: list[str] | None = None) -> SpeechLM:
    """Build the model an ESPnet-SpeechLM checkpoint describes and load its weights (float32, CPU).

    `path`: a checkpoint directory or a weights file; `config`: a config.yaml other than the one
    beside it; `overrides`: `key.path=value` edits of that config.yaml. `loss`: the loss settings
    (default: the config's modality_weights and loss_type).
    The returned model carries `config_yaml`, `sequence` (SequenceConfig) and `load_notes`."""
    weights, config_path, notes = find_files(path, config)
    cfg = read_config(config_path)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise CheckpointError(f"override {item!r} must look like key.path=value")
        set_by_path(cfg, key, yaml.safe_load(raw))
        notes.append(f"config.yaml override {key} = {raw}")
    try:
        vocab = Vocabulary(cfg["token_list"], cfg["token_bias"], source=f"{config_path} token_list")
    except VocabularyError as err:
        raise CheckpointError(str(err)) from err
    if not isinstance(cfg["token_bias"], dict) or not all(isinstance(v, list) for v in cfg["token_bias"].values()):
        notes.append("token_bias given as raw start offsets; processed into ranges as ESPnet does")
    nq = cfg.get("codec_token_in_use", vocab.nq)
    if nq != vocab.nq:
        raise CheckpointError(f"{config_path}: codec_token_in_use {nq} but the token list has {vocab.nq} streams")
    if cfg.get("corelm", "ar_delay") != "ar_delay":
        raise CheckpointError(f"{config_path}: corelm is {cfg['corelm']!r}; svslm implements ar_delay only")
    if (cfg.get("corelm_conf") or {}).get("share_emb"):
        raise CheckpointError(f"{config_path}: corelm_conf.share_emb true (tied emb/lm_head) is not supported")
    hf_config = resolve_hf_config(cfg, config_path, notes)
    state = read_state(weights, notes)
    _drop_criterion_aliases(state, str(weights), notes)
    for key in ("corelm.emb.weight", "corelm.lm_head.weight", "corelm.head_emb.weight"):
        if key not in state:
            raise CheckpointError(f"{weights}: {key} is missing")
    emb = state["corelm.emb.weight"]
    if emb.shape[0] != len(vocab):
        raise CheckpointError(f"{weights}: corelm.emb.weight has {emb.shape[0]} rows but token_list has {len(vocab)} tokens")
    if emb.shape[1] != hf_config.get("hidden_size"):
        raise CheckpointError(f"{weights}: corelm.emb.weight is {emb.shape[1]} wide but the HF config's hidden_size "
                              f"is {hf_config.get('hidden_size')}: the config.json does not describe these weights")
    head_rows = state["corelm.head_emb.weight"].shape[0]
    if head_rows != nq:
        notes.append(f"head_emb has {head_rows} rows; the first {nq} are used")
    if loss is None:
        weights_conf = cfg.get("modality_weights")
        loss = LossConfig(loss_type=cfg.get("loss_type", "mean"),
                          **({"modality_weights": dict(weights_conf)} if weights_conf else {}))
    try:
        model = SpeechLM(None, vocab, loss, attn_implementation, hf_config=hf_config, head_rows=head_rows)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{config_path}: cannot build the backbone from its HF config: {err}") from err
    load_state_dict_into(model, state, str(weights))
    model.config_yaml = cfg
    model.sequence = _sequence_config(cfg, str(config_path))
    model.load_notes = notes
    for note in notes:
        log.info("%s: %s", weights, note)
    return model


def espnet_config(model: SpeechLM, sequence: SequenceConfig | None = None, extra: dict | None = None) -> dict:
    """The config.yaml for `model`: its source's keys, with what ESPnet's build_model needs set."""
    sequence = sequence or getattr(model, "sequence", None) or SequenceConfig()
    config = copy.deepcopy(getattr(model, "config_yaml", None) or {})
    tconf = dict(config.get("transformer_conf") or {})
    tconf.setdefault("hf_model_tag", HF_CONFIG_DIR)
    tconf.setdefault("dtype", "float32")  # ESPnet's default bfloat16 would round the stored weights
    nq = model.nq
    config.update({
        "token_list": list(model.vocab.token_list),
        "token_bias": {k: list(v) for k, v in model.vocab.token_bias.items()},
        "codec_token_per_frame": config.get("codec_token_per_frame", nq),
        "codec_token_in_use": nq,
        "audio_modality": "codec_ssl",
        "loss_region": sequence.loss_region,
        "speaker_prompt_length": sequence.speaker_prompt_length,
        "pad_speaker_prompt": sequence.pad_speaker_prompt,
        "modality_weights": dict(model.loss_conf.modality_weights),
        "loss_type": model.loss_conf.loss_type,
        "transformer": "huggingface",
        "transformer_conf": tconf,
        "corelm": "ar_delay",
        "corelm_conf": {**(config.get("corelm_conf") or {}), "share_emb": False},
        "model": config.get("model", "espnet"),
        "model_conf": config.get("model_conf", {}),
    })
    for key, default in (("collect_stats", False), ("init", None), ("deepspeed_config", None),
                         ("encoder_decoder_format", False), ("image_token_per_patch", 1), ("use_preprocessor", True),
                         ("init_param", []), ("ignore_init_mismatch", False), ("required", ["output_dir", "token_list", "token_bias"])):
        config.setdefault(key, default)
    config[SVSLM_KEY] = {**(config.get(SVSLM_KEY) or {}),
                         "sequence": {"ssl_id0": sequence.ssl_id0, "n_ctx": sequence.n_ctx}}
    config.update(extra or {})
    return config


def espnet_state(model: SpeechLM, state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """float32 state dict with `criterion.lm_head.weight` as the same tensor as corelm.lm_head.weight."""
    state = state if state is not None else model.state_dict()
    state = {k: v.detach().float().cpu().contiguous() for k, v in state.items() if not k.startswith("criterion.")}
    state["criterion.lm_head.weight"] = state["corelm.lm_head.weight"]
    return state


def save_checkpoint(model: SpeechLM, model_dir: str | Path, state: dict[str, torch.Tensor] | None = None,
                    extra: dict | None = None, sequence: SequenceConfig | None = None) -> None:
    """Write `model_dir` = config.yaml + model.pth + hf_config/config.json, replacing it whole.
    `state` overrides the model's weights (e.g. an average); `extra` adds config.yaml keys."""
    model_dir = Path(model_dir)
    config = espnet_config(model, sequence, extra)
    with atomic_dir(model_dir) as tmp:
        torch.save(espnet_state(model, state), tmp / "model.pth")
        (tmp / HF_CONFIG_DIR).mkdir()
        (tmp / HF_CONFIG_DIR / "config.json").write_text(json.dumps(model.hf_config, indent=2) + "\n")
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
