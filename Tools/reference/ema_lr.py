"""Writes Tests/Fixtures/ema_lr.safetensors: diffusers' learning-rate schedules and EMAModel, as
train_unconditional.py uses them (diffusers 0.42.1, torch 2.15).

- lr/<schedule>_<warmup>_<total>: get_scheduler(schedule, optimizer, num_warmup_steps,
  num_training_steps) over an optimizer at lr 2e-4: get_last_lr() at construction and after each
  of total + 3 scheduler steps (the lr the next optimizer step uses).
- ema/...: EMAModel(parameters, decay=0.995, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
  stepped 40 times while three parameters take random steps from ema/initial_<i>: ema/params_<i> holds every step's
  parameter values (step-major), ema/shadow_<i>_<k> the averages after step k, ema/decays each step's
  decay (cur_decay_value).
- clip/...: torch.nn.utils.clip_grad_norm_ of three gradients (clip/grad_<i>) at max_norm 0.5
  (clips: clip/clipped_<i>_0.5) and 100 (leaves them: clip/clipped_<i>_100), and the total norm
  it returns (clip/total).
"""
import os

import torch
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from safetensors.torch import save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")
SCHEDULES = ["constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial"]
CASES = [(0, 10), (3, 12), (5, 5), (4, 30)]


def main():
    out = {}
    for name in SCHEDULES:
        for warmup, total in CASES:
            if name == "polynomial" and warmup == total:
                continue  # diffusers divides by total - warmup
            parameter = torch.nn.Parameter(torch.zeros(1))
            optimizer = torch.optim.AdamW([parameter], lr=2e-4)
            scheduler = get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)
            lrs = [scheduler.get_last_lr()[0]]
            for _ in range(total + 3):
                optimizer.step()
                scheduler.step()
                lrs.append(scheduler.get_last_lr()[0])
            out[f"lr/{name}_{warmup}_{total}"] = torch.tensor(lrs, dtype=torch.float64)

    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(shape)) for shape in [(5,), (2, 3), (4,)]]
    for i, p in enumerate(params):
        out[f"ema/initial_{i}"] = p.detach().clone().flatten()
    ema = EMAModel(params, decay=0.995, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    history = [[] for _ in params]
    decays = []
    for step in range(1, 41):
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn_like(p) * 0.1)
        for i, p in enumerate(params):
            history[i].append(p.detach().clone().flatten())
        ema.step(params)
        decays.append(ema.cur_decay_value)
        if step in (1, 2, 10, 40):
            for i, s in enumerate(ema.shadow_params):
                out[f"ema/shadow_{i}_{step}"] = s.detach().clone().flatten()
    for i, h in enumerate(history):
        out[f"ema/params_{i}"] = torch.cat(h)
    out["ema/decays"] = torch.tensor(decays, dtype=torch.float64)
    torch.manual_seed(1)
    grads = [torch.randn(shape) * scale for shape, scale in [((7,), 0.3), ((3, 4), 0.05), ((5,), 1.0)]]
    for i, g in enumerate(grads):
        out[f"clip/grad_{i}"] = g.clone()
    for max_norm in (0.5, 100):
        params = [torch.nn.Parameter(torch.zeros_like(g)) for g in grads]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        out["clip/total"] = total.reshape(1).clone()
        for i, p in enumerate(params):
            out[f"clip/clipped_{i}_{max_norm}"] = p.grad.clone()
    save_file(out, os.path.join(FIXTURES, "ema_lr.safetensors"))
    print(len(out), "tensors")


if __name__ == "__main__":
    main()
