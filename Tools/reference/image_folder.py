"""Writes Tests/Fixtures/image-folder/ (a small ImageFolder: class sub-folders, PNG and JPEG, grey,
RGB, RGBA and palette images of odd sizes, a truncated file and a file that is not an image) and
Tests/Fixtures/image_folder.safetensors: for every readable image, what diffusers'
train_unconditional.py feeds its model, built with torchvision 0.29 on Pillow 13:

    Compose([Resize(R, InterpolationMode.BILINEAR), CenterCrop(R), ToTensor(), Normalize([0.5], [0.5])])

of image.convert("RGB") (key rgb<R>/<path>) and of image.convert("L") (key grey<R>/<path>), for
R = 16 (every image shrinks) and R = 24 (some grow). Also `classes`: ImageFolder's labels.
"""
import io
import os

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torchvision import datasets, transforms

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")
FOLDER = os.path.join(FIXTURES, "image-folder")


def smooth(rng, width, height, channels):
    # Smooth gradients plus a little noise: something to resize, and small files.
    y, x = np.mgrid[0:height, 0:width]
    planes = [(np.sin(x / (3 + c) + y / (5 + 2 * c)) * 100 + 128 + rng.normal(0, 12, (height, width))) for c in range(channels)]
    return np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)


def main():
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(FOLDER, "boots"), exist_ok=True)
    os.makedirs(os.path.join(FOLDER, "coats", "more"), exist_ok=True)
    Image.fromarray(smooth(rng, 37, 23, 3), "RGB").save(os.path.join(FOLDER, "boots", "a.png"))
    Image.fromarray(smooth(rng, 41, 29, 3), "RGB").save(os.path.join(FOLDER, "boots", "b.JPG"), quality=90)
    Image.fromarray(smooth(rng, 19, 33, 1)[..., 0], "L").save(os.path.join(FOLDER, "coats", "c.png"))
    rgba = np.concatenate([smooth(rng, 30, 30, 3), rng.integers(0, 256, (30, 30, 1), dtype=np.uint8)], -1)
    Image.fromarray(rgba, "RGBA").save(os.path.join(FOLDER, "coats", "d.png"))
    Image.fromarray(smooth(rng, 25, 17, 3), "RGB").quantize(16).save(os.path.join(FOLDER, "coats", "e.png"))
    Image.fromarray(smooth(rng, 20, 21, 1)[..., 0], "L").save(os.path.join(FOLDER, "coats", "more", "f.jpeg"), quality=85)
    # Unreadable: a PNG cut short, and a file that is not an image at all.
    whole = io.BytesIO()
    Image.fromarray(smooth(rng, 16, 16, 3), "RGB").save(whole, "PNG")
    with open(os.path.join(FOLDER, "coats", "truncated.png"), "wb") as f:
        f.write(whole.getvalue()[: len(whole.getvalue()) // 2])
    with open(os.path.join(FOLDER, "coats", "notes.txt"), "w") as f:
        f.write("not an image\n")

    out = {}
    readable = []
    for root, _, files in os.walk(FOLDER):
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                with Image.open(path) as im:
                    im.load()
                readable.append(os.path.relpath(path, FOLDER))
            except Exception:
                pass
    for size in (16, 24):
        prepare = transforms.Compose([
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.CenterCrop(size), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
        for rel in readable:
            with Image.open(os.path.join(FOLDER, rel)) as im:
                out[f"rgb{size}/{rel}"] = prepare(im.convert("RGB")).contiguous()
                out[f"grey{size}/{rel}"] = prepare(im.convert("L")).contiguous()
    # ImageFolder's classes and labels, skipping what PIL cannot open.
    folder = datasets.ImageFolder(FOLDER, is_valid_file=lambda p: os.path.relpath(p, FOLDER) in readable)
    print("classes", folder.classes, [(os.path.relpath(p, FOLDER), label) for p, label in folder.samples])
    out["labels"] = torch.tensor([label for _, label in folder.samples], dtype=torch.float32)
    save_file(out, os.path.join(FIXTURES, "image_folder.safetensors"),
              metadata={"files": ",".join(os.path.relpath(p, FOLDER) for p, _ in folder.samples)})
    print(len(out), "tensors;", "readable:", readable)


if __name__ == "__main__":
    main()
