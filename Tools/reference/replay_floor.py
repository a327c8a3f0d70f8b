"""How far apart two correct float32 trainings drift: replays the fixtures of training_replay.py in
PyTorch again (1 thread instead of 2, and in float64), from the same weights and draws, and prints
each run's worst loss and final-weight errors against the fixture, with the same measures as
Tests/DiffusionTests/TrainingReplayTests.swift (loss |a-e|/|e| per step; per tensor
max|a-e| / max|e|). Diffuse's replay errors are read against these.

Run: python3 Tools/reference/replay_floor.py
"""
import os
import sys

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DModel
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
from basic_unet import BasicUNet  # noqa: E402
from training_replay import FIXTURES, SEED_UNET, fashion_images  # noqa: E402


# The tutorial UNet2DModel's parameters whose gradient is identically zero (one channel per
# GroupNorm group at 32 channels): TrainingReplayTests.tutorialZeroGradient.
ZERO_GRADIENT = {"up_blocks.2.resnets.2.conv2.bias", "up_blocks.2.resnets.2.conv_shortcut.bias"} | {
    f"{b}.resnets.{r}.{p}" for b, n in (("down_blocks.0", 2), ("up_blocks.2", 3)) for r in range(n)
    for p in ("conv1.bias", "time_emb_proj.weight", "time_emb_proj.bias")}


def replay(name, dtype, threads, mkldnn=True):
    torch.set_num_threads(threads)
    torch.backends.mkldnn.enabled = mkldnn
    f = load_file(os.path.join(FIXTURES, name))
    for k in [k for k in f if k.startswith("delta.")]:
        f["final." + k[6:]] = f["init." + k[6:]].float() + f[k].float()
    images = fashion_images().to(dtype)
    ddpm = "timesteps" in f
    model = (UNet2DModel(**SEED_UNET) if ddpm else BasicUNet()).to(dtype)
    model.load_state_dict({k[5:]: v.to(dtype) for k, v in f.items() if k.startswith("init.")}, strict=False)
    if ddpm:
        scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
        optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for step in range(f["indices"].shape[0]):
        indices = f["indices"][step].long()
        noise = f["noise"][step].to(dtype)
        clean = images[indices]
        if ddpm:
            clean = clean * 2 - 1
            timesteps = f["timesteps"][step].long()
            if dtype == torch.float64:
                scheduler.alphas_cumprod = scheduler.alphas_cumprod.to(torch.float64)
            loss = F.mse_loss(model(scheduler.add_noise(clean, noise, timesteps), timesteps).sample, noise)
        else:
            a = f["amount"][step].to(dtype).view(-1, 1, 1, 1)
            loss = F.mse_loss(model(clean * (1 - a) + noise * a), clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    expected = f["loss"].double()
    errors = [abs(a - e) / abs(e) for a, e in zip(losses, expected.tolist())]
    worst = max((((p.detach().double() - f["final." + k].double()).abs().max() / f["final." + k].double().abs().max()).item(), k)
                for k, p in model.named_parameters())
    l2 = max((((p.detach().double() - f["final." + k].double()).norm() / f["final." + k].double().norm()).item(), k)
             for k, p in model.named_parameters() if k not in ZERO_GRADIENT)
    print(f"{name} {dtype} {threads} thread(s){'' if mkldnn else ', oneDNN off'}: worst loss error "
          f"{max(errors[:50]):.3g} (steps 1-50), {max(errors):.3g} (all); worst final weight error "
          f"{worst[0]:.3g} max-norm ({worst[1]}), {l2[0]:.3g} relative L2 ({l2[1]}) without the zero-gradient biases")


if __name__ == "__main__":
    for name in ("replay_basic_unet.safetensors", "replay_ddpm.safetensors"):
        replay(name, torch.float32, 1)
        replay(name, torch.float32, 2, mkldnn=False)
        replay(name, torch.float64, 2)
