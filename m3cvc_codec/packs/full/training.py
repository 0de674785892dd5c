"""Training the full pack's keyframe codec (paper III-A): the losses, the trainable parts, the
two training loops and their safetensors checkpoints.  ``tools/train_full.py`` is the command
line (data, descriptions, the pack config it writes); this module imports torch.

**Stage 1** trains one :class:`~.keyframe.KeyframeTokenizer` per grid (post-encoder, codebook,
upsampler) on SD latents z (scaled, of the training keyframes; the VAE is frozen, so the latents
are computed once):

    loss = ||z - z_hat||^2  +  beta * ||h - sg(q)||^2          (beta = 0.25)

The second term is the paper's commit loss (h the post-encoder's output, q its nearest codeword,
sg the stop-gradient).  Alone it trains only the post-encoder to sit near the codewords: the
upsampler would get no gradient at all and nothing would make h carry what is in z.  So z_hat
(the upsampler's output from the codewords, with the straight-through estimator so the gradient
reaches the post-encoder) is pulled towards z by a latent-space MSE: z_hat is the condition of
the UNet, and the closer it is to z the less the diffusion model has to invent.  It is measured
on latents rather than pixels because the VAE decoder is large and frozen, and the UNet sees
latents.  The codebook itself follows the encoder by exponential moving averages (decay 0.99;
VQ-VAE-2 style), with dead codewords restarted from random h vectors of the batch every
``restart_every`` steps, so all 256 codewords stay in use; it starts as 256 random h vectors of
the first batch.

**Stage 2** fine-tunes the UNet of each grid, with that grid's stage-1 tokenizer frozen, on
frame-description pairs with the epsilon-prediction loss

    loss = ||eps - eps_theta(z_t, t, z_hat, D^F)||^2,   z_t = sqrt(abar_t) z + sqrt(1 - abar_t) eps

``conv_in`` is widened by z-hat's 4 channels (:func:`~.keyframe.widen_conv_in`, zeros: training
starts from SD's own behaviour) and trained in full; of the rest, ``mode="linear"`` trains every
linear layer (the paper's "linear layers of the denoising network": attention projections,
feed-forward layers, time embedding), ``mode="lora"`` trains LoRA adapters (peft) on the
attention projections, fused into the weights when saved.  The description is replaced by the
empty text with probability ``text_drop`` (0.1) so the decoder's classifier-free guidance has a
trained unconditional branch.

Checkpoints (:func:`save_checkpoint`) hold the trainable tensors, the optimizer's state and both
random generators' states in one ``.safetensors`` file (metadata: step, stage, grid, the
optimizer's parameter groups, numpy's generator state): a resumed run continues exactly where
the interrupted one was and ends with the same weights.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .keyframe import KeyframeTokenizer, widen_conv_in

__all__ = [
    "LORA_TARGETS",
    "Stage1Config",
    "Stage2Config",
    "add_lora",
    "codebook_stats",
    "cosine_lr",
    "ema_update",
    "finish_unet",
    "init_codebook",
    "latest_checkpoint",
    "load_checkpoint",
    "restart_dead_codes",
    "run_stage1",
    "run_stage2",
    "save_checkpoint",
    "stage1_loss",
    "stage2_loss",
    "trainable_linear",
]

#: The modules peft's LoRA wraps in ``mode="lora"`` (every attention projection of the UNet).
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


@dataclass
class Stage1Config:
    """Stage 1 settings (the tokenizer's shape: ``stride`` from the grid, ``channels``,
    ``code_dim``, ``blocks``, ``vocab_size``)."""

    grid: str = "1/16"
    steps: int = 2000
    batch: int = 8
    lr: float = 2e-4
    beta: float = 0.25
    ema_decay: float = 0.99
    restart_every: int = 50
    channels: int = 192
    code_dim: int = 16
    blocks: int = 2
    vocab_size: int = 256
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50


@dataclass
class Stage2Config:
    """Stage 2 settings."""

    grid: str = "1/16"
    steps: int = 2000
    batch: int = 4
    lr: float = 1e-5
    mode: str = "linear"  # or "lora"
    lora_rank: int = 16
    text_drop: float = 0.1
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    lora_lr: float | None = None  # default: 10 x lr for LoRA (adapters start at zero)
    extra: dict[str, Any] = field(default_factory=dict)


def cosine_lr(step: int, steps: int, peak: float) -> float:
    """Linear warm-up over the first 5% of the steps (at most 200), then cosine decay to 10%."""
    warm = max(1, min(200, steps // 20))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


# ---------------------------------------------------------------------------------------------
# Stage 1


def _flat(h: torch.Tensor) -> torch.Tensor:
    return h.permute(0, 2, 3, 1).reshape(-1, h.shape[1])


@torch.no_grad()
def init_codebook(tok: KeyframeTokenizer, z: torch.Tensor, gen: torch.Generator) -> None:
    """Codewords := random h vectors of ``z``'s post-encoding (repeated when there are fewer
    positions than codewords); EMA statistics reset to them."""
    h = _flat(tok.encode_h(z)).float()
    pick = torch.randint(h.shape[0], (tok.codebook.shape[0],), generator=gen).to(h.device)
    tok.codebook.copy_(h[pick])
    tok.ema_sum.copy_(h[pick])
    tok.ema_count.fill_(1.0)


@torch.no_grad()
def ema_update(tok: KeyframeTokenizer, h: torch.Tensor, indices: torch.Tensor, decay: float) -> None:
    """Move each codeword towards the mean of the h vectors that chose it (exponential moving
    averages of counts and sums, Laplace-smoothed)."""
    flat = _flat(h).float()
    onehot = F.one_hot(indices.reshape(-1), tok.codebook.shape[0]).float()
    tok.ema_count.mul_(decay).add_(onehot.sum(0), alpha=1 - decay)
    tok.ema_sum.mul_(decay).add_(onehot.t() @ flat, alpha=1 - decay)
    n = tok.ema_count.sum()
    count = (tok.ema_count + 1e-5) / (n + tok.codebook.shape[0] * 1e-5) * n
    tok.codebook.copy_(tok.ema_sum / count[:, None])


@torch.no_grad()
def restart_dead_codes(tok: KeyframeTokenizer, h: torch.Tensor, gen: torch.Generator, threshold: float = 0.05) -> int:
    """Codewords used less than ``threshold`` x the mean (by EMA count) := random h vectors of
    the batch; returns how many were restarted."""
    dead = tok.ema_count < threshold * tok.ema_count.mean()
    k = int(dead.sum())
    if k:
        flat = _flat(h).float()
        pick = torch.randint(flat.shape[0], (k,), generator=gen).to(flat.device)
        tok.codebook[dead] = flat[pick]
        tok.ema_sum[dead] = flat[pick]
        tok.ema_count[dead] = 1.0
    return k


def stage1_loss(tok: KeyframeTokenizer, z: torch.Tensor, beta: float) -> tuple[torch.Tensor, dict[str, Any]]:
    """(loss, parts): latent reconstruction MSE + beta * commit loss (module docs)."""
    h, indices, z_hat = tok(z)  # type: ignore[operator]
    q = tok.lookup(indices)
    commit = F.mse_loss(h, q.detach())
    recon = F.mse_loss(z_hat, z)
    loss = recon + beta * commit
    parts = {"recon": recon.item(), "commit": commit.item(), "h": h.detach(), "indices": indices}
    return loss, parts


def codebook_stats(tok: KeyframeTokenizer) -> tuple[int, float]:
    """(codewords in use, perplexity) by the EMA counts."""
    cs = tok.ema_count
    p = cs / cs.sum()
    return int((cs > 0.1 * cs.mean()).sum()), float(torch.exp(-(p * (p + 1e-12).log()).sum()))


# ---------------------------------------------------------------------------------------------
# Stage 2


def trainable_linear(unet: nn.Module) -> list[str]:
    """Freeze ``unet`` except ``conv_in`` and every nn.Linear; returns the trainable names."""
    unet.requires_grad_(False)
    for module in unet.modules():
        if isinstance(module, nn.Linear):
            module.requires_grad_(True)
    unet.conv_in.requires_grad_(True)  # type: ignore[union-attr]
    return [n for n, p in unet.named_parameters() if p.requires_grad]


def add_lora(unet: Any, rank: int) -> list[str]:
    """Freeze ``unet``, add LoRA adapters (peft, rank ``rank``, alpha = rank) on
    :data:`LORA_TARGETS`, train them and ``conv_in``; returns the trainable names."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True, target_modules=list(LORA_TARGETS)))
    for name, p in unet.named_parameters():
        if "lora_" in name:
            p.requires_grad_(True)
    unet.conv_in.requires_grad_(True)
    return [n for n, p in unet.named_parameters() if p.requires_grad]


