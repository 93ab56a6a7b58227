"""Style encoders: torchvision-compatible VGG19 (pre-ReLU fc1) and the painting encoder's colour sensitivity."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from models.style_encoders import (PaintingStyleEncoder, VGG19StyleEncoder, build_style_encoder,
                                   soft_histogram)

torch.set_num_threads(1)

CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
CONV_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512]


def torchvision_vgg19_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's vgg19 key names and shapes, written out here independently of the encoder."""
    shapes, c_in = {}, 3
    for i, c in zip(CONV_INDICES, CONV_WIDTHS):
        shapes[f"features.{i}.weight"] = (c, c_in, 3, 3)
        shapes[f"features.{i}.bias"] = (c,)
        c_in = c
    for i, (o, n) in {0: (4096, 25088), 3: (4096, 4096), 6: (1000, 4096)}.items():
        shapes[f"classifier.{i}.weight"] = (o, n)
        shapes[f"classifier.{i}.bias"] = (o,)
    return shapes


def torchvision_vgg19_state(dtype=torch.float16) -> dict[str, torch.Tensor]:
    """Random tensors under those names, scaled so activations stay in range."""
    g = torch.Generator().manual_seed(0)
    state = {}
    for k, shape in torchvision_vgg19_shapes().items():
        fan_in = 1
        for n in shape[1:]:
            fan_in *= n
        scale = (2 / fan_in) ** 0.5 if k.endswith("weight") else 0.05
        state[k] = (torch.randn(shape, generator=g) * scale).to(dtype)
    return state


@pytest.mark.slow
def test_vgg19_loads_torchvision_state_and_returns_pre_relu_fc1(tmp_path):
    state = torchvision_vgg19_state()
    pth = tmp_path / "vgg19.pth"
    torch.save(state, pth)  # the user's torchvision-format file, as torchvision ships it
    enc = VGG19StyleEncoder.from_torchvision_file(pth)
    assert torch.equal(enc.classifier[0].weight, state["classifier.0.weight"].float())
    assert torch.equal(enc.features[34].weight, state["features.34.weight"].float())

    captured = {}
    enc.classifier[0].register_forward_hook(lambda m, i, o: captured.update(x=i[0]))
    images = torch.rand(2, 3, 100, 150)
    with torch.no_grad():
        out = enc(images)
    assert out.shape == (2, 4096)
    assert (out < 0).any()  # no ReLU after fc1
    assert captured["x"].shape == (2, 25088)
    manual = F.linear(captured["x"], state["classifier.0.weight"].float(), state["classifier.0.bias"].float())
    assert torch.allclose(out, manual, atol=1e-4)

    # The same keys in safetensors load identically; fc2/fc3 are not required.
    st = tmp_path / "vgg19.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith(("classifier.3", "classifier.6"))}, str(st))
    enc2 = build_style_encoder("vgg19", weights=st)
    assert all(torch.equal(a, b) for a, b in zip(enc.state_dict().values(), enc2.state_dict().values()))
    del enc2

    # A panelpaint weights file can carry the VGG19 encoder (fp16 is exact here: the source is fp16).
    from models.generator import Generator
    from models.weights_io import load_weights, save_weights

    path = save_weights(tmp_path / "with_vgg.safetensors", Generator("tiny"), enc, version="vgg", dtype=torch.float16)
    _, enc3, meta = load_weights(path)
    assert meta["config"]["style_encoder"] == {"kind": "vgg19", "config": {}}
    assert isinstance(enc3, VGG19StyleEncoder)
    assert torch.equal(enc3.classifier[0].weight, enc.classifier[0].weight)


def test_vgg19_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="PANELPAINT_VGG19_WEIGHTS"):
        VGG19StyleEncoder.from_torchvision_file(tmp_path / "nope.pth")
    bad = {"features.0.weight": torch.zeros(64, 3, 5, 5), "features.0.bias": torch.zeros(64)}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"not a torchvision VGG19 state dict.*missing keys.*wrong shapes"):
        VGG19StyleEncoder.from_torchvision_file(tmp_path / "bad.pth")
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        VGG19StyleEncoder.from_torchvision_file(tmp_path / "list.pth")


def test_vgg19_layout_matches_torchvision_keys():
    with torch.device("meta"):
        enc = VGG19StyleEncoder()
    shapes = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    ref = {k: v for k, v in torchvision_vgg19_shapes().items() if not k.startswith(("classifier.3", "classifier.6"))}
    assert shapes == ref


def test_painting_encoder_interface_and_colour_sensitivity():
    torch.manual_seed(0)
    enc = PaintingStyleEncoder(widths=(8, 16), image_size=32, hist_bins=4, hist_size=16, hidden=32).eval()
    red = torch.zeros(1, 3, 40, 60)
    red[:, 0] = 0.9
    blue = torch.zeros(1, 3, 40, 60)
    blue[:, 2] = 0.9
    with torch.no_grad():
        a, b = enc(red), enc(blue)
        c = enc(torch.rand(3, 3, 17, 90))
    assert a.shape == (1, 4096) and c.shape == (3, 4096)
    assert (a - b).abs().mean() > 1e-3
    # Gradients reach the colour histogram path (it is trained end to end).
    x = torch.rand(1, 3, 20, 20, requires_grad=True)
    enc(x).sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\[B,3,H,W\]"):
        enc(torch.rand(1, 1, 20, 20))
    again = build_style_encoder("painting", **enc.config)
    assert again.config == enc.config
    with pytest.raises(ValueError, match="unknown style encoder"):
        build_style_encoder("clip")


def test_soft_histogram_is_a_distribution():
    img = torch.rand(2, 3, 10, 10)
    h = soft_histogram(img, 4)
    assert h.shape == (2, 64)
    assert torch.allclose(h.sum(1), torch.ones(2), atol=1e-5)
    pure = torch.zeros(1, 3, 4, 4)  # black: mass in the first cell
    assert soft_histogram(pure, 4, sharpness=4.0)[0].argmax() == 0
