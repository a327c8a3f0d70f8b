"""PyTorch twin of `diffuse bench`: the same BasicUNet workloads on the CPU, printed as the same
JSON list (name, device, batch_size, images_per_second). `diffuse bench --torch-script` runs it.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from basic_unet import BasicUNet


def images_per_second(batch, seconds, body, minimum_runs=3):
    body()
    runs = 0
    start = time.perf_counter()
    while runs < minimum_runs or time.perf_counter() - start < seconds:
        body()
        runs += 1
    return runs * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    torch.manual_seed(1)
    b = args.batch_size
    device = f"torch {torch.__version__} cpu ({torch.get_num_threads()} threads)"
    net = BasicUNet()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    clean = torch.rand(b, 1, 28, 28)

    def train_step():
        amount = torch.rand(b).view(-1, 1, 1, 1)
        noisy = clean * (1 - amount) + torch.rand_like(clean) * amount
        loss = F.mse_loss(net(noisy), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def forward():
        with torch.no_grad():
            net(clean)

    results = [
        dict(name="basic_unet_train", device=device, batch_size=b,
             images_per_second=images_per_second(b, args.seconds, train_step)),
        dict(name="basic_unet_forward", device=device, batch_size=b,
             images_per_second=images_per_second(b, args.seconds, forward)),
    ]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
