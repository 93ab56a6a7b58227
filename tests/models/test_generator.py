"""Generator: shapes for any aspect ratio, hints optional, guide decoders placed at the mid level's entry and exit."""
from __future__ import annotations

import pytest
import torch

from models.generator import CONFIGS, Generator, GeneratorConfig, count_flops, generator_config

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def gen() -> Generator:
    torch.manual_seed(0)
    return Generator("tiny")


def inputs(b, h, w, hints=True):
    sk = torch.rand(b, 1, h, w)
    st = torch.randn(b, 4096)
    hi = None
    if hints:
        hi = torch.zeros(b, 4, h, w)
        hi[:, :3, h // 2, w // 2] = torch.tensor([1.0, -1.0, 0.0])
        hi[:, 3, h // 2, w // 2] = 1
    return sk, st, hi


@pytest.mark.parametrize("h,w", [(16, 16), (16, 48), (40, 8), (4, 4)])
@pytest.mark.parametrize("use_hints", [False, True])
def test_forward_shapes(gen, h, w, use_hints):
    sk, st, hi = inputs(2, h, w, use_hints)
    with torch.no_grad():
        out = gen(sk, st, hi)
    assert out.shape == (2, 3, h, w)
    assert out.abs().max() <= 1.0 and torch.isfinite(out).all()


def test_guides_shapes_and_only_when_asked(gen):
    sk, st, hi = inputs(1, 16, 24)
    calls = []
    hooks = [m.register_forward_hook(lambda *a: calls.append(1)) for m in (gen.guide1, gen.guide2)]
    try:
        with torch.no_grad():
            out = gen(sk, st, hi)
            assert isinstance(out, torch.Tensor) and not calls
            out2, g1, g2 = gen(sk, st, hi, return_guides=True)
    finally:
        for h in hooks:
            h.remove()
    assert len(calls) == 2
    assert torch.equal(out, out2)
    assert g1.shape == (1, 1, 16, 24) and g2.shape == (1, 3, 16, 24)


def test_size_must_match_stride(gen):
    assert gen.stride == 4 and Generator("compact").stride == 16
    sk, st, _ = inputs(1, 18, 16)
    with pytest.raises(ValueError, match="multiple of the generator stride 4"):
        gen(sk, st)


def grad_norms(module_list):
    return [sum(float(p.grad.norm()) for p in m.parameters() if p.grad is not None) for m in module_list]


def test_every_mid_block_gets_gradient_through_guide2():
    torch.manual_seed(1)
    g = Generator(GeneratorConfig(channels=(8, 16, 32), level_blocks=(1,), mid_blocks=3, style_hidden=64,
                                  guide_width=16, norm_groups=4))
    sk, st, hi = inputs(2, 16, 16)
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    out, g1, g2 = g(sk, st, hi, return_guides=True)
    (out - target).abs().mean().backward(retain_graph=True)
    g.zero_grad()
    # The guide at the mid level's exit alone reaches every mid block: no skip connection can
    # short-circuit it, which is the paper's cure for the lazy U-net.
    (g2 - target).abs().mean().backward(retain_graph=True)
    norms = grad_norms(g.mid)
    assert all(n > 1e-4 for n in norms), norms
    assert all(n > 1e-4 for n in grad_norms(g.style.to_blocks))
    g.zero_grad(set_to_none=True)
    # Guide 1 reads the mid level's entry: it trains the encoder, not the mid blocks or the style path.
    (g1 - target.mean(1, keepdim=True)).abs().mean().backward()
    assert all(n == 0 for n in grad_norms(g.mid))
    assert grad_norms([g.style])[0] == 0
    assert grad_norms(g.downs)[-1] > 1e-4


def test_style_and_hints_change_the_output(gen):
    sk, st, hi = inputs(1, 16, 16)
    with torch.no_grad():
        a = gen(sk, st)
        b = gen(sk, torch.randn(1, 4096))
        c = gen(sk, st, hi)
        d = gen(sk, st, torch.zeros_like(hi))
    assert (a - b).abs().mean() > 1e-4  # the style survives the mid-level normalisation
    assert (a - c).abs().mean() > 1e-6
    assert torch.equal(a, d)  # no hints == zero hints


def test_configs():
    for name, cfg in CONFIGS.items():
        assert GeneratorConfig.from_dict(cfg.to_dict()) == cfg
    assert generator_config("compact") == CONFIGS["compact"]
    assert generator_config("compact") is not CONFIGS["compact"]
    with pytest.raises(ValueError, match="unknown generator config"):
        generator_config("huge")
    with pytest.raises(ValueError, match="unknown generator config keys"):
        GeneratorConfig.from_dict({"channels": [8, 16], "level_blocks": [], "bogus": 1})
    with pytest.raises(ValueError, match="level_blocks"):
        GeneratorConfig(channels=(8, 16, 32), level_blocks=())


def test_flop_budgets():
    # "paper" is sized like the paper (about 150 GFLOP per 512x512 panel); "compact" is the CPU default.
    with torch.device("meta"):  # count without computing
        paper = count_flops(Generator("paper"), size=512)
        compact = count_flops(Generator("compact"), size=512)
    assert 130e9 < paper < 170e9
    assert compact < 25e9
