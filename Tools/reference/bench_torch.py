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
    parser.add_argument("--workload", action="append", default=[],
                        help="only these workloads (repeatable); all when none is given")
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

    from diffusers import DDPMScheduler, UNet2DModel
    unet = UNet2DModel(sample_size=28, in_channels=1, out_channels=1, layers_per_block=2,
                       block_out_channels=(32, 64, 64),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    unet_opt = torch.optim.AdamW(unet.parameters(), lr=4e-4)
    clean64 = torch.rand(64, 1, 28, 28) * 2 - 1

    def unet_train_step():
        noise = torch.randn_like(clean64)
        timesteps = torch.randint(0, 999, (64,)).long()
        noisy = scheduler.add_noise(clean64, noise, timesteps)
        loss = F.mse_loss(unet(noisy, timesteps).sample, noise)
        unet_opt.zero_grad()
        loss.backward()
        unet_opt.step()

    sample8 = torch.randn(8, 1, 28, 28)
    sampler = DDPMScheduler()
    sampler.set_timesteps(1000)

    def unet_sample_step():
        with torch.no_grad():
            out = unet(sample8, 500).sample
            sampler.step(out, 500, sample8)

    workloads = [
        ("basic_unet_train", b, train_step),
        ("basic_unet_forward", b, forward),
        ("unet2d_train", 64, unet_train_step),
        ("unet2d_sample_step", 8, unet_sample_step),
    ]
    results = [dict(name=name, device=device, batch_size=batch,
                    images_per_second=images_per_second(batch, args.seconds, body))
               for name, batch, body in workloads if not args.workload or name in args.workload]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
