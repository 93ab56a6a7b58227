"""Training state in safetensors: optimiser state dicts (and any extra modules) without pickle.

An optimiser's `state_dict()` is {"state": {param_index: {name: tensor | number}}, "param_groups":
[...]}. Tensors go into the safetensors file under "<prefix>.state.<index>.<name>"; everything else
(numbers in the state, the param groups, the step counter, the run's config) goes into the file's
JSON metadata. Loading rebuilds the exact dict, so `optimizer.load_state_dict` continues bit for bit.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file


def flatten_optimizer(prefix: str, state_dict: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.state.{index}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith(prefix + ".state."):
            continue
        index, name = key[len(prefix) + 7:].split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, entry in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entry)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_state(path: str | Path, *, step: int, optimizers: dict[str, torch.optim.Optimizer],
                        modules: dict[str, torch.nn.Module] | None = None, extra: dict | None = None) -> None:
    """Write optimisers (and modules' state dicts, e.g. the discriminator) to one safetensors file.

    Written to a temporary name and renamed, so a run killed mid-write keeps its previous checkpoint.
    """
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"step": int(step), "optimizers": {}, "modules": sorted(modules or {}),
                            "extra": extra or {}}
    for name, opt in optimizers.items():
        t, m = flatten_optimizer(f"optim.{name}", opt.state_dict())
        tensors.update(t)
        meta["optimizers"][name] = m
    for name, module in (modules or {}).items():
        for key, value in module.state_dict().items():
            tensors[f"module.{name}.{key}"] = value.detach().contiguous().cpu()
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"panelpaint_training_state": json.dumps(meta)})
    tmp.replace(path)


def load_training_state(path: str | Path, *, optimizers: dict[str, torch.optim.Optimizer] | None = None,
                        modules: dict[str, torch.nn.Module] | None = None,
                        optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Restore what `save_training_state` wrote into the given optimisers and modules; returns the metadata.

    Names listed in `optional` are left as they are when the file lacks them (e.g. a discriminator
    added when a stage-1 run continues as stage 2); any other missing name is an error.
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("panelpaint_training_state")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise ValueError(f"cannot read training state {path}: {exc}") from exc
    if raw is None:
        raise ValueError(f"{path} is not a panelpaint training state (no metadata)")
    meta = json.loads(raw)
    for name, opt in (optimizers or {}).items():
        if name not in meta["optimizers"]:
            if name in optional:
                continue
            raise ValueError(f"training state {path} has no optimiser {name!r}")
        opt.load_state_dict(unflatten_optimizer(f"optim.{name}", tensors, meta["optimizers"][name]))
    for name, module in (modules or {}).items():
        prefix = f"module.{name}."
        sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        if not sd:
            if name in optional:
                continue
            raise ValueError(f"training state {path} has no module {name!r}")
        module.load_state_dict(sd)
    return meta
