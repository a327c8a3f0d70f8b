"""Writes Tests/Fixtures/basic_unet.safetensors: the seed tutorial's BasicUNet (PyTorch) with
seeded weights, an input and target, the forward output, the MSE loss and every parameter gradient.

Run: python3 Tools/reference/basic_unet.py   (needs torch, safetensors)
"""
import os
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "basic_unet.safetensors")


class BasicUNet(nn.Module):
    """The tutorial's network, names and all (down_layers.N / up_layers.N)."""

    def __init__(self, in_channels=1, out_channels=1):
        super().__init__()
        self.down_layers = nn.ModuleList([
            nn.Conv2d(in_channels, 32, kernel_size=5, padding=2),
            nn.Conv2d(32, 64, kernel_size=5, padding=2),
            nn.Conv2d(64, 64, kernel_size=5, padding=2),
        ])
        self.up_layers = nn.ModuleList([
            nn.Conv2d(64, 64, kernel_size=5, padding=2),
            nn.Conv2d(64, 32, kernel_size=5, padding=2),
            nn.Conv2d(32, out_channels, kernel_size=5, padding=2),
        ])
        self.act = nn.SiLU()
        self.downscale = nn.MaxPool2d(2)
        self.upscale = nn.Upsample(scale_factor=2)

    def forward(self, x):
        h = []
        for i, l in enumerate(self.down_layers):
            x = self.act(l(x))
            if i < 2:
                h.append(x)
                x = self.downscale(x)
        for i, l in enumerate(self.up_layers):
            if i > 0:
                x = self.upscale(x)
                x += h.pop()
            x = self.act(l(x))
        return x


def main():
    torch.manual_seed(0)
    net = BasicUNet()
    assert sum(p.numel() for p in net.parameters()) == 309057
    x = torch.rand(3, 1, 28, 28)
    target = torch.rand(3, 1, 28, 28)
    out = net(x)
    loss = F.mse_loss(out, target)
    loss.backward()
    tensors = {name: p.detach().clone() for name, p in net.named_parameters()}
    for name, p in net.named_parameters():
        tensors["grad." + name] = p.grad.detach().clone()
    tensors["input"] = x
    tensors["target"] = target
    tensors["output"] = out.detach()
    tensors["loss"] = loss.detach().reshape(1)
    save_file(tensors, OUT, metadata={"script": "Tools/reference/basic_unet.py", "torch": torch.__version__})
    print("wrote", os.path.normpath(OUT), "loss", loss.item())


if __name__ == "__main__":
    main()
