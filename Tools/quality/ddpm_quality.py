"""Sample quality of the tutorial's DDPM recipe, Diffuse against PyTorch + diffusers (issue 15).

For each seed, the recipe is trained twice on Fashion-MNIST for the same budget: by `diffuse train
--model unet2d --seed S` and by the tutorial's PyTorch loop (torch.manual_seed(S); seed
UNet2DModel, DDPMScheduler squaredcos_cap_v2, AdamW 4e-4, batch 64, DataLoader shuffle). Each
model then draws 1,000 samples with DDIM, 50 steps, eta 0 (Diffuse: `diffuse sample --scheduler
ddim`; PyTorch: DDIMScheduler.from_config of the DDPM config, diffusers' loop).

The score is a Frechet distance (FID's formula) in the 128-d penultimate features of a small CNN
classifier trained here on the Fashion-MNIST training set (two epochs, about 90% test accuracy),
against the 10,000 test images. Inception features, FID's usual choice, know nothing of 28x28
grey clothing; a classifier of the very data set measures whether samples look like its classes.
Lower is better; the test set against the training set scores near 1.

Run:  python3 Tools/quality/ddpm_quality.py [--seeds 0 1 2] [--steps 938] [--samples 1000]
      (needs torch, diffusers, numpy, a release build of diffuse and dataset-fashion-mnist; one
      epoch is 938 steps.) Prints a table and writes runs/quality/results.json.
"""
import argparse
import gzip
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from safetensors.torch import load_file

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FASHION = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(ROOT, "runs", "quality")
SEED_UNET = dict(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2, block_out_channels=(32, 64, 64),
                 down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                 up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"))


def idx(name):
    with gzip.open(os.path.join(FASHION, name)) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(split):
    return torch.from_numpy(idx(f"{split}-images-idx3-ubyte.gz").copy()).float().div(255).unsqueeze(1)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def features(self, x):  # x in [0, 1]
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x):
        return self.fc2(self.features(x))


def classifier(train, labels, test, test_labels):
    path = os.path.join(OUT, "classifier.pt")
    model = Classifier()
    if os.path.exists(path):
        model.load_state_dict(torch.load(path))
        return model.eval()
    torch.manual_seed(1234)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        for batch in torch.randperm(len(train)).split(128):
            loss = F.cross_entropy(model(train[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        accuracy = torch.cat([model(b).argmax(1) for b in test.split(1000)]).eq(test_labels).float().mean().item()
    print(f"classifier test accuracy {accuracy:.3f}")
    torch.save(model.state_dict(), path)
    return model


def statistics(model, x):
    with torch.no_grad():
        f = torch.cat([model.features(b) for b in x.split(1000)]).double().numpy()
    return f.mean(0), np.cov(f, rowvar=False)


def frechet(a, b):
    (m1, s1), (m2, s2) = a, b
    # Tr(sqrt(S1 S2)) as the sum of square roots of S1 S2's eigenvalues (real, >= 0 in exact arithmetic).
    eig = np.linalg.eigvals(s1 @ s2)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(eig.real, 0, None)).sum())


def diffuse(seed, steps, samples):
    binary = os.path.join(ROOT, ".build", "release", "diffuse")
    run = os.path.join(OUT, f"diffuse-seed{seed}")
    # --max-grad-norm 0: the tutorial's loop, which does not clip (unet2d clips at 1.0 by default).
    subprocess.run([binary, "train", "--model", "unet2d", "--max-grad-norm", "0", "--epochs", "1", "--max-steps", str(steps), "--batch-size", "64",
                    "--seed", str(seed), "--device", "cpu", "--output", run, "--overwrite", "--quiet"], check=True)
    chunks = []
    for chunk in range((samples + 249) // 250):
        tensor = os.path.join(run, f"quality-{chunk}.safetensors")
        subprocess.run([binary, "sample", run, "--scheduler", "ddim", "--steps", "50", "--batch-size",
                        str(min(250, samples - 250 * chunk)), "--seed", str(1000 * seed + chunk), "--device", "cpu",
                        "--save-tensor", tensor, "--output", os.path.join(run, f"quality-{chunk}.png"), "--overwrite"],
                       check=True, stdout=subprocess.DEVNULL)
        chunks.append(load_file(tensor)["sample"])
    return torch.cat(chunks)


def pytorch(seed, steps, samples, train):
    torch.manual_seed(seed)
    model = UNet2DModel(**SEED_UNET)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-4)
    loader = torch.utils.data.DataLoader(train, batch_size=64, shuffle=True)
    step = 0
    while step < steps:
        for clean in loader:
            clean = clean * 2 - 1
            noise = torch.randn(clean.shape)
            timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (clean.shape[0],))
            loss = F.mse_loss(model(scheduler.add_noise(clean, noise, timesteps), timesteps).sample, noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step >= steps:
                break
    ddim = DDIMScheduler.from_config(scheduler.config)
    ddim.set_timesteps(50)
    model.eval()
    out = []
    generator = torch.Generator().manual_seed(1000 * seed)
    with torch.no_grad():
        for chunk in range((samples + 249) // 250):
            x = torch.randn(min(250, samples - 250 * chunk), 1, 28, 28, generator=generator)
            for t in ddim.timesteps:
                x = ddim.step(model(x, t).sample, t, x, eta=0.0).prev_sample
            out.append(x)
    return torch.cat(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=938)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(os.cpu_count() or 1)
    train, test = images("train"), images("t10k")
    labels = torch.from_numpy(idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    test_labels = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    model = classifier(train, labels, test, test_labels)
    reference = statistics(model, test)
    results = {"steps": args.steps, "samples": args.samples, "real_train_vs_test": frechet(statistics(model, train), reference),
               "diffuse": {}, "pytorch": {}}
    for seed in args.seeds:
        for side, make in (("diffuse", lambda: diffuse(seed, args.steps, args.samples)),
                           ("pytorch", lambda: pytorch(seed, args.steps, args.samples, train))):
            start = time.time()
            x = make()
            score = frechet(statistics(model, (x / 2 + 0.5).clamp(0, 1)), reference)
            results[side][str(seed)] = score
            print(f"{side} seed {seed}: Frechet distance {score:.2f} ({time.time() - start:.0f} s)", flush=True)
            with open(os.path.join(OUT, "results.json"), "w") as f:
                json.dump(results, f, indent=2)
    print(f"\nbudget {args.steps} steps at batch 64, {args.samples} DDIM-50 samples; real train vs test "
          f"{results['real_train_vs_test']:.2f}")
    print("| side | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | spread (max - min) |")
    print("|---|" + "---|" * (len(args.seeds) + 2))
    for side in ("diffuse", "pytorch"):
        scores = [results[side][str(s)] for s in args.seeds]
        print(f"| {side} | " + " | ".join(f"{v:.2f}" for v in scores) + f" | {np.mean(scores):.2f} | {max(scores) - min(scores):.2f} |")


if __name__ == "__main__":
    sys.exit(main())
