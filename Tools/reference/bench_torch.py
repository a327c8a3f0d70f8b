"""PyTorch twin of `diffuse bench`: the same workloads (BasicUNet, the seed UNet2DModel, train_unconditional.py's
RGB model at 32 and 64 pixels when named, a 1024^3
GEMM) in eager PyTorch on the CPU or a CUDA GPU, printed as the same JSON list (name, device,
batch_size, images_per_second; gflops for the GEMM). `diffuse bench --torch-script` runs it.
CUDA timings synchronise before the clock is read, so queued work is counted.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

from basic_unet import BasicUNet


def images_per_second(batch, seconds, body, sync, minimum_runs=3):
    body()
    sync()
    runs = 0
    start = time.perf_counter()
    while runs < minimum_runs or time.perf_counter() - start < seconds:
        body()
        runs += 1
        sync()
    return runs * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workload", action="append", default=[],
                        help="only these workloads (repeatable); all when none is given")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    torch.manual_seed(1)
    b = args.batch_size
    dev = torch.device(args.device)
    if args.device == "cuda":
        device = f"torch {torch.__version__} cuda ({torch.cuda.get_device_name(0)})"
        sync = torch.cuda.synchronize
    else:
        device = f"torch {torch.__version__} cpu ({torch.get_num_threads()} threads)"
        sync = lambda: None
    net = BasicUNet().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    clean = torch.rand(b, 1, 28, 28, device=dev)

    def train_step():
        amount = torch.rand(b, device=dev).view(-1, 1, 1, 1)
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
                       up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D")).to(dev)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    unet_opt = torch.optim.AdamW(unet.parameters(), lr=4e-4)
    clean64 = torch.rand(64, 1, 28, 28, device=dev) * 2 - 1

    def unet_train_step():
        noise = torch.randn_like(clean64)
        timesteps = torch.randint(0, 999, (64,), device=dev).long()
        noisy = scheduler.add_noise(clean64, noise, timesteps)
        loss = F.mse_loss(unet(noisy, timesteps).sample, noise)
        unet_opt.zero_grad()
        loss.backward()
        unet_opt.step()

    sample8 = torch.randn(8, 1, 28, 28, device=dev)
    sampler = DDPMScheduler()
    sampler.set_timesteps(1000)

    def unet_sample_step():
        with torch.no_grad():
            out = unet(sample8, 500).sample
            sampler.step(out, 500, sample8)

    # train_unconditional.py's model, built only when asked for (113.7M parameters).
    def rgb_workloads(size, batch):
        model = UNet2DModel(sample_size=size, in_channels=3, out_channels=3, layers_per_block=2,
                            block_out_channels=(128, 128, 256, 256, 512, 512),
                            down_block_types=("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
                            up_block_types=("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4).to(dev)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        clean = torch.rand(batch, 3, size, size, device=dev) * 2 - 1

        def train():
            noise = torch.randn_like(clean)
            timesteps = torch.randint(0, 999, (batch,), device=dev).long()
            loss = F.mse_loss(model(scheduler.add_noise(clean, noise, timesteps), timesteps).sample, noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        def sample():
            with torch.no_grad():
                sampler.step(model(clean, 500).sample, 500, clean)

        return train, sample

    a1024 = torch.rand(1024, 1024, device=dev)
    b1024 = torch.rand(1024, 1024, device=dev)

    def gemm():
        torch.mm(a1024, b1024)

    workloads = [
        ("basic_unet_train", b, train_step),
        ("basic_unet_forward", b, forward),
        ("unet2d_train", 64, unet_train_step),
        ("unet2d_sample_step", 8, unet_sample_step),
    ]
    if "unet2d_rgb32_train" in args.workload or "unet2d_rgb32_sample_step" in args.workload:
        train32, sample32 = rgb_workloads(32, 8)
        workloads += [("unet2d_rgb32_train", 8, train32), ("unet2d_rgb32_sample_step", 8, sample32)]
    if "unet2d_rgb64_train" in args.workload:
        workloads.append(("unet2d_rgb64_train", 4, rgb_workloads(64, 4)[0]))
    results = [dict(name=name, device=device, batch_size=batch,
                    images_per_second=images_per_second(batch, args.seconds, body, sync))
               for name, batch, body in workloads if not args.workload or name in args.workload]
    if "gemm_1024" in args.workload:
        # One "image" per product: GFLOP/s = products/s * 2 * 1024^3 / 1e9.
        per_second = images_per_second(1, args.seconds, gemm, sync)
        results.append(dict(name="gemm_1024", device=device, batch_size=1, images_per_second=per_second,
                            gflop_per_second=per_second * 2 * 1024 ** 3 / 1e9))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
