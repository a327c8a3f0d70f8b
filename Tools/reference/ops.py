"""Writes Tests/Fixtures/ops.safetensors: single ops from PyTorch with their input gradients for a
weighted-sum loss, so each CPU op is checked against the real thing (not only finite differences).

Each op NAME stores NAME.in.* (inputs), NAME.out (forward) and NAME.grad.* (d sum(out * NAME.w) / d input).
"""
import math
import os
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "ops.safetensors")
tensors = {}


def record(name, fn, **inputs):
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    w = torch.randn(out.shape)
    (out * w).sum().backward()
    tensors[f"{name}.out"] = out.detach()
    tensors[f"{name}.w"] = w
    for k, v in leaves.items():
        tensors[f"{name}.in.{k}"] = inputs[k]
        tensors[f"{name}.grad.{k}"] = v.grad


def main():
    torch.manual_seed(2)
    # Strided, padded convolution with odd sizes.
    record("conv", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
           x=torch.randn(2, 3, 9, 7), w=torch.randn(5, 3, 3, 3), b=torch.randn(5))
    record("conv1x1", lambda x, w, b: F.conv2d(x, w, b),
           x=torch.randn(3, 4, 5, 6), w=torch.randn(7, 4, 1, 1), b=torch.randn(7))
    record("group_norm", lambda x, w, b: F.group_norm(x, 3, w, b, eps=1e-6),
           x=torch.randn(2, 6, 5, 3) * 3 + 1, w=torch.randn(6), b=torch.randn(6))
    d = 8
    record("attention", lambda q, k, v: torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1) @ v,
           q=torch.randn(3, 5, d), k=torch.randn(3, 7, d), v=torch.randn(3, 7, d))
    record("max_pool", lambda x: F.max_pool2d(x, 2), x=torch.randn(2, 3, 6, 8))
    record("upsample", lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), x=torch.randn(2, 3, 3, 5))
    record("silu", lambda x: F.silu(x), x=torch.randn(4, 9) * 4)
    record("softmax", lambda x: torch.softmax(x, dim=-1), x=torch.randn(4, 9) * 3)
    record("linear", lambda x, w, b: F.linear(x, w, b), x=torch.randn(2, 3, 6), w=torch.randn(4, 6), b=torch.randn(4))
    record("broadcast_mul", lambda a, b: a * b, a=torch.randn(3, 4, 5, 2), b=torch.randn(3, 1, 1, 1))
    record("mse", lambda a, b: F.mse_loss(a, b), a=torch.randn(3, 7), b=torch.randn(3, 7))
    save_file(tensors, OUT, metadata={"script": "Tools/reference/ops.py", "torch": torch.__version__})
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
