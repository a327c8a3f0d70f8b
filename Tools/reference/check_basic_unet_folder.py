"""Checks that a BasicUNet run folder written by `diffuse train` loads unchanged into the tutorial's
PyTorch module and samples the same images: runs the tutorial's 5-step x0-mixing sampler from the
noise given to `diffuse sample --init-noise` and compares with its `--save-tensor` output.

Usage: python3 Tools/reference/check_basic_unet_folder.py RUN_DIR NOISE.safetensors SAMPLE.safetensors
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file

from basic_unet import BasicUNet


def main():
    run, noise_path, sample_path = sys.argv[1:4]
    config = json.load(open(os.path.join(run, "unet", "config.json")))
    steps = json.load(open(os.path.join(run, "scheduler", "scheduler_config.json")))["num_inference_steps"]
    net = BasicUNet(config["in_channels"], config["out_channels"])
    net.load_state_dict(load_file(os.path.join(run, "unet", "diffusion_pytorch_model.safetensors")))
    x = load_file(noise_path)["sample"]
    with torch.no_grad():
        for i in range(steps):
            pred = net(x)
            mix = 1 / (steps - i)
            x = x * (1 - mix) + pred * mix
    ours = load_file(sample_path)["sample"]
    error = ((ours - x).abs().max() / x.abs().max()).item()
    print(f"loaded {run} into PyTorch BasicUNet; {steps}-step sample max relative difference {error:.2e}")
    sys.exit(0 if error < 1e-4 else 1)


if __name__ == "__main__":
    main()
