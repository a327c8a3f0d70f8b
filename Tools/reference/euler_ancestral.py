"""Writes Tests/Fixtures/euler_ancestral.safetensors: diffusers' EulerAncestralDiscreteScheduler built
from the tiny DDPM pipeline's scheduler config (from_config, as a user switching samplers does), for
8 steps with leading spacing (the config's) and 6 with trailing: its timesteps, sigmas and
init_noise_sigma, the noise each step draws (read from a copy of the generator's state before the
step) and the final sample of diffusers' loop from tiny-ddpm-noise.safetensors.
diffusers 0.42.1, torch 2.15.
"""
import os
import torch
from diffusers import EulerAncestralDiscreteScheduler, UNet2DModel
from safetensors.torch import load_file, save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")


def main():
    folder = os.path.join(FIXTURES, "tiny-ddpm")
    unet = UNet2DModel.from_pretrained(os.path.join(folder, "unet")).eval()
    config = EulerAncestralDiscreteScheduler.load_config(os.path.join(folder, "scheduler"))
    start = load_file(os.path.join(FIXTURES, "tiny-ddpm-noise.safetensors"))["sample"]
    out = {}
    for name, steps, options in (("leading8", 8, {}), ("trailing6", 6, {"timestep_spacing": "trailing"})):
        scheduler = EulerAncestralDiscreteScheduler.from_config(config, **options)
        scheduler.set_timesteps(steps)
        out[f"{name}.timesteps"] = scheduler.timesteps.float().contiguous()
        out[f"{name}.sigmas"] = scheduler.sigmas.float().contiguous()
        out[f"{name}.init_noise_sigma"] = torch.tensor([float(scheduler.init_noise_sigma)])
        generator = torch.Generator().manual_seed(11)
        x = start * scheduler.init_noise_sigma
        draws = []
        with torch.no_grad():
            for t in scheduler.timesteps:
                copy = torch.Generator().manual_seed(0)
                copy.set_state(generator.get_state())
                draws.append(torch.randn(x.shape, generator=copy, dtype=torch.float32))
                output = unet(scheduler.scale_model_input(x, t), t).sample
                x = scheduler.step(output, t, x, generator=generator).prev_sample
        out[f"{name}.noise"] = torch.stack(draws).contiguous()
        out[f"{name}.sample"] = x.contiguous()
    save_file(out, os.path.join(FIXTURES, "euler_ancestral.safetensors"))
    print({k: tuple(v.shape) for k, v in out.items()})


if __name__ == "__main__":
    main()
