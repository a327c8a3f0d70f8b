"""Checks that a pipeline folder written by `diffuse train --model unet2d` loads in diffusers
(DDPMPipeline.from_pretrained) and that diffusers' DDIM loop from a given noise tensor gives the
sample `diffuse sample --scheduler ddim --init-noise ... --save-tensor ...` wrote.

Usage: python3 Tools/reference/check_ddpm_folder.py RUN_DIR NOISE.safetensors SAMPLE.safetensors STEPS
"""
import sys

import torch
from diffusers import DDIMScheduler, DDPMPipeline
from safetensors.torch import load_file


def main():
    run, noise_path, sample_path, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    pipeline = DDPMPipeline.from_pretrained(run)
    ddim = DDIMScheduler.from_config(pipeline.scheduler.config)
    ddim.set_timesteps(steps)
    x = load_file(noise_path)["sample"]
    with torch.no_grad():
        for t in ddim.timesteps:
            x = ddim.step(pipeline.unet(x, t).sample, t, x, eta=0.0).prev_sample
    ours = load_file(sample_path)["sample"]
    error = ((ours - x).abs().max() / x.abs().max()).item()
    print(f"DDPMPipeline.from_pretrained({run}) loaded; {steps}-step DDIM max relative difference {error:.2e}")
    sys.exit(0 if error < 2e-3 else 1)


if __name__ == "__main__":
    main()
