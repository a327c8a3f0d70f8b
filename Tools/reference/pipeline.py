"""Writes Tests/Fixtures/tiny-ddpm/: a small random DDPMPipeline saved by diffusers'
save_pretrained (the layout `diffuse sample` must read), plus tiny-ddpm-noise.safetensors (the
initial noise, key `sample`) and tiny-ddpm-ddim10.safetensors (diffusers' DDIM loop, 10 steps,
eta 0, from that noise: the final sample before clamping, key `sample`).
"""
import os
import shutil
import torch
from diffusers import DDIMScheduler, DDPMPipeline, DDPMScheduler, UNet2DModel
from safetensors.torch import save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")


def main():
    torch.manual_seed(8)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4, attention_head_dim=4)
    scheduler = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    folder = os.path.join(FIXTURES, "tiny-ddpm")
    shutil.rmtree(folder, ignore_errors=True)
    DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder)
    noise = torch.randn(2, 3, 8, 8)
    save_file({"sample": noise}, os.path.join(FIXTURES, "tiny-ddpm-noise.safetensors"))
    ddim = DDIMScheduler.from_config(scheduler.config)
    ddim.set_timesteps(10)
    x = noise.clone()
    with torch.no_grad():
        for t in ddim.timesteps:
            x = ddim.step(unet(x, t).sample, t, x, eta=0.0).prev_sample
    save_file({"sample": x.contiguous()}, os.path.join(FIXTURES, "tiny-ddpm-ddim10.safetensors"))
    print("wrote", os.path.normpath(folder))


if __name__ == "__main__":
    main()
