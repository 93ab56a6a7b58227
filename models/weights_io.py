"""Save and load panelpaint weights: one safetensors file with the generator, the style encoder and
their configurations in its metadata; never pickle (the layout: docs/architecture.md, "The networks")."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from models.generator import Generator, GeneratorConfig
from models.style_encoders import build_style_encoder

FORMAT = "panelpaint"
FORMAT_VERSION = "1"
RESERVED = {"format", "version", "model_version", "config", "inference_only"}
GUIDE_PREFIXES = ("generator.guide1.", "generator.guide2.")


def save_weights(path: str | Path, generator: Generator, style_encoder: torch.nn.Module, *, version: str,
                 extra_meta: dict | None = None, dtype: torch.dtype | None = None,
                 inference_only: bool = False) -> Path:
    """Write both networks to `path` (.safetensors). dtype=torch.float16 halves a shipped file;
    floating tensors are cast, loading casts them back to float32."""
    path = Path(path)
    tensors = {}
    for prefix, module in (("generator.", generator), ("style_encoder.", style_encoder)):
        for k, v in module.state_dict().items():
            name = prefix + k
            if inference_only and name.startswith(GUIDE_PREFIXES):
                continue
            v = v.detach().cpu()
            if dtype is not None and v.is_floating_point():
                v = v.to(dtype)
            tensors[name] = v.contiguous()
    meta = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in (extra_meta or {}).items()}
    clash = RESERVED & set(meta)
    if clash:
        raise ValueError(f"extra_meta may not set reserved keys {sorted(clash)}")
    config = {"generator": generator.config.to_dict(),
              "style_encoder": {"kind": style_encoder.kind, "config": style_encoder.config}}
    meta.update(format=FORMAT, version=FORMAT_VERSION, model_version=str(version),
                config=json.dumps(config, sort_keys=True), inference_only=str(inference_only).lower())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # a crash mid-write never leaves a truncated weights file behind
    return path


def update_metadata(path: str | Path, updates: dict) -> Path:
    """Rewrite a weights file with `updates` merged into its metadata (the tensors stay byte for
    byte), atomically; e.g. `work_size`, the working size it measured best at."""
    path = Path(path)
    meta = dict(read_metadata(path))
    clash = RESERVED & set(updates)
    if clash:
        raise ValueError(f"cannot update reserved metadata keys {sorted(clash)}")
    meta.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in updates.items()})
    with safe_open(str(path), framework="pt", device="cpu") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a panelpaint weights file, checked for format and version."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a safetensors weights file ({exc})") from None
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not a panelpaint weights file (metadata format={meta.get('format')!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} has weights format version {meta.get('version')!r}; "
                         f"this panelpaint reads version {FORMAT_VERSION}")
    return meta


def load_weights(path: str | Path, map_location: str | torch.device = "cpu"):
    """-> (generator, style_encoder, meta), both in eval mode, float32, on `map_location`.

    meta is the file's metadata with "config" parsed from JSON.
    """
    path = Path(path)
    meta = dict(read_metadata(path))
    try:
        config = json.loads(meta["config"])
        gen_cfg = GeneratorConfig.from_dict(config["generator"])
        enc_kind, enc_cfg = config["style_encoder"]["kind"], config["style_encoder"]["config"]
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable config in metadata ({exc})") from None
    meta["config"] = config
    inference_only = meta.get("inference_only") == "true"

    with safe_open(str(path), framework="pt", device="cpu") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}

    generator = Generator(gen_cfg)
    with torch.device("meta") if enc_kind == "vgg19" else torch.device("cpu"):
        # VGG19 is 140M parameters: building it on "meta" skips an initialisation about to be replaced.
        style_encoder = build_style_encoder(enc_kind, **enc_cfg)
    for prefix, module in (("generator.", generator), ("style_encoder.", style_encoder)):
        part = {k[len(prefix):]: v.float() if v.is_floating_point() else v
                for k, v in tensors.items() if k.startswith(prefix)}
        expected = module.state_dict()
        missing = [k for k in expected if k not in part
                   and not (inference_only and (prefix + k).startswith(GUIDE_PREFIXES))]
        unexpected = [k for k in part if k not in expected]
        wrong = [k for k in part if k in expected and part[k].shape != expected[k].shape]
        if missing or unexpected or wrong:
            raise ValueError(f"{path}: {prefix[:-1]} tensors do not match its config "
                             f"(missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shape {wrong[:5]})")
        module.load_state_dict(part, strict=not inference_only or prefix != "generator.",
                               assign=prefix == "style_encoder.")
    generator.to(map_location).eval()
    style_encoder.to(map_location).eval()
    return generator, style_encoder, meta
