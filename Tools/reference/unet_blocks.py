"""Writes Tests/Fixtures/unet_blocks.safetensors: diffusers' UNet building blocks with seeded
weights: get_timestep_embedding for several settings, TimestepEmbedding, and ResnetBlock2D
(default and scale_shift time-embedding norms, with a 1x1 shortcut), each with the gradients of
sum(out * w) for its inputs and parameters.

Keys: temb.<case> (embedding of timesteps [0, 17, 999]);
<block>.param.<state-dict name>, <block>.in.<name>, <block>.out, <block>.w, <block>.grad.<name>
(inputs and parameters) for block in {time_embedding, resnet_default, resnet_scale_shift, attention
(as AttnDownBlock2D builds it: 8 channels, head dim 4 so 2 heads, group norm, residual, rescale 2),
downsample, upsample}.
"""
import os
import torch
import diffusers
from diffusers.models.embeddings import TimestepEmbedding, get_timestep_embedding
from diffusers.models.attention_processor import Attention
from diffusers.models.downsampling import Downsample2D
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.upsampling import Upsample2D
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "unet_blocks.safetensors")


def record(tensors, name, module, inputs):
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = module(*leaves.values())
    w = torch.randn(out.shape)
    (out * w).sum().backward()
    tensors[f"{name}.out"] = out.detach().contiguous()
    tensors[f"{name}.w"] = w
    for k, v in leaves.items():
        tensors[f"{name}.in.{k}"] = inputs[k]
        tensors[f"{name}.grad.{k}"] = v.grad
    for k, p in module.named_parameters():
        tensors[f"{name}.param.{k}"] = p.detach().clone()
        tensors[f"{name}.grad.{k}"] = p.grad.clone()


def main():
    torch.manual_seed(6)
    tensors = {}
    t = torch.tensor([0, 17, 999])
    for name, (dim, flip, shift) in {"even_flip_shift0": (10, True, 0), "even_noflip_shift1": (10, False, 1),
                                     "odd_flip_shift1": (9, True, 1)}.items():
        tensors[f"temb.{name}"] = get_timestep_embedding(t, dim, flip_sin_to_cos=flip, downscale_freq_shift=shift)
    record(tensors, "time_embedding", TimestepEmbedding(6, 8), {"sample": torch.randn(3, 6)})
    for norm in ["default", "scale_shift"]:
        block = ResnetBlock2D(in_channels=4, out_channels=6, temb_channels=8, groups=2, eps=1e-6,
                              time_embedding_norm=norm, output_scale_factor=1.5)
        with torch.no_grad():  # nonzero norms so their gradients are checked meaningfully
            for m in [block.norm1, block.norm2]:
                m.weight.normal_(1, 0.2)
                m.bias.normal_(0, 0.2)
        record(tensors, f"resnet_{norm}", block, {"x": torch.randn(2, 4, 5, 7), "temb": torch.randn(2, 8)})
    attention = Attention(8, heads=2, dim_head=4, rescale_output_factor=2.0, eps=1e-6, norm_num_groups=4,
                          residual_connection=True, bias=True, upcast_softmax=True, _from_deprecated_attn_block=True)
    with torch.no_grad():
        attention.group_norm.weight.normal_(1, 0.2)
        attention.group_norm.bias.normal_(0, 0.2)
    record(tensors, "attention", attention, {"x": torch.randn(2, 8, 3, 5)})
    record(tensors, "downsample", Downsample2D(6, use_conv=True, out_channels=6, padding=1, name="op"),
           {"x": torch.randn(2, 6, 7, 6)})
    record(tensors, "upsample", Upsample2D(6, use_conv=True, out_channels=6), {"x": torch.randn(2, 6, 3, 4)})
    save_file(tensors, OUT, metadata={"script": "Tools/reference/unet_blocks.py", "torch": torch.__version__,
                                      "diffusers": diffusers.__version__})
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
