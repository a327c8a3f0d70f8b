"""Writes two small random UNet2DModels with their outputs and gradients, and their configs:
- Tests/Fixtures/unet2d_small.{safetensors,json}: DownBlock2D/AttnDownBlock2D/AttnUpBlock2D/UpBlock2D;
  its JSON is written the way old Hub configs look (keys newer diffusers added are left out), so
  the reader's defaults are checked too;
- Tests/Fixtures/unet2d_resnet.{safetensors,json}: ResnetDownsampleBlock2D, AttnDownBlock2D and
  AttnUpBlock2D with resnet down/upsampling, ResnetUpsampleBlock2D, scale_shift time embedding;
- Tests/Fixtures/unet2d_class{,_timestep}.{safetensors,json}: class conditioning through an
  embedding table (num_class_embeds 5) and through a timestep embedding of the labels (key class_labels);
- Tests/Fixtures/unet2d_fourier.{safetensors,json}: time_embedding_type "fourier";
- Tests/Fixtures/unet2d_pad0.{safetensors,json}: downsample_padding 0 (the original DDPM's padding).

Keys: param.<state-dict name>, grad.<state-dict name>, input, timesteps (float32), out, w, grad.input.
"""
import json
import os
import torch
import diffusers
from diffusers import UNet2DModel
from safetensors.torch import save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")
LEGACY_MISSING = ["add_attention", "attn_norm_num_groups", "class_embed_type", "num_class_embeds",
                  "downsample_type", "upsample_type", "dropout", "num_train_timesteps", "resnet_time_scale_shift",
                  "time_embedding_dim", "_use_default_values"]


def write(name, config, legacy, class_labels=None):
    model = UNet2DModel(**config)
    with torch.no_grad():  # random norms, so their gradients are checked meaningfully
        for key, p in model.named_parameters():
            if "norm" in key and key.endswith("weight"):
                p.normal_(1, 0.2)
            elif "norm" in key and key.endswith("bias"):
                p.normal_(0, 0.2)
    x = torch.randn(2, config["in_channels"], 8, 8).requires_grad_(True)
    t = torch.tensor([3, 700])
    out = model(x, t, class_labels=class_labels).sample
    w = torch.randn(out.shape)
    (out * w).sum().backward()
    tensors = {"input": x.detach().clone(), "timesteps": t.to(torch.float32), "out": out.detach().contiguous(), "w": w,
               "grad.input": x.grad}
    if class_labels is not None:
        tensors["class_labels"] = class_labels.to(torch.float32)
    for key, p in model.named_parameters():
        tensors["param." + key] = p.detach().clone()
        if p.requires_grad:  # the fourier projection's frequencies are frozen
            tensors["grad." + key] = p.grad.clone()
    save_file(tensors, os.path.join(FIXTURES, name + ".safetensors"),
              metadata={"script": "Tools/reference/unet2d.py", "torch": torch.__version__,
                        "diffusers": diffusers.__version__})
    saved = dict(model.config)
    if legacy:
        saved = {k: v for k, v in saved.items() if k not in LEGACY_MISSING}
    saved["_class_name"] = "UNet2DModel"
    with open(os.path.join(FIXTURES, name + ".json"), "w") as f:
        json.dump(saved, f, indent=2, sort_keys=True)


def main():
    torch.manual_seed(7)
    write("unet2d_small", dict(sample_size=8, in_channels=2, out_channels=2, layers_per_block=1,
                               block_out_channels=(8, 16), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                               up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=4,
                               attention_head_dim=4, mid_block_scale_factor=1.25, freq_shift=1), legacy=True)
    write("unet2d_resnet", dict(sample_size=8, in_channels=2, out_channels=3, layers_per_block=1,
                                block_out_channels=(8, 16, 16),
                                down_block_types=("ResnetDownsampleBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "AttnUpBlock2D", "ResnetUpsampleBlock2D"),
                                downsample_type="resnet", upsample_type="resnet", norm_num_groups=4,
                                attention_head_dim=8, resnet_time_scale_shift="scale_shift",
                                flip_sin_to_cos=False, center_input_sample=True), legacy=False)
    small = dict(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1, block_out_channels=(8, 16),
                 down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                 norm_num_groups=4, attention_head_dim=4)
    write("unet2d_class", dict(small, num_class_embeds=5), legacy=False, class_labels=torch.tensor([1, 4]))
    write("unet2d_class_timestep", dict(small, class_embed_type="timestep"), legacy=False,
          class_labels=torch.tensor([2, 9]))
    write("unet2d_fourier", dict(small, time_embedding_type="fourier"), legacy=False)
    write("unet2d_pad0", dict(small, downsample_padding=0), legacy=False)
    seed = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2,
                       block_out_channels=(32, 64, 64),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"))
    print("seed config parameters:", sum(p.numel() for p in seed.parameters()))


if __name__ == "__main__":
    main()