def finish_unet(unet: Any, mode: str) -> Any:
    """The UNet to save: LoRA adapters fused into the weights and removed (``mode="lora"``)."""
    if mode == "lora":
        unet.fuse_lora()
        unet.unload_lora()
    return unet


def stage2_loss(
    unet: Any,
    z: torch.Tensor,
    z_hat: torch.Tensor,
    states: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    gen: torch.Generator,
) -> torch.Tensor:
    """Epsilon-prediction MSE at uniform random timesteps (module docs); the noise and the
    timesteps come from ``gen`` (a CPU generator: the same on every device)."""
    b = z.shape[0]
    t = torch.randint(0, alphas_cumprod.shape[0], (b,), generator=gen)
    eps = torch.randn(z.shape, generator=gen).to(z.device, z.dtype)
    abar = alphas_cumprod[t].to(z.device, z.dtype).view(b, 1, 1, 1)
    z_t = abar.sqrt() * z + (1 - abar).sqrt() * eps
    pred = unet(torch.cat([z_t, z_hat], dim=1), t.to(z.device), encoder_hidden_states=states).sample
    return F.mse_loss(pred.float(), eps.float())


# ---------------------------------------------------------------------------------------------
# Checkpoints


def _generator_state(gen: torch.Generator) -> torch.Tensor:
    return gen.get_state().clone()


