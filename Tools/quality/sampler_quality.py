"""Sample quality per sampler and step count on one model trained here (issue 12, item 5).

Takes a Diffuse UNet2DModel run folder (default: runs/quality/diffuse-seed0, the tutorial's DDPM
recipe trained by Tools/quality/ddpm_quality.py) and samples it with each `diffuse sample
--scheduler` at 10, 25 and 50 steps, from the same seed, timing each run (wall time of the whole
command, model loading included). The score is ddpm_quality.py's: a Frechet distance in the 128-d
features of a small Fashion-MNIST classifier, against the 10,000 test images (lower is better).

Run:  python3 Tools/quality/sampler_quality.py [--model DIR] [--samples 200]
      (needs torch, numpy, safetensors, a release build of diffuse, dataset-fashion-mnist and the
      classifier ddpm_quality.py trains.) Prints a Markdown table and writes
      runs/quality/samplers.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(__file__))
import ddpm_quality as q  # noqa: E402

SAMPLERS = ["ddpm", "ddim", "pndm", "euler", "euler-a", "dpm++2m", "dpm++3m", "unipc"]
STEPS = [10, 25, 50]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.path.join(q.OUT, "diffuse-seed0"))
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    binary = os.path.join(q.ROOT, ".build", "release", "diffuse")
    classifier = q.classifier(None, None, None, None)
    reference = q.statistics(classifier, q.images("t10k"))
    results = []
    for sampler in SAMPLERS:
        for steps in STEPS:
            tensor = os.path.join(q.OUT, f"sampler-{sampler}-{steps}.safetensors")
            start = time.time()
            subprocess.run([binary, "sample", args.model, "--scheduler", sampler, "--steps", str(steps),
                            "--batch-size", str(args.samples), "--seed", "7", "--device", "cpu", "--quiet",
                            "--save-tensor", tensor, "--output", os.path.join(q.OUT, "sampler.png"), "--overwrite"],
                           check=True, stdout=subprocess.DEVNULL)
            seconds = time.time() - start
            images = (load_file(tensor)["sample"] / 2 + 0.5).clamp(0, 1)
            score = q.frechet(q.statistics(classifier, images), reference)
            results.append({"sampler": sampler, "steps": steps, "frechet": score, "seconds": seconds})
            print(f"{sampler:10s} {steps:3d} steps  {score:8.2f}  {seconds:6.1f} s", flush=True)
    with open(os.path.join(q.OUT, "samplers.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("\n| sampler | " + " | ".join(f"{s} steps" for s in STEPS) + " |")
    print("|---|" + "---|" * len(STEPS))
    for sampler in SAMPLERS:
        cells = [r for r in results if r["sampler"] == sampler]
        print(f"| {sampler} | " + " | ".join(f"{r['frechet']:.1f} ({r['seconds']:.0f} s)" for r in cells) + " |")


if __name__ == "__main__":
    main()
