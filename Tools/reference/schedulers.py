"""Writes Tests/Fixtures/schedulers.safetensors: diffusers' DDPMScheduler tables (betas,
alphas_cumprod) for every beta schedule, set_timesteps for every spacing, and add_noise.

Keys: <case>.betas, <case>.alphas_cumprod; timesteps.<spacing>.<n> (as float32);
add_noise.{x,noise,timesteps,out} with the linear schedule.
"""
import os
import torch
from diffusers import DDPMScheduler
from safetensors.torch import save_file
import diffusers

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "schedulers.safetensors")
CASES = {
    "linear": dict(),
    "scaled_linear": dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
    "squaredcos_cap_v2": dict(beta_schedule="squaredcos_cap_v2"),
    "sigmoid": dict(beta_schedule="sigmoid"),
    "linear_zero_snr": dict(rescale_betas_zero_snr=True),
    "short_linear": dict(num_train_timesteps=37, beta_start=0.001, beta_end=0.05),
}


def main():
    tensors = {}
    for name, kwargs in CASES.items():
        s = DDPMScheduler(**kwargs)
        tensors[f"{name}.betas"] = s.betas.clone()
        tensors[f"{name}.alphas_cumprod"] = s.alphas_cumprod.clone()
    for spacing, offset in [("leading", 1), ("linspace", 0), ("trailing", 0)]:
        s = DDPMScheduler(timestep_spacing=spacing, steps_offset=offset)
        for n in [1, 7, 50, 333, 1000]:
            s.set_timesteps(n)
            tensors[f"timesteps.{spacing}.{n}"] = s.timesteps.to(torch.float32)
    torch.manual_seed(3)
    s = DDPMScheduler()
    x = torch.randn(3, 2, 4, 5)
    noise = torch.randn(3, 2, 4, 5)
    t = torch.tensor([0, 499, 999])
    tensors["add_noise.x"] = x
    tensors["add_noise.noise"] = noise
    tensors["add_noise.timesteps"] = t.to(torch.float32)
    tensors["add_noise.out"] = s.add_noise(x, noise, t)
    save_file(tensors, OUT, metadata={"script": "Tools/reference/schedulers.py", "torch": torch.__version__,
                                      "diffusers": diffusers.__version__})
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