def save_checkpoint(
    path: str | Path,
    tensors: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    gen: torch.Generator,
    rng: np.random.Generator,
    meta: dict[str, Any],
) -> Path:
    """One ``.safetensors`` file: ``model.<name>`` tensors, ``optim.<param index>.<key>`` the
    optimizer's per-parameter state, ``rng.torch``; metadata ``meta`` (JSON values) plus the
    optimizer's parameter groups and numpy's generator state.  Written to a temporary name and
    renamed, so an interrupted write never leaves a damaged checkpoint."""
    from safetensors.torch import save_file

    out: dict[str, torch.Tensor] = {f"model.{k}": v.detach().contiguous().cpu() for k, v in tensors.items()}
    state = optimizer.state_dict()
    for idx, st in state["state"].items():
        for key, value in st.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            out[f"optim.{idx}.{key}"] = tensor.detach().contiguous().cpu()
    out["rng.torch"] = _generator_state(gen)
    metadata = {k: json.dumps(v) for k, v in meta.items()}
    metadata["param_groups"] = json.dumps(state["param_groups"])
    metadata["numpy_rng"] = json.dumps(rng.bit_generator.state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(out, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def load_checkpoint(
    path: str | Path,
    optimizer: torch.optim.Optimizer | None = None,
    gen: torch.Generator | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(model tensors by name, meta) of a checkpoint; restores ``optimizer``, ``gen`` and
    ``rng`` in place when given."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        raw_meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
    meta = {k: json.loads(v) for k, v in raw_meta.items()}
    model = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    if optimizer is not None:
        per: dict[int, dict[str, torch.Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, idx, key = k.split(".", 2)
                per.setdefault(int(idx), {})[key] = v
        optimizer.load_state_dict({"state": per, "param_groups": meta["param_groups"]})
    if gen is not None:
        gen.set_state(tensors["rng.torch"])
    if rng is not None:
        rng.bit_generator.state = meta["numpy_rng"]
    return model, meta


def latest_checkpoint(folder: str | Path) -> Path | None:
    """The checkpoint with the highest step in ``folder`` (``step_<n>.safetensors``), or None."""
    found = sorted(Path(folder).glob("step_*.safetensors"), key=lambda p: int(p.stem.split("_")[1]))
    return found[-1] if found else None


def _prune(folder: Path, keep: int = 2) -> None:
    found = sorted(folder.glob("step_*.safetensors"), key=lambda p: int(p.stem.split("_")[1]))
    for p in found[:-keep]:
        p.unlink()


# ---------------------------------------------------------------------------------------------
# Loops

#: Called after every step: (step done, total steps, losses of the step).
Progress = Callable[[int, int, dict[str, float]], None]


def _batches(n: int, batch: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    while True:
        yield rng.choice(n, size=min(batch, n), replace=n < batch)


def run_stage1(
    latents: torch.Tensor,
    cfg: Stage1Config,
    checkpoints: str | Path,
    *,
    device: Any = "cpu",
    resume: bool = True,
    log: Callable[[dict[str, Any]], None] | None = None,
    progress: Progress | None = None,
) -> KeyframeTokenizer:
    """Train the tokenizer of ``cfg.grid`` on ``latents`` (N, 4, h, w; scaled SD latents, on the
    CPU), checkpointing to ``checkpoints`` every ``cfg.checkpoint_every`` steps and at the end;
    with ``resume``, from the latest checkpoint there.  ``log`` gets a row every
    ``cfg.log_every`` steps.  Returns the trained tokenizer (eval mode, on the CPU)."""
    stride = {"1/16": 2, "1/8": 1}[cfg.grid]
    torch.manual_seed(cfg.seed)
    tok = KeyframeTokenizer(
        stride=stride, channels=cfg.channels, code_dim=cfg.code_dim, blocks=cfg.blocks, vocab_size=cfg.vocab_size
    ).to(device)
    opt = torch.optim.AdamW(tok.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=1e-4)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    rng = np.random.default_rng(cfg.seed + 2)
    folder = Path(checkpoints)
    start = 0
    last = latest_checkpoint(folder) if resume else None
    if last is not None:
        state, meta = load_checkpoint(last, opt, gen, rng)
        tok.load_state_dict(state)
        start = int(meta["step"])
    batches = _batches(latents.shape[0], cfg.batch, rng)
    tok.train()
    sums: dict[str, float] = {}
    count = 0
    for step in range(start, cfg.steps):
        lr = cosine_lr(step, cfg.steps, cfg.lr)
        for g in opt.param_groups:
            g["lr"] = lr
        z = latents[torch.from_numpy(next(batches))].to(device)
        if step == 0:
            init_codebook(tok, z, gen)
        loss, parts = stage1_loss(tok, z, cfg.beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tok.parameters(), 1.0)
        opt.step()
        ema_update(tok, parts["h"], parts["indices"], cfg.ema_decay)
        restarts = 0
        if cfg.restart_every and (step + 1) % cfg.restart_every == 0 and step + 1 < 0.9 * cfg.steps:
            restarts = restart_dead_codes(tok, parts["h"], gen)
        losses = {"loss": loss.item(), "recon": parts["recon"], "commit": parts["commit"]}
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        done = step + 1
        if progress is not None:
            progress(done, cfg.steps, losses)
        if log is not None and (done % cfg.log_every == 0 or done == cfg.steps):
            used, perplexity = codebook_stats(tok)
            log(
                {
                    "stage": 1,
                    "grid": cfg.grid,
                    "step": done,
                    "lr": round(lr, 8),
                    **{k: round(v / count, 6) for k, v in sums.items()},
                    "codes_used": used,
                    "perplexity": round(perplexity, 2),
                    "restarts": restarts,
                }
            )
            sums, count = {}, 0
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            meta = {"stage": 1, "grid": cfg.grid, "step": done, "config": asdict(cfg)}
            save_checkpoint(folder / f"step_{done}.safetensors", tok.state_dict(), opt, gen, rng, meta)
            _prune(folder)
    return tok.eval().cpu()


def run_stage2(
    unet: Any,
    tokenizer: KeyframeTokenizer,
    latents: torch.Tensor,
    texts: Sequence[str],
    encode_text: Callable[[list[str]], torch.Tensor],
    alphas_cumprod: torch.Tensor,
    cfg: Stage2Config,
    checkpoints: str | Path,
    *,
    device: Any = "cpu",
    resume: bool = True,
    log: Callable[[dict[str, Any]], None] | None = None,
    progress: Progress | None = None,
) -> Any:
    """Fine-tune ``unet`` (SD's UNet, not yet widened) for ``cfg.grid`` with the frozen
    ``tokenizer`` on (``latents``, ``texts``) pairs; ``encode_text`` maps a list of texts to
    the text encoder's states (on ``device``).  Checkpoints and ``resume`` as in
    :func:`run_stage1`.  Returns the UNet to save (widened, LoRA fused; eval mode, on the CPU)."""
    if cfg.mode not in ("linear", "lora"):
        raise ValueError(f"stage 2 mode {cfg.mode!r} is not 'linear' or 'lora'")
    torch.manual_seed(cfg.seed)
    widen_conv_in(unet, int(unet.config.out_channels))
    unet.to(device)
    if cfg.mode == "lora":
        add_lora(unet, cfg.lora_rank)
    else:
        trainable_linear(unet)
    params = [p for p in unet.parameters() if p.requires_grad]
    names = [n for n, p in unet.named_parameters() if p.requires_grad]
    lr = cfg.lora_lr if cfg.mode == "lora" and cfg.lora_lr else (cfg.lr * 10 if cfg.mode == "lora" else cfg.lr)
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=1e-2)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    rng = np.random.default_rng(cfg.seed + 2)
    folder = Path(checkpoints)
    start = 0
    last = latest_checkpoint(folder) if resume else None
    if last is not None:
        state, meta = load_checkpoint(last, opt, gen, rng)
        missing = set(names) - set(state)
        if missing:
            raise ValueError(f"checkpoint {last} lacks {len(missing)} trainable tensors (another --unet-train mode?)")
        unet.load_state_dict(state, strict=False)
        start = int(meta["step"])
    tokenizer = tokenizer.to(device).eval().requires_grad_(False)
    with torch.no_grad():
        z_hats = torch.cat(
            [
                tokenizer.dequantize(tokenizer.tokenize(latents[i : i + 8].to(device))).cpu()
                for i in range(0, len(latents), 8)
            ]
        )
        empty = encode_text([""])
    batches = _batches(latents.shape[0], cfg.batch, rng)
    unet.train()
    total, count = 0.0, 0
    for step in range(start, cfg.steps):
        cur = cosine_lr(step, cfg.steps, lr)
        for g in opt.param_groups:
            g["lr"] = cur
        pick = next(batches)
        drop = rng.random(len(pick)) < cfg.text_drop
        prompts = ["" if d else texts[int(i)] for i, d in zip(pick, drop)]
        with torch.no_grad():
            states = encode_text(prompts) if not drop.all() else empty.expand(len(pick), -1, -1)
        z = latents[torch.from_numpy(pick)].to(device)
        z_hat = z_hats[torch.from_numpy(pick)].to(device)
        loss = stage2_loss(unet, z, z_hat, states, alphas_cumprod, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        value = loss.item()
        total += value
        count += 1
        done = step + 1
        if progress is not None:
            progress(done, cfg.steps, {"loss": value})
        if log is not None and (done % cfg.log_every == 0 or done == cfg.steps):
            log({"stage": 2, "grid": cfg.grid, "step": done, "lr": round(cur, 10), "loss": round(total / count, 6)})
            total, count = 0.0, 0
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            named = dict(unet.named_parameters())
            meta = {"stage": 2, "grid": cfg.grid, "step": done, "config": asdict(cfg)}
            save_checkpoint(folder / f"step_{done}.safetensors", {n: named[n] for n in names}, opt, gen, rng, meta)
            _prune(folder)
    unet.eval()
    return finish_unet(unet, cfg.mode).cpu()
