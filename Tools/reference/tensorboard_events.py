"""Writes Tests/Fixtures/tensorboard/: an event file from torch.utils.tensorboard's SummaryWriter
(the writer diffusers' training scripts log through, tensorboard 2.x), holding scalars loss and lr
at steps 1-3 and one 2x3 RGB image at step 3, for the reader's test; and, given a folder written by
Diffuse (`--check DIR`), reads it with TensorBoard's own EventAccumulator and prints what it finds.
"""
import argparse
import glob
import os
import shutil

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")


def write():
    folder = os.path.join(FIXTURES, "tensorboard")
    shutil.rmtree(folder, ignore_errors=True)
    writer = SummaryWriter(folder, filename_suffix=".fixture")
    for step, (loss, lr) in enumerate([(0.5, 1e-4), (0.25, 2e-4), (0.125, 3e-4)], start=1):
        writer.add_scalar("loss", loss, step)
        writer.add_scalar("lr", lr, step)
    image = torch.tensor(np.arange(18, dtype=np.uint8).reshape(3, 2, 3) * 14)
    writer.add_image("samples", image, 3, dataformats="CHW")
    writer.close()
    for path in glob.glob(os.path.join(folder, "events.out.tfevents.*")):
        os.rename(path, os.path.join(folder, "events.out.tfevents.fixture"))


def check(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    accumulator = EventAccumulator(folder, size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    print("tags:", {k: v for k, v in tags.items() if v})
    for tag in tags["scalars"]:
        print(tag, [(e.step, round(e.value, 6)) for e in accumulator.Scalars(tag)])
    for tag in tags["images"]:
        print(tag, [(e.step, e.width, e.height, len(e.encoded_image_string)) for e in accumulator.Images(tag)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--check")
    args = parser.parse_args()
    check(args.check) if args.check else write()
