"""Writes Tests/Fixtures/euler.safetensors: diffusers' EulerDiscreteScheduler built from the tiny
DDPM pipeline's scheduler config (EulerDiscreteScheduler.from_config, as a user switching samplers
does), for 7 and 20 steps, and 9 with linspace spacing: its timesteps, sigmas and init_noise_sigma, and the final sample of
diffusers' loop (scale_model_input, UNet, step) from tiny-ddpm-noise.safetensors.
diffusers 0.42.1, torch 2.15.
"""
import os
import torch
from diffusers import EulerDiscreteScheduler, UNet2DModel
from safetensors.torch import load_file, save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")


def main():
    folder = os.path.join(FIXTURES, "tiny-ddpm")
    unet = UNet2DModel.from_pretrained(os.path.join(folder, "unet")).eval()
    config = EulerDiscreteScheduler.load_config(os.path.join(folder, "scheduler"))
    noise = load_file(os.path.join(FIXTURES, "tiny-ddpm-noise.safetensors"))["sample"]
    out = {}
    # linspace9: Euler's own default spacing, whose timesteps fall between training steps (the
    # UNet embeds them as floats).
    for name, steps, options in (("euler7", 7, {}), ("euler20", 20, {}), ("linspace9", 9, {"timestep_spacing": "linspace"})):
        scheduler = EulerDiscreteScheduler.from_config(config, **options)
        scheduler.set_timesteps(steps)
        out[f"{name}.timesteps"] = scheduler.timesteps.float().contiguous()
        out[f"{name}.sigmas"] = scheduler.sigmas.float().contiguous()
        out[f"{name}.init_noise_sigma"] = torch.tensor([float(scheduler.init_noise_sigma)])
        x = noise * scheduler.init_noise_sigma
        with torch.no_grad():
            for t in scheduler.timesteps:
                model_input = scheduler.scale_model_input(x, t)
                x = scheduler.step(unet(model_input, t).sample, t, x).prev_sample
        out[f"{name}.sample"] = x.contiguous()
    save_file(out, os.path.join(FIXTURES, "euler.safetensors"))
    print({k: v.shape for k, v in out.items()})
    print(dict(EulerDiscreteScheduler.from_config(config).config))


if __name__ == "__main__":
    main()
