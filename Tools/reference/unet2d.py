"""Writes Tests/Fixtures/unet2d_small.safetensors (+ unet2d_small.json, its config as diffusers saves
it): a small random UNet2DModel with every supported block type, its forward output for fixed
input and timesteps, and the gradients of sum(out * w) for the input and every parameter.

Keys: param.<state-dict name>, grad.<state-dict name>, input, timesteps (float32), out, w, grad.input.
"""
import json
import os
import torch
import diffusers
from diffusers import UNet2DModel
from safetensors.torch import save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")


def main():
    torch.manual_seed(7)
    config = dict(sample_size=8, in_channels=2, out_channels=2, layers_per_block=1, block_out_channels=(8, 16),
                  down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                  norm_num_groups=4, attention_head_dim=4, mid_block_scale_factor=1.25, freq_shift=1)
    model = UNet2DModel(**config)
    with torch.no_grad():  # random norms, so their gradients are checked meaningfully
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.normal_(1, 0.2)
            elif "norm" in name and name.endswith("bias"):
                p.normal_(0, 0.2)
    x = torch.randn(2, 2, 8, 8).requires_grad_(True)
    t = torch.tensor([3, 700])
    out = model(x, t).sample
    w = torch.randn(out.shape)
    (out * w).sum().backward()
    tensors = {"input": x.detach().clone(), "timesteps": t.to(torch.float32), "out": out.detach().contiguous(), "w": w,
               "grad.input": x.grad}
    for name, p in model.named_parameters():
        tensors["param." + name] = p.detach().clone()
        tensors["grad." + name] = p.grad.clone()
    save_file(tensors, os.path.join(FIXTURES, "unet2d_small.safetensors"),
              metadata={"script": "Tools/reference/unet2d.py", "torch": torch.__version__,
                        "diffusers": diffusers.__version__})
    with open(os.path.join(FIXTURES, "unet2d_small.json"), "w") as f:
        json.dump(dict(model.config), f, indent=2, sort_keys=True)
    seed = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2,
                       block_out_channels=(32, 64, 64),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"))
    print("seed config parameters:", sum(p.numel() for p in seed.parameters()))


if __name__ == "__main__":
    main()
