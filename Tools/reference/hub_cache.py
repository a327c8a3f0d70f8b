"""A Hub cache written by Python's huggingface_hub, for Diffuse to read (issue: from_pretrained by name).

Serves Tests/Fixtures/tiny-ddpm as the Hub repository `diffuse-test/tiny-ddpm` with
`diffuse serve-hub` on loopback, points HF_ENDPOINT at it, and runs huggingface_hub's
`snapshot_download` into Tests/Fixtures/hub-cache (the `models--diffuse-test--tiny-ddpm` tree:
refs/main, blobs/<etag>, snapshots/<commit>/... symlinks). The tree is committed; HubCLITests
samples from it with the same server running and checks that Diffuse downloads nothing.

The other direction is checked here and not committed: `diffuse sample diffuse-test/tiny-ddpm`
fills an empty cache from the same server, then, with HF_HUB_OFFLINE=1, diffusers'
`DDPMPipeline.from_pretrained` loads the pipeline from that cache alone.

    swift build && python3 Tools/reference/hub_cache.py [--diffuse .build/debug/diffuse]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPO_ID = "diffuse-test/tiny-ddpm"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--diffuse", default=None, help="the built diffuse binary")
    args = parser.parse_args()
    binary = args.diffuse or next(
        (str(p) for p in [ROOT / ".build/release/diffuse", ROOT / ".build/debug/diffuse"] if p.exists()), None)
    if binary is None:
        sys.exit("build diffuse first (swift build)")
    binary = str(Path(binary).resolve())
    cache = ROOT / "Tests/Fixtures/hub-cache"
    shutil.rmtree(cache, ignore_errors=True)
    server = subprocess.Popen([binary, "serve-hub", "--repo", f"{REPO_ID}={ROOT / 'Tests/Fixtures/tiny-ddpm'}"],
                              stdout=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stdout:
            match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
            if match:
                port = match.group(1)
                break
        if port is None:
            sys.exit("diffuse serve-hub did not start")
        # huggingface_hub reads its endpoint and cache from the environment at import time.
        os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
        os.environ["HF_HUB_CACHE"] = str(cache)
        os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
        os.environ["HF_HUB_DISABLE_XET"] = "1"
        from huggingface_hub import __version__, snapshot_download

        folder = snapshot_download(REPO_ID)
        print(f"huggingface_hub {__version__} wrote {folder}")
        check_diffuse_cache(binary, port)
    finally:
        server.terminate()
        server.wait()
    # Empty folders (huggingface_hub's .locks) do not survive git; drop them so the tree is as committed.
    shutil.rmtree(cache / ".locks", ignore_errors=True)
    for path in sorted(cache.rglob("*")):
        print(("  -> " + os.readlink(path)) if path.is_symlink() else "", path.relative_to(cache))


def check_diffuse_cache(binary, port):
    """A cache filled by Diffuse serves diffusers offline."""
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_HUB_CACHE=f"{work}/cache")
        subprocess.run([binary, "sample", REPO_ID, "--device", "cpu", "--scheduler", "ddim", "--steps", "2",
                        "--batch-size", "1", "--output", f"{work}/x.png"], env=env, check=True, cwd=work)
        script = ("from diffusers import DDPMPipeline\n"
                  f"p = DDPMPipeline.from_pretrained({REPO_ID!r})\n"
                  "print('diffusers loaded the Diffuse-written cache offline:', type(p.unet).__name__,"
                  " sum(x.numel() for x in p.unet.parameters()), 'parameters')\n")
        subprocess.run([sys.executable, "-c", script], env=dict(env, HF_HUB_OFFLINE="1"), check=True)


if __name__ == "__main__":
    main()
