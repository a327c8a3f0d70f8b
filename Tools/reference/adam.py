"""Writes Tests/Fixtures/adam.safetensors: several torch.optim.Adam / AdamW steps on fixed
parameters and gradients, to check Diffuse's fused update against PyTorch's.

Keys: init.pN, grad.sS.pN (gradient fed at step S), <variant>.sS.pN (parameter after step S) for
variants adam (lr 1e-2), adam_l2 (lr 1e-2, weight_decay 0.1), adamw (lr 1e-2, default wd 0.01),
adamw_wd (lr 4e-4, wd 0.3, betas (0.8, 0.95), eps 1e-6).
"""
import os
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "adam.safetensors")
STEPS = 6
VARIANTS = {
    "adam": (torch.optim.Adam, dict(lr=1e-2)),
    "adam_l2": (torch.optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
    "adamw": (torch.optim.AdamW, dict(lr=1e-2)),
    "adamw_wd": (torch.optim.AdamW, dict(lr=4e-4, weight_decay=0.3, betas=(0.8, 0.95), eps=1e-6)),
}


def main():
    torch.manual_seed(1)
    shapes = [(5, 7), (3,)]
    init = [torch.randn(s) for s in shapes]
    grads = [[torch.randn(s) * (0.1 + step) for s in shapes] for step in range(STEPS)]
    tensors = {}
    for n, p in enumerate(init):
        tensors[f"init.p{n}"] = p
    for step in range(STEPS):
        for n, g in enumerate(grads[step]):
            tensors[f"grad.s{step}.p{n}"] = g
    for name, (cls, kwargs) in VARIANTS.items():
        params = [p.clone().requires_grad_(True) for p in init]
        opt = cls(params, **kwargs)
        for step in range(STEPS):
            for p, g in zip(params, grads[step]):
                p.grad = g.clone()
            opt.step()
            for n, p in enumerate(params):
                tensors[f"{name}.s{step}.p{n}"] = p.detach().clone()
    save_file(tensors, OUT, metadata={"script": "Tools/reference/adam.py", "torch": torch.__version__})
    print("wrote", os.path.normpath(OUT))


if __name__ == "__main__":
    main()
