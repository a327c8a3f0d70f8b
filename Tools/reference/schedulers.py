"""Writes Tests/Fixtures/schedulers.safetensors: diffusers' DDPMScheduler tables (betas,
alphas_cumprod) for every beta schedule, set_timesteps for every spacing, add_noise, and
DDPM / DDIM step outputs.

Keys: <case>.betas, <case>.alphas_cumprod; timesteps.<spacing>.<n> (as float32);
add_noise.{x,noise,timesteps,out} with the linear schedule; step.{sample,output,noise};
ddpm.<variance_type>.<prediction_type>.{prev,x0} at t=780 (50 leading steps, previous 760),
ddpm.last.{prev,x0} at t=0; ddim.<case>.{prev,x0} (see DDIM_CASES); ddpm_threshold.<prediction_type>.{prev,x0}:
DDPM steps at t=780 with dynamic thresholding (THRESHOLD) on 3x the step output.
"""
import os
import torch
from diffusers import DDIMScheduler, DDPMScheduler
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


THRESHOLD = dict(thresholding=True, dynamic_thresholding_ratio=0.9, sample_max_value=2.5)

DDIM_CASES = {
    # name: (scheduler kwargs, timestep, eta, use_clipped_model_output)
    "eta0": (dict(), 780, 0.0, False),
    "eta07": (dict(), 780, 0.7, False),
    "clipped_output": (dict(), 780, 0.5, True),
    "sample_pred": (dict(prediction_type="sample"), 500, 0.0, False),
    "v_pred": (dict(prediction_type="v_prediction", clip_sample=False), 500, 0.3, False),
    "last_no_alpha_one": (dict(set_alpha_to_one=False), 0, 0.0, False),
    "scaled_linear_trailing": (dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                                    timestep_spacing="trailing", clip_sample=False), 999, 0.0, False),
    # Dynamic thresholding (Imagen): per-image quantile of |x0|, clamped to [1, sample_max_value].
    "threshold": (THRESHOLD, 780, 0.5, False),
    "threshold_clipped": (THRESHOLD, 780, 0.5, True),
    "threshold_v": (dict(THRESHOLD, prediction_type="v_prediction"), 500, 0.0, False),
}


def add_steps(tensors):
    torch.manual_seed(4)
    sample = torch.randn(2, 3, 5, 4) * 1.5
    output = torch.randn(2, 3, 5, 4)
    noise = torch.randn(sample.shape, generator=torch.Generator().manual_seed(5))
    tensors["step.sample"] = sample
    tensors["step.output"] = output
    tensors["step.noise"] = noise
    for variance in ["fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log"]:
        for prediction in ["epsilon", "sample", "v_prediction"]:
            s = DDPMScheduler(variance_type=variance, prediction_type=prediction)
            s.set_timesteps(50)
            out = s.step(output, 780, sample, generator=torch.Generator().manual_seed(5))
            tensors[f"ddpm.{variance}.{prediction}.prev"] = out.prev_sample
            tensors[f"ddpm.{variance}.{prediction}.x0"] = out.pred_original_sample
    for prediction in ["epsilon", "sample", "v_prediction"]:
        s = DDPMScheduler(prediction_type=prediction, **THRESHOLD)
        s.set_timesteps(50)
        out = s.step(output * 3, 780, sample, generator=torch.Generator().manual_seed(5))
        tensors[f"ddpm_threshold.{prediction}.prev"] = out.prev_sample
        tensors[f"ddpm_threshold.{prediction}.x0"] = out.pred_original_sample
    s = DDPMScheduler()
    s.set_timesteps(50)
    out = s.step(output, 0, sample, generator=torch.Generator().manual_seed(5))
    tensors["ddpm.last.prev"] = out.prev_sample
    tensors["ddpm.last.x0"] = out.pred_original_sample
    for name, (kwargs, t, eta, clipped) in DDIM_CASES.items():
        s = DDIMScheduler(**kwargs)
        s.set_timesteps(50)
        out = s.step(output, t, sample, eta=eta, use_clipped_model_output=clipped,
                     variance_noise=noise if eta > 0 else None)
        tensors[f"ddim.{name}.prev"] = out.prev_sample
        tensors[f"ddim.{name}.x0"] = out.pred_original_sample


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
    add_steps(tensors)
    save_file(tensors, OUT, metadata={"script": "Tools/reference/schedulers.py", "torch": torch.__version__,
                                      "diffusers": diffusers.__version__})
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
