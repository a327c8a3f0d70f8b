"""Writes Tests/Fixtures/pndm.safetensors: diffusers' PNDMScheduler built from the tiny DDPM
pipeline's scheduler config (PNDMScheduler.from_config(config, **options), as a user switching
samplers does) for several option sets: its timesteps (every model call's) and the final sample of
diffusers' loop (scale_model_input, UNet, step) from tiny-ddpm-noise.safetensors.
diffusers 0.42.1, torch 2.15.
"""
import os
import torch
from diffusers import PNDMScheduler, UNet2DModel
from safetensors.torch import load_file, save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")

CASES = {
    "prk_10": (10, {}),
    "prk_25": (25, {}),
    "skip_10": (10, {"skip_prk_steps": True}),
    "skip_trailing_12": (12, {"skip_prk_steps": True, "timestep_spacing": "trailing"}),
    "prk_linspace_8": (8, {"timestep_spacing": "linspace"}),
    "alpha_one_6": (6, {"set_alpha_to_one": True}),
}


def main():
    folder = os.path.join(FIXTURES, "tiny-ddpm")
    unet = UNet2DModel.from_pretrained(os.path.join(folder, "unet")).eval()
    config = PNDMScheduler.load_config(os.path.join(folder, "scheduler"))
    noise = load_file(os.path.join(FIXTURES, "tiny-ddpm-noise.safetensors"))["sample"]
    out = {}
    for name, (steps, options) in CASES.items():
        scheduler = PNDMScheduler.from_config(config, **options)
        scheduler.set_timesteps(steps)
        out[f"{name}.timesteps"] = scheduler.timesteps.float().contiguous()
        x = noise * scheduler.init_noise_sigma
        with torch.no_grad():
            for t in scheduler.timesteps:
                output = unet(scheduler.scale_model_input(x, t), t).sample
                x = scheduler.step(output, t, x).prev_sample
        out[f"{name}.sample"] = x.contiguous()
    save_file(out, os.path.join(FIXTURES, "pndm.safetensors"))
    print({k: tuple(v.shape) for k, v in out.items() if k.endswith("timesteps")})


if __name__ == "__main__":
    main()
