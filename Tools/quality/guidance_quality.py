"""Classifier-free guidance on a class-conditional model trained here (issue 12, item 3).

Takes a run folder written by `diffuse train --model unet2d --class-conditional` (default:
runs/guidance) and samples it with `--class-labels` at several `--guidance-scale`s, the same seed
and sampler (DPM-Solver++ 2M, 25 steps) for each. Two scores per scale, both from the small
Fashion-MNIST classifier of ddpm_quality.py:
  - agreement: the share of samples the classifier puts in the class they were asked for
    (what guidance is for);
  - the Frechet distance of ddpm_quality.py against the 10,000 test images (lower is better;
    guidance trades some of it for agreement).
Also writes the README's figures: one row per class (8 images each) at scales 1 and 3, under
Tools/quality/figures/.

Run:  python3 Tools/quality/guidance_quality.py [--model DIR] [--per-class 20] [--binary PATH]
      (needs torch, numpy, safetensors, a release build of diffuse, dataset-fashion-mnist and the
      classifier ddpm_quality.py trains.) Prints a Markdown table.
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

SCALES = [0, 1, 2, 3, 5]
FIGURE_SCALES = [1, 3]
FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "figures")


def sample(binary, model, labels, scale, tensor, png):
    start = time.time()
    subprocess.run([binary, "sample", model, "--scheduler", "dpm++2m", "--steps", "25",
                    "--class-labels", ",".join(map(str, labels)), "--batch-size", str(len(labels)),
                    "--guidance-scale", str(scale), "--seed", "11", "--device", "cpu", "--quiet",
                    "--save-tensor", tensor, "--output", png, "--overwrite"], check=True, stdout=subprocess.DEVNULL)
    return time.time() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=os.path.join(q.ROOT, "runs", "guidance"))
    parser.add_argument("--per-class", type=int, default=20)
    parser.add_argument("--binary", default=os.path.join(q.ROOT, ".build", "release", "diffuse"))
    args = parser.parse_args()
    binary = args.binary
    classifier = q.classifier(None, None, None, None)
    reference = q.statistics(classifier, q.images("t10k"))
    labels = [c for c in range(10) for _ in range(args.per_class)]
    results = []
    for scale in SCALES:
        tensor = os.path.join(q.OUT, f"guidance-{scale}.safetensors")
        seconds = sample(binary, args.model, labels, scale, tensor, os.path.join(q.OUT, "guidance.png"))
        images = (load_file(tensor)["sample"] / 2 + 0.5).clamp(0, 1)
        with torch.no_grad():
            predicted = classifier(images).argmax(1)
        agreement = (predicted == torch.tensor(labels)).float().mean().item()
        score = q.frechet(q.statistics(classifier, images), reference)
        results.append({"scale": scale, "agreement": agreement, "frechet": score, "seconds": seconds})
        print(f"scale {scale}: agreement {agreement:.3f}  frechet {score:.1f}  {seconds:.0f} s", flush=True)
    os.makedirs(FIGURES, exist_ok=True)
    rows = [c for c in range(10) for _ in range(8)]
    for scale in FIGURE_SCALES:
        sample(binary, args.model, rows, scale, os.path.join(q.OUT, "figure.safetensors"),
               os.path.join(FIGURES, f"guidance-{scale}.png"))
    with open(os.path.join(q.OUT, "guidance.json"), "w") as f:
        json.dump(results, f, indent=1)
    print("\n| guidance scale | agreement with the asked class | Frechet distance | wall time |")
    print("|---|---|---|---|")
    for r in results:
        print(f"| {r['scale']} | {100 * r['agreement']:.1f}% | {r['frechet']:.1f} | {r['seconds']:.0f} s |")


if __name__ == "__main__":
    main()
