"""The lite pack's models and losses in torch, and their export to what the pack ships.

Training needs the ``train`` extra (torch, onnx).  This module imports torch; the pack itself
(:mod:`m3cvc_codec.packs.lite`) never imports it and runs the exported ONNX files with
onnxruntime.  ``tools/train_lite.py`` is the command line: data, training loops, manifest,
evaluation (docs/lite-pack.md).

One small fully-convolutional VQ autoencoder per grid variant ("1/16": downsample 16,
"1/8": downsample 8), vocabulary 256, codebook dimension 16:

    encoder -> post-encoder (1x1 convs to d, RMS-normalised) -> nearest codeword (Euclidean, 256 x d,
    EMA updates + dead-code restarts) -> decoder (upsampling convnet) -> frame

Loss (:func:`training_loss`): L1 + SSIM_WEIGHT * (1 - SSIM at two scales) + BETA * ||z - sg(z_q)||^2
(the commit loss; the codebook follows the encoder by EMA, so there is no codebook loss term).
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BETA",
    "CODE_DIM",
    "DEAD_FRACTION",
    "EMA_DECAY",
    "RESTART_EVERY",
    "SSIM_WEIGHT",
    "VARIANTS",
    "VOCAB",
    "VQAE",
    "WEIGHT_FILES",
    "Decoder",
    "EMAQuantizer",
    "Encoder",
    "ResBlock",
    "count_params",
    "export_decoder",
    "export_variant",
    "load_onnx_weights",
    "reconstruction_loss",
    "ssim",
    "ssim2",
    "training_loss",
]

VOCAB = 256
CODE_DIM = 16
#: Per variant: weights folder, downsample, encoder/decoder widths per scale 1/2, 1/4, ...
VARIANTS = {
    "1/16": {"dir": "ds16", "downsample": 16, "channels": (24, 48, 96, 128)},
    "1/8": {"dir": "ds8", "downsample": 8, "channels": (24, 48, 128)},
}
BETA = 0.25  # commit-loss weight
SSIM_WEIGHT = 0.2
EMA_DECAY = 0.99
#: Every RESTART_EVERY steps (in the first 90% of training), a code used less than
#: DEAD_FRACTION of the mean use since the last check is restarted at a random encoder output.
DEAD_FRACTION = 0.03
RESTART_EVERY = 20

#: The files of a variant's folder, as the pack reads them.
WEIGHT_FILES = ("encoder.onnx", "decoder.onnx", "codebook.npy", "prior.npy")


# ---------------------------------------------------------------------------
# Models


def act() -> nn.Module:
    return nn.LeakyReLU(0.2)


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1)
        self.c2 = nn.Conv2d(c, c, 3, padding=1)
        self.a = act()
        with torch.no_grad():
            self.c2.weight.mul_(0.1)
            self.c2.bias.zero_()

    def forward(self, x):
        return x + self.c2(self.a(self.c1(self.a(x))))


class Encoder(nn.Module):
    """frame [0,1] N x 3 x H x W -> (h: N x d x H/ds x W/ds, features: N x C x H/ds x W/ds)."""

    def __init__(self, channels, d):
        super().__init__()
        layers = [nn.PixelUnshuffle(2), nn.Conv2d(12, channels[0], 3, padding=1), act()]
        for cin, cout in itertools.pairwise(channels):
            layers += [nn.Conv2d(cin, cout, 4, stride=2, padding=1), ResBlock(cout)]
        layers += [ResBlock(channels[-1])]
        self.body = nn.Sequential(*layers)
        self.post = nn.Sequential(act(), nn.Conv2d(channels[-1], channels[-1], 1), act(), nn.Conv2d(channels[-1], d, 1))

    def forward(self, x):
        f = self.body(x * 2 - 1)
        h = self.post(f)
        # RMS-normalise each latent vector (no parameters): fixes the latents' scale, so the
        # commit loss cannot be lowered by shrinking or blown up by growing them
        return h * torch.rsqrt(h.pow(2).mean(1, keepdim=True) + 1e-6), f


class Decoder(nn.Module):
    """quantised latents N x d x h x w -> frame N x 3 x h*ds x w*ds (about [0,1])."""

    def __init__(self, channels, d):
        super().__init__()
        c = channels[-1]
        layers = [nn.Conv2d(d, c, 3, padding=1), ResBlock(c), ResBlock(c)]
        for i, (cin, cout) in enumerate(itertools.pairwise(channels[::-1])):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1)]
            # no residual block at 1/2 scale: it would cost as much as the rest of the decoder
            layers += [ResBlock(cout)] if i < len(channels) - 2 else [act()]
        layers += [act(), nn.Conv2d(channels[0], 12, 3, padding=1), nn.PixelShuffle(2)]
        self.body = nn.Sequential(*layers)

    def forward(self, zq):
        return self.body(zq) + 0.5


class EMAQuantizer(nn.Module):
    """Nearest codeword (Euclidean) with EMA codebook updates and dead-code restarts."""

    def __init__(self, k, d, decay=EMA_DECAY, eps=1e-5):
        super().__init__()
        self.k, self.d, self.decay, self.eps = k, d, decay, eps
        self.register_buffer("embed", torch.zeros(k, d))
        self.register_buffer("cluster_size", torch.zeros(k))
        self.register_buffer("embed_avg", torch.zeros(k, d))
        self.register_buffer("initted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("usage", torch.zeros(k))  # assignments since the last restart check
        self.restarts = 0

    def nearest(self, flat):
        dist = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.embed.t() + self.embed.pow(2).sum(1)[None]
        return dist.argmin(1)

    def forward(self, z, gen=None, restart=False):
        n, d, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        if self.training and not bool(self.initted):
            with torch.no_grad():
                pick = torch.randint(0, flat.shape[0], (self.k,), generator=gen)
                self.embed.copy_(flat[pick].detach())
                self.embed_avg.copy_(self.embed)
                self.cluster_size.fill_(flat.shape[0] / self.k)
                self.embed_avg.mul_(flat.shape[0] / self.k)
                self.initted.fill_(True)
        idx = self.nearest(flat.detach())
        zq = self.embed[idx]
        if self.training:
            with torch.no_grad():
                onehot = F.one_hot(idx, self.k).type(flat.dtype)
                self.usage.add_(onehot.sum(0))
                self.cluster_size.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
                self.embed_avg.mul_(self.decay).add_(onehot.t() @ flat.detach(), alpha=1 - self.decay)
                total = self.cluster_size.sum()
                size = (self.cluster_size + self.eps) / (total + self.k * self.eps) * total
                self.embed.copy_(self.embed_avg / size[:, None])
                if restart:
                    dead = self.usage < DEAD_FRACTION * self.usage.mean()
                    self.usage.zero_()
                    nd = int(dead.sum())
                    if nd:
                        pick = torch.randint(0, flat.shape[0], (nd,), generator=gen)
                        fresh = flat.detach()[pick]
                        fresh = fresh + 0.01 * fresh.std() * torch.randn(fresh.shape, generator=gen)
                        self.embed[dead] = fresh
                        self.embed_avg[dead] = fresh * self.cluster_size.mean()
                        self.cluster_size[dead] = self.cluster_size.mean()
                        self.restarts += nd
        zq = zq.view(n, h, w, d).permute(0, 3, 1, 2)
        commit = F.mse_loss(z, zq.detach())
        zq_st = z + (zq - z).detach()
        return zq_st, idx.view(n, h, w), commit


class VQAE(nn.Module):
    """Encoder, quantiser and decoder of one variant; ``forward`` -> (frame, indices, commit loss)."""

    def __init__(self, channels, d=CODE_DIM, k=VOCAB):
        super().__init__()
        self.encoder = Encoder(channels, d)
        self.quant = EMAQuantizer(k, d)
        self.decoder = Decoder(channels, d)

    def forward(self, x, gen=None, restart=False):
        h, _ = self.encoder(x)
        zq, idx, commit = self.quant(h, gen, restart)
        return self.decoder(zq), idx, commit


def count_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------
# Losses


def _gauss(size=7, sigma=1.5):
    g = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(g**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


#: The SSIM window: a 7x7 Gaussian (sigma 1.5), one per RGB channel.
_WIN = _gauss()


def ssim(x, y):
    """Mean SSIM of two N x 3 x H x W batches in [0, 1] (7x7 Gaussian window)."""
    c1, c2 = 0.01**2, 0.03**2
    win = _WIN
    mx = F.conv2d(x, win, groups=3)
    my = F.conv2d(y, win, groups=3)
    sxx = F.conv2d(x * x, win, groups=3) - mx * mx
    syy = F.conv2d(y * y, win, groups=3) - my * my
    sxy = F.conv2d(x * y, win, groups=3) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.mean()


def ssim2(x, y):
    """SSIM averaged over full and half resolution (a two-scale MS-SSIM-like term)."""
    return 0.5 * (ssim(x, y) + ssim(F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)))


def reconstruction_loss(y, x, ssim_weight: float = SSIM_WEIGHT):
    """``(loss, l1, ssim)``: L1 + ssim_weight * (1 - two-scale SSIM) of output ``y`` against ``x``
    (the decoder fine-tuning's whole loss)."""
    l1 = (y - x).abs().mean()
    s = ssim2(y, x)
    return l1 + ssim_weight * (1 - s), l1, s


def training_loss(y, x, commit, ssim_weight: float = SSIM_WEIGHT):
    """``(loss, l1, ssim)``: :func:`reconstruction_loss` + BETA * the commit loss."""
    loss, l1, s = reconstruction_loss(y, x, ssim_weight)
    return loss + BETA * commit, l1, s


# ---------------------------------------------------------------------------
# Export: ONNX files (float16-stored weights) and numpy arrays, as the pack reads them


def export_variant(model: VQAE, out_dir: Path, prior: np.ndarray) -> None:
    """Write ``encoder.onnx``, ``decoder.onnx``, ``codebook.npy`` and ``prior.npy`` of ``model``
    into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    enc, dec = model.encoder, model.decoder
    x = torch.rand(1, 3, 64, 96)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            enc,
            (x,),
            str(out_dir / "encoder.onnx"),
            dynamo=False,
            opset_version=17,
            input_names=["frame"],
            output_names=["h", "features"],
            dynamic_axes={
                "frame": {0: "n", 2: "height", 3: "width"},
                "h": {0: "n", 2: "grid_h", 3: "grid_w"},
                "features": {0: "n", 2: "grid_h", 3: "grid_w"},
            },
        )
        with torch.no_grad():
            h, _ = enc(x)
    _strip_onnx(out_dir / "encoder.onnx")
    export_decoder(dec, h, out_dir / "decoder.onnx")
    np.save(out_dir / "codebook.npy", model.quant.embed.detach().numpy().astype(np.float32))
    np.save(out_dir / "prior.npy", prior.astype(np.int64))


def export_decoder(dec: Decoder, example_latents, path: Path) -> None:
    dec.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            dec,
            (example_latents,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["latents"],
            output_names=["frame"],
            dynamic_axes={"latents": {0: "n", 2: "grid_h", 3: "grid_w"}, "frame": {0: "n", 2: "height", 3: "width"}},
        )
    _strip_onnx(path)


def load_onnx_weights(module: nn.Module, path: Path) -> None:
    """Load a module's parameters from an ONNX file exported here (float16-stored initializers
    named after the parameters, see :func:`_strip_onnx`); every parameter must be found
    (ValueError otherwise)."""
    import onnx
    from onnx import numpy_helper

    found = {}
    for init in onnx.load(str(path)).graph.initializer:
        name = init.name.removesuffix("__f16")
        found[name] = torch.from_numpy(numpy_helper.to_array(init).astype(np.float32))
    state = module.state_dict()
    missing = sorted(set(state) - set(found))
    if missing:
        raise ValueError(f"{path}: no weights for {', '.join(missing)}")
    module.load_state_dict({k: found[k] for k in state})


def _strip_onnx(path: Path) -> None:
    """Store the float32 weights as float16 (each followed by a Cast back to float32, which
    onnxruntime folds when the session is made, so inference runs in float32), and drop the
    producer version and doc strings so the file depends on the weights alone."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(path))
    m.producer_version = ""
    m.doc_string = ""
    g = m.graph
    casts, keep = [], []
    for init in g.initializer:
        arr = numpy_helper.to_array(init)
        if init.data_type == TensorProto.FLOAT and arr.size >= 16:
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "__f16")
            keep.append(half)
            casts.append(
                helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "__cast")
            )
        else:
            keep.append(init)
    del g.initializer[:]
    g.initializer.extend(keep)
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    for node in g.node:
        node.doc_string = ""
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
