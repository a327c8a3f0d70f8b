"""Writes Tests/Fixtures/unipc.safetensors: diffusers' UniPCMultistepScheduler built from the tiny
DDPM pipeline's scheduler config (UniPCMultistepScheduler.from_config(config, **options), as a user
switching samplers does) for several option sets: its timesteps and sigmas and the final sample of
diffusers' loop (scale_model_input, UNet, step) from tiny-ddpm-noise.safetensors.
diffusers 0.42.1, torch 2.15.
"""
import os
import torch
from diffusers import UniPCMultistepScheduler, UNet2DModel
from safetensors.torch import load_file, save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")

CASES = {
    "bh2_2_8": (8, {}),
    "bh2_2_20": (20, {}),
    # bh1 with a zero final sigma gives NaN in diffusers (B(h) = -h = -inf times a zero residual), so
    # its case ends at sigma_min.
    "bh1_3_12": (12, {"solver_type": "bh1", "solver_order": 3, "final_sigmas_type": "sigma_min"}),
    "bh2_3_16": (16, {"solver_order": 3}),
    "bh2_1_6": (6, {"solver_order": 1}),
    "no_final_3_10": (10, {"solver_order": 3, "lower_order_final": False, "final_sigmas_type": "sigma_min"}),
    "corrector_off_10": (10, {"disable_corrector": [0, 3]}),
    "trailing_9": (9, {"timestep_spacing": "trailing"}),
    "threshold_10": (10, {"thresholding": True, "sample_max_value": 1.2}),
}


def main():
    folder = os.path.join(FIXTURES, "tiny-ddpm")
    unet = UNet2DModel.from_pretrained(os.path.join(folder, "unet")).eval()
    config = UniPCMultistepScheduler.load_config(os.path.join(folder, "scheduler"))
    noise = load_file(os.path.join(FIXTURES, "tiny-ddpm-noise.safetensors"))["sample"]
    out = {}
    for name, (steps, options) in CASES.items():
        scheduler = UniPCMultistepScheduler.from_config(config, **options)
        scheduler.set_timesteps(steps)
        out[f"{name}.timesteps"] = scheduler.timesteps.float().contiguous()
        out[f"{name}.sigmas"] = scheduler.sigmas.float().contiguous()
        x = noise * scheduler.init_noise_sigma
        with torch.no_grad():
            for t in scheduler.timesteps:
                output = unet(scheduler.scale_model_input(x, t), t).sample
                x = scheduler.step(output, t, x).prev_sample
        out[f"{name}.sample"] = x.contiguous()
    save_file(out, os.path.join(FIXTURES, "unipc.safetensors"))
    print({k: tuple(v.shape) for k, v in out.items() if k.endswith("timesteps")})


if __name__ == "__main__":
    main()
