"""Writes the step-for-step replay fixtures of the tutorial's two training recipes, run in PyTorch:

- Tests/Fixtures/replay_ddpm.safetensors: the seed UNet2DModel (diffusers), DDPMScheduler
  squaredcos_cap_v2, AdamW lr 4e-4, batch 8, 200 steps on Fashion-MNIST;
- Tests/Fixtures/replay_basic_unet.safetensors: the tutorial's BasicUNet, uniform-noise corruption,
  Adam lr 1e-3, batch 16, 200 steps.

Keys: init.<param> (weights after torch.manual_seed(0) and construction, F16), delta.<param>
(final minus initial weights after the last step, F16), indices [steps, batch] (rows of
train-images-idx3-ubyte, from torch.randperm, the DataLoader's shuffle), noise [steps, batch, 1,
28, 28] as F16, timesteps [steps, batch] (DDPM) or amount [steps, batch] (BasicUNet), loss [steps]
(each step's loss before its update).
The initial weights and the noise are rounded to float16 before PyTorch uses them, so the F16
file holds exactly what PyTorch started from and trained on, at half the size; the final weights
are init + delta, exact to 2^-11 of the delta (far inside the test's 1e-3). Diffuse replays these draws (Tests/DiffusionTests/
TrainingReplayTests.swift) instead of its own.

Run: python3 Tools/reference/training_replay.py   (needs torch, diffusers, safetensors, numpy and
Debian's dataset-fashion-mnist)
"""
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
import diffusers
from diffusers import DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from basic_unet import BasicUNet  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")
FASHION = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
STEPS = 200
SEED_UNET = dict(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2, block_out_channels=(32, 64, 64),
                 down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                 up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"))


def fashion_images():
    with gzip.open(FASHION) as f:
        data = f.read()
    count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    images = np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, 1, rows, cols)
    return torch.from_numpy(images.copy()).float().div(255)  # torchvision's ToTensor


def metadata(recipe):
    return {"script": "Tools/reference/training_replay.py", "recipe": recipe, "torch": torch.__version__,
            "diffusers": diffusers.__version__}


def rounded_init(model):
    """Rounds the freshly initialised weights to float16 in place and returns them."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return {"init." + k: v.detach().clone() for k, v in model.named_parameters()}


def ddpm(images, batch=8):
    torch.manual_seed(0)
    model = UNet2DModel(**SEED_UNET)
    assert sum(p.numel() for p in model.parameters()) == 1707009
    init = rounded_init(model)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4)
    order = torch.randperm(len(images))
    rec = {"indices": [], "noise": [], "timesteps": [], "loss": []}
    for step in range(STEPS):
        indices = order[step * batch:(step + 1) * batch]
        clean = images[indices] * 2 - 1
        noise = torch.randn(clean.shape).half().float()
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,))
        noisy = scheduler.add_noise(clean, noise, timesteps)
        loss = F.mse_loss(model(noisy, timesteps, return_dict=False)[0], noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for key, value in (("indices", indices), ("noise", noise), ("timesteps", timesteps), ("loss", loss.detach())):
            rec[key].append(value)
        if step % 50 == 0:
            print(f"ddpm step {step} loss {loss.item():.5f}")
    return init, model, rec


def basic_unet(images, batch=16):
    torch.manual_seed(0)
    model = BasicUNet()
    init = rounded_init(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(images))
    rec = {"indices": [], "noise": [], "amount": [], "loss": []}
    for step in range(STEPS):
        indices = order[step * batch:(step + 1) * batch]
        clean = images[indices]
        amount = torch.rand(batch)
        noise = torch.rand_like(clean).half().float()
        a = amount.view(-1, 1, 1, 1)
        noisy = clean * (1 - a) + noise * a  # the tutorial's corrupt()
        loss = F.mse_loss(model(noisy), clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for key, value in (("indices", indices), ("noise", noise), ("amount", amount), ("loss", loss.detach())):
            rec[key].append(value)
        if step % 50 == 0:
            print(f"basic step {step} loss {loss.item():.5f}")
    return init, model, rec


def save(name, recipe, init, model, rec):
    tensors = {k: v.half() for k, v in init.items()}
    tensors.update({"delta." + k: (v.detach() - init["init." + k]).half() for k, v in model.named_parameters()})
    for key, values in rec.items():
        stacked = torch.stack(values)
        tensors[key] = stacked.half() if key == "noise" else stacked.to(torch.float32)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(FIXTURES, name), metadata=metadata(recipe))


def main():
    torch.set_num_threads(2)
    images = fashion_images()
    save("replay_ddpm.safetensors", "seed UNet2DModel, DDPM squaredcos_cap_v2, AdamW 4e-4, batch 8",
         *ddpm(images))
    save("replay_basic_unet.safetensors", "BasicUNet, uniform corruption, Adam 1e-3, batch 16", *basic_unet(images))


if __name__ == "__main__":
    main()
