"""Writes Tests/Fixtures/dpm_solver.safetensors: diffusers' DPMSolverMultistepScheduler built from
the tiny DDPM pipeline's scheduler config (DPMSolverMultistepScheduler.from_config(config, **options),
as a user switching samplers does) for several option sets: each one's timesteps and sigmas and the
final sample of diffusers' loop (scale_model_input, UNet, step) from tiny-ddpm-noise.safetensors.
The SDE variant's loop takes its noise from `variance_noise`, drawn here and stored per step.
The "folder" case's scheduler is also saved by save_config into Tests/Fixtures/dpm-scheduler/, the
scheduler_config.json of a pipeline that ships a DPM-Solver scheduler.
diffusers 0.42.1, torch 2.15.
"""
import os
import torch
from diffusers import DPMSolverMultistepScheduler, UNet2DModel
from safetensors.torch import load_file, save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")

# name: (steps, from_config keyword overrides)
CASES = {
    "2m_7": (7, {}),
    "2m_20": (20, {}),
    "3m_20": (20, {"solver_order": 3}),
    "1_10": (10, {"solver_order": 1}),
    "heun_10": (10, {"solver_type": "heun"}),
    "3m_sigma_min_16": (16, {"solver_order": 3, "final_sigmas_type": "sigma_min"}),
    "euler_final_16": (16, {"euler_at_final": True}),
    "linspace_12": (12, {"timestep_spacing": "linspace"}),
    "trailing_12": (12, {"timestep_spacing": "trailing"}),
    "clipped_12": (12, {"lambda_min_clipped": -5.1}),
    "karras_10": (10, {"use_karras_sigmas": True, "beta_schedule": "linear"}),
    "threshold_3m_9": (9, {"solver_order": 3, "thresholding": True, "sample_max_value": 1.2}),
    "sde_10": (10, {"algorithm_type": "sde-dpmsolver++"}),
    "sde_3m_12": (12, {"algorithm_type": "sde-dpmsolver++", "solver_order": 3, "solver_type": "heun"}),
    "folder_3m_heun_12": (12, {"solver_order": 3, "solver_type": "heun", "timestep_spacing": "trailing"}),
}


def main():
    folder = os.path.join(FIXTURES, "tiny-ddpm")
    unet = UNet2DModel.from_pretrained(os.path.join(folder, "unet")).eval()
    config = DPMSolverMultistepScheduler.load_config(os.path.join(folder, "scheduler"))
    noise = load_file(os.path.join(FIXTURES, "tiny-ddpm-noise.safetensors"))["sample"]
    out = {}
    generator = torch.Generator().manual_seed(7)
    for name, (steps, options) in CASES.items():
        scheduler = DPMSolverMultistepScheduler.from_config(config, **options)
        if name.startswith("folder"):
            scheduler.save_config(os.path.join(FIXTURES, "dpm-scheduler"))
        scheduler.set_timesteps(steps)
        out[f"{name}.timesteps"] = scheduler.timesteps.float().contiguous()
        out[f"{name}.sigmas"] = scheduler.sigmas.float().contiguous()
        x = noise * scheduler.init_noise_sigma
        draws = []
        with torch.no_grad():
            for t in scheduler.timesteps:
                model_input = scheduler.scale_model_input(x, t)
                output = unet(model_input, t).sample
                if name.startswith("sde"):
                    variance = torch.randn(x.shape, generator=generator)
                    draws.append(variance)
                    x = scheduler.step(output, t, x, variance_noise=variance).prev_sample
                else:
                    x = scheduler.step(output, t, x).prev_sample
        if draws:
            out[f"{name}.noise"] = torch.stack(draws).contiguous()
        out[f"{name}.sample"] = x.contiguous()
    save_file(out, os.path.join(FIXTURES, "dpm_solver.safetensors"))
    print({k: tuple(v.shape) for k, v in out.items() if k.endswith("timesteps")})


if __name__ == "__main__":
    main()
