"""Writes Tests/Fixtures/pickle/: PyTorch zip-format checkpoints (`torch.save`, `.pt`/`.bin`) for the
restricted unpickler, which must read state dicts the way `torch.load(weights_only=True)` does and
refuse everything else.

Readable files (expected values beside them, contiguous, same names):
- state_f32.pt + state_f32.safetensors: float32 tensors of rank 0, 1, 2 and 4, a transposed 2-d view
  (strides not row-major), slices with a nonzero storage offset, two views of one storage, one tensor
  object saved under two names (a memo BINGET), an expanded view (stride 0), a channels_last 4-d
  tensor, an empty tensor and an nn.Parameter (_rebuild_parameter);
- state_f16.pt / state_bf16.pt + state_f16.safetensors / state_bf16.safetensors: half and bfloat16
  tensors (one transposed view, one slice, special values), expected values as float32;
- module_state.pt + module_state.safetensors: `torch.save(module.state_dict())` of a small nn.Sequential
  (Conv2d, GroupNorm, Linear): the OrderedDict carries its `_metadata` attribute, pickled with BUILD;
- tiny-ddpm-bin/: Tests/Fixtures/tiny-ddpm re-saved by diffusers' save_pretrained with
  safe_serialization=False (unet/diffusion_pytorch_model.bin, no safetensors); checked here to load
  back bit-identical to the safetensors folder.
Hostile files, each described in the README.md this script writes next to them.

The README also records the pickle opcodes, GLOBAL names and persistent ids the readable files use,
and what torch.load(weights_only=True) does with every file. Seeds are fixed; every zip-format file is
byte-for-byte reproducible except legacy_format.pt, whose storage keys are memory addresses.

Run: python3 Tools/reference/pickle_fixtures.py   (written with torch 2.15, diffusers 0.42.1)
"""
import collections
import io
import os
import pickle
import pickletools
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib

import diffusers
import torch
from diffusers import DDPMPipeline
from safetensors.torch import load_file, save_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures")
OUT = os.path.join(FIXTURES, "pickle")
META = {"script": "Tools/reference/pickle_fixtures.py", "torch": torch.__version__}
DEEP_NESTING = 25_000


def path(name):
    return os.path.join(OUT, name)


# ---------------------------------------------------------------- readable files

def state_f32():
    torch.manual_seed(0)
    sd = collections.OrderedDict()
    sd["scalar"] = torch.tensor(3.25)
    sd["vector"] = torch.randn(7)
    sd["matrix"] = torch.randn(3, 5)
    sd["conv.weight"] = torch.randn(4, 3, 3, 3)
    sd["transposed"] = torch.randn(4, 6).t()                # size (6, 4), stride (1, 6)
    flat = torch.randn(20)
    sd["offset"] = flat[5:12]                                # offset 5, contiguous
    grid = torch.randn(5, 6)
    sd["sliced"] = grid[1:4, 2:5]                            # offset 8, stride (6, 1)
    shared = torch.randn(3, 4)
    sd["shared.full"] = shared                               # one storage ...
    sd["shared.row"] = shared[2]                             # ... two views (offset 8)
    tied = torch.randn(2, 3)
    sd["tied.a"] = tied                                      # the same tensor object twice
    sd["tied.b"] = tied
    sd["expanded"] = torch.randn(3).expand(4, 3)             # stride (0, 1), storage of 3
    sd["channels_last"] = torch.randn(2, 3, 2, 2).to(memory_format=torch.channels_last)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 3))
    return sd


def state_half(dtype):
    torch.manual_seed(1 if dtype == torch.float16 else 2)
    big = torch.finfo(dtype).max
    tiny = torch.finfo(dtype).smallest_normal / 4            # a subnormal of each type
    sd = collections.OrderedDict()
    sd["vector"] = torch.randn(9).to(dtype)
    sd["matrix"] = torch.randn(3, 4).to(dtype)
    sd["transposed"] = torch.randn(5, 3).to(dtype).t()       # size (3, 5), stride (1, 3)
    sd["sliced"] = torch.randn(4, 4).to(dtype)[1:, 1:3]     # offset 5, stride (4, 1)
    sd["conv.weight"] = torch.randn(2, 2, 3, 3).to(dtype)
    sd["special"] = torch.tensor([0.0, -0.0, 1.0, -2.5, big, -big, tiny, float("inf"), float("-inf"),
                                  float("nan")]).to(dtype)
    sd["param"] = torch.nn.Parameter(torch.randn(4).to(dtype))
    return sd


def write_state(name, sd, as_f32):
    torch.save(sd, path(name + ".pt"))
    expected = {k: (v.detach().float() if as_f32 else v.detach()).contiguous().clone() for k, v in sd.items()}
    save_file(expected, path(name + ".safetensors"), metadata=META)
    loaded = torch.load(path(name + ".pt"), weights_only=True)
    assert list(loaded) == list(sd)
    for k, v in sd.items():
        assert loaded[k].dtype == v.dtype and loaded[k].stride() == v.stride(), k
        assert torch.equal(loaded[k].view(torch.int16 if v.element_size() == 2 else torch.int32),
                           v.detach().view(torch.int16 if v.element_size() == 2 else torch.int32)), k


def module_state():
    torch.manual_seed(4)
    module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.GroupNorm(1, 3), torch.nn.Linear(3, 2))
    return module.state_dict()


def tiny_ddpm_bin():
    source = os.path.join(FIXTURES, "tiny-ddpm")
    folder = path("tiny-ddpm-bin")
    shutil.rmtree(folder, ignore_errors=True)
    DDPMPipeline.from_pretrained(source).save_pretrained(folder, safe_serialization=False)
    files = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)
    assert "unet/diffusion_pytorch_model.bin" in files and not any(f.endswith(".safetensors") for f in files), files
    reference = load_file(os.path.join(source, "unet", "diffusion_pytorch_model.safetensors"))
    raw = torch.load(os.path.join(folder, "unet", "diffusion_pytorch_model.bin"), weights_only=True)
    reloaded = DDPMPipeline.from_pretrained(folder).unet.state_dict()
    for got in (raw, reloaded):
        assert sorted(got) == sorted(reference)
        for k, v in reference.items():
            assert got[k].dtype == v.dtype and torch.equal(got[k].view(torch.int32), v.view(torch.int32)), k
    print(f"tiny-ddpm-bin: {len(reference)} tensors bit-identical to tiny-ddpm (torch.load and from_pretrained)")


# ---------------------------------------------------------------- hand-built pickles

def op_global(module, name):
    return b"c" + f"{module}\n{name}\n".encode()


def op_str(s):
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def op_int(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -2**31 <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data                  # LONG1


def op_tuple(items):
    return b"(" + b"".join(items) + b"t"


PROTO2, STOP, REDUCE, EMPTY_TUPLE, SETITEMS = b"\x80\x02", b".", b"R", b")", b"u"


def ordered_dict():
    return op_global("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE


def tensor_v2(key, storage_type, numel, offset, size, stride):
    """_rebuild_tensor_v2((storage persistent id), offset, size, stride, False, OrderedDict())."""
    pid = op_tuple([op_str("storage"), op_global("torch", storage_type), op_str(key), op_str("cpu"), op_int(numel)])
    args = op_tuple([pid + b"Q", op_int(offset), op_tuple(map(op_int, size)), op_tuple(map(op_int, stride)),
                     b"\x89", ordered_dict()])
    return op_global("torch._utils", "_rebuild_tensor_v2") + args + REDUCE


def state_dict_pickle(items, container=None):
    body = b"".join(op_str(k) + v for k, v in items)
    return PROTO2 + (container or ordered_dict()) + b"(" + body + SETITEMS + STOP


def write_torch_zip(name, pkl, records):
    """A zip laid out by torch's own writer (PyTorchFileWriter), as torch.save would, around `pkl`."""
    with torch.serialization._open_zipfile_writer(path(name)) as writer:
        writer.write_record("data.pkl", pkl, len(pkl))
        writer.write_record(".format_version", "1", 1)
        writer.write_record(".storage_alignment", "64", 2)
        writer.write_record("byteorder", "little", 6)
        for key, data in records.items():
            writer.write_record(f"data/{key}", data, len(data))


def floats(values):
    return struct.pack(f"<{len(values)}f", *values)


def hostile_files():
    write_torch_zip("evil_os_system.pt", PROTO2 + op_global("os", "system") + op_str("true") + b"\x85" + REDUCE + STOP,
                    {})
    write_torch_zip("evil_builtins_eval.pt",
                    state_dict_pickle([("weight", op_global("builtins", "eval") + op_str("1+1") + b"\x85" + REDUCE)]),
                    {})
    weight = tensor_v2("0", "FloatStorage", 4, 0, [2, 2], [2, 1])
    write_torch_zip("evil_reduce_other.pt",
                    state_dict_pickle([("weight", weight)],
                                      container=op_global("collections", "defaultdict") + EMPTY_TUPLE + REDUCE),
                    {"0": floats([1, 2, 3, 4])})
    with open(path("state_f32.pt"), "rb") as f:
        whole = f.read()
    with open(path("truncated.pt"), "wb") as f:
        f.write(whole[:len(whole) // 2])
    # storage of 6 floats (24 bytes, as declared); the view needs offset 2 + (1*3 + 2*1) + 1 = 8 elements
    write_torch_zip("short_storage.pt",
                    state_dict_pickle([("weight", tensor_v2("0", "FloatStorage", 6, 2, [2, 3], [3, 1]))]),
                    {"0": floats(range(6))})
    # storage declared as 12 floats (48 bytes), the record holds 8 (32 bytes); the view is in bounds
    write_torch_zip("short_record.pt",
                    state_dict_pickle([("weight", tensor_v2("0", "FloatStorage", 12, 0, [3, 4], [4, 1]))]),
                    {"0": floats(range(8))})
    write_zip_bomb()
    torch.manual_seed(3)
    torch.save(collections.OrderedDict(weight=torch.randn(2, 3), bias=torch.randn(3)), path("legacy_format.pt"),
               _use_new_zipfile_serialization=False)
    write_torch_zip("deep_nesting.pt", PROTO2 + b"(" * DEEP_NESTING + EMPTY_TUPLE + b"t" * DEEP_NESTING + STOP, {})
    view_bomb()
    check_naive()


def view_bomb():
    """view_bomb.pt: one 1024-float storage viewed with stride 0 as [64, 1024], memoized (BINPUT 1)
    and bound to 2,000 names (BINGET 1): 131 million floats from a 40 KB file. Each view is within
    its own limit; the reader must bound what all of them expand to together."""
    tensor = tensor_v2("0", "FloatStorage", 1024, 0, [64, 1024], [0, 1]) + b"q\x01"
    body = op_str("w0") + tensor + b"".join(op_str(f"w{i}") + b"h\x01" for i in range(1, 2000))
    write_torch_zip("view_bomb.pt", PROTO2 + ordered_dict() + b"(" + body + SETITEMS + STOP, {"0": floats(range(1024))})


def check_naive():
    """Each hostile pickle is one a plain pickle.Unpickler acts on (os.system is intercepted, not run)."""
    calls = []

    class Naive(pickle.Unpickler):
        def persistent_load(self, pid):
            return pid

        def find_class(self, module, name):
            if (module, name) == ("os", "system"):
                return lambda *args: calls.append(args)
            if module == "torch._utils":
                return lambda *args: ("tensor", args)
            return super().find_class(module, name)

    def naive(name):
        with zipfile.ZipFile(path(name)) as z:
            return Naive(io.BytesIO(z.read(name[:-3] + "/data.pkl"))).load()

    naive("evil_os_system.pt")
    assert calls == [("true",)], calls
    assert naive("evil_builtins_eval.pt") == {"weight": 2}
    assert type(naive("evil_reduce_other.pt")) is collections.defaultdict
    nested, depth = naive("deep_nesting.pt"), 0
    while nested:
        nested, depth = nested[0], depth + 1
    assert depth == DEEP_NESTING, depth
    for name in ["short_storage.pt", "short_record.pt", "zip_bomb.pt"]:
        assert naive(name)["weight"][0] == "tensor", name


def write_zip_bomb():
    """torch's layout, but data/0 is DEFLATED (torch only writes STORED entries) and declares, through a
    zip64 extra field, 5 GiB uncompressed; the deflate stream is 4 MiB of zeros (about 4 KB). The pickle
    agrees with the declared size (a FloatStorage of 5 GiB / 4 elements)."""
    declared = 5 << 30
    numel = declared // 4
    pkl = state_dict_pickle([("weight", tensor_v2("0", "FloatStorage", numel, 0, [numel], [1]))])
    zeros = bytes(4 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = compressor.compress(zeros) + compressor.flush()
    prefix = "zip_bomb/"
    entries = [("data.pkl", pkl, 0), (".format_version", b"1", 0), (".storage_alignment", b"64", 0),
               ("byteorder", b"little", 0), ("data/0", deflated, 8), ("version", b"3\n", 0)]
    out, central = bytearray(), bytearray()
    for name, data, method in entries:
        fname = (prefix + name).encode()
        offset = len(out)
        if method == 8:
            crc = zlib.crc32(zeros)
            zip64 = struct.pack("<HHQQ", 1, 16, declared, len(data))
            local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                                len(fname), len(zip64)) + fname + zip64
            out += local + data
            cextra = zip64
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0, crc, 0xFFFFFFFF,
                                   0xFFFFFFFF, len(fname), len(cextra), 0, 0, 0, 0, offset) + fname + cextra
        else:
            crc = zlib.crc32(data)
            pad = (-(len(out) + 30 + len(fname) + 4)) % 64      # torch's "FB" padding: data 64-byte aligned
            extra = b"FB" + struct.pack("<H", pad) + bytes(pad)
            out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 0, 0, 0, 0, 0, crc, len(data), len(data),
                               len(fname), len(extra)) + fname + extra + data
            central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0, 0, 0, 0, 0, 0, crc, len(data), len(data),
                                   len(fname), 0, 0, 0, 0, 0, offset) + fname
    cd_offset = len(out)
    out += central
    zip64_eocd = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central),
                       cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, zip64_eocd, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), cd_offset, 0)
    with open(path("zip_bomb.pt"), "wb") as f:
        f.write(out)


# ---------------------------------------------------------------- inventory and README

READABLE = ["state_f32.pt", "state_f16.pt", "state_bf16.pt", "module_state.pt", "tiny-ddpm-bin/unet/diffusion_pytorch_model.bin"]

HOSTILE = [
    ("evil_os_system.pt", "data.pkl is `GLOBAL os system`, `'true'`, TUPLE1, REDUCE: a naive unpickler runs the "
     "shell command `true`. `os.system` is not an allowed global; refuse at the GLOBAL opcode."),
    ("evil_builtins_eval.pt", "an OrderedDict whose value `weight` is `GLOBAL builtins eval` REDUCE'd on `'1+1'`: "
     "a naive unpickler evaluates Python source. Refuse at the GLOBAL."),
    ("evil_reduce_other.pt", "a state dict whose container is `collections.defaultdict` (GLOBAL + EMPTY_TUPLE + "
     "REDUCE, then SETITEMS with an ordinary `_rebuild_tensor_v2` tensor): it looks like a state dict, but only "
     "`collections.OrderedDict` is allowed (torch's weights_only refuses defaultdict too; it would accept the v1 "
     "`torch._utils._rebuild_tensor`, which is why that name was not used here)."),
    ("truncated.pt", "the first half of state_f32.pt: no end-of-central-directory record, and the local data.pkl "
     "entry has no sizes (torch sets flag bit 3 and writes sizes in data descriptors). Refuse as truncated / not a "
     "zip, never as \"legacy format\"."),
    ("short_storage.pt", "`weight` is a FloatStorage of 6 elements (record data/0 holds exactly 24 bytes) viewed "
     "with offset 2, size (2, 3), stride (3, 1): the view reaches element 7. Refuse: offset + sum((size-1)*stride) "
     "must be < storage numel."),
    ("short_record.pt", "`weight` declares a FloatStorage of 12 elements (48 bytes) but record data/0 holds 32 "
     "bytes; the (3, 4) view is within the declared numel. Refuse: record bytes must equal numel * element size."),
    ("zip_bomb.pt", "torch's layout, but entry `data/0` is DEFLATED (method 8) and declares 5 GiB uncompressed "
     "through a zip64 extra field (local and central headers), with a matching 5 GiB / 4 FloatStorage in the "
     "pickle; the deflate stream itself inflates to 4 MiB of zeros. torch.save only writes STORED entries: refuse "
     "any compressed entry, and any declared size beyond the file, before allocating."),
    ("legacy_format.pt", "`torch.save(..., _use_new_zipfile_serialization=False)` of a 2-tensor OrderedDict: the "
     "pre-1.6 format (a raw pickle stream starting with the magic number LONG1 0x1950a86a20f9469cfc6c, then the "
     "protocol version 1001, sys info, the pickle, storage keys and raw storages). Not a zip: refuse with a "
     "message that names the legacy format and says to re-save it. Its storage keys are memory addresses, so "
     "this file changes on every run."),
    ("deep_nesting.pt", f"data.pkl is PROTO 2, {DEEP_NESTING} MARKs, EMPTY_TUPLE, {DEEP_NESTING} TUPLEs: tuples "
     f"nested {DEEP_NESTING + 1} deep (and a mark stack that deep). Valid pickle, and torch.load(weights_only=True) "
     "returns it; the Swift reader must stop at a depth limit with an error instead of building it (or overflowing "
     "the stack when building, printing or freeing it)."),
]


def pickle_inventory(pkl):
    ops, globals_, pids = set(), set(), []
    for opcode, arg, _ in pickletools.genops(pkl):
        ops.add(opcode.name)
        if opcode.name in ("GLOBAL", "STACK_GLOBAL"):
            globals_.add(arg.replace(" ", "."))
    # the persistent ids, by unpickling with a persistent_load that only records them
    class Recorder(pickle.Unpickler):
        def persistent_load(self, pid):
            pids.append(pid)
            return None

        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if module == "torch" and name.endswith("Storage"):
                return f"torch.{name}"
            return lambda *args: None

    Recorder(io.BytesIO(pkl)).load()
    return ops, globals_, pids


def torch_outcome(name):
    code = ("import sys, torch\n"
            "try:\n"
            "    r = torch.load(sys.argv[1], weights_only=True)\n"
            "    print('loads:', type(r).__name__)\n"
            "except Exception as e:\n"
            "    lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]\n"
            "    why = next((l for l in lines if 'GLOBAL' in l), lines[0])\n"
            "    print('refused:', type(e).__name__ + ':', why.split('. ')[0].replace('\\x1b[1m', '').replace('\\x1b[0m', '')[:160])\n")
    # a fresh process per file (zip_bomb.pt is refused by miniz's size check before any 5 GiB allocation)
    result = subprocess.run([sys.executable, "-c", code, path(name)], capture_output=True, text=True,
                            timeout=300)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[-1] if lines else f"exit {result.returncode}"


def write_readme():
    all_ops, all_globals, examples = set(), set(), []
    per_file = []
    for name in READABLE:
        with zipfile.ZipFile(path(name)) as z:
            names = z.namelist()
            pkl_name = next(n for n in names if n.endswith("/data.pkl"))
            ops, globals_, pids = pickle_inventory(z.read(pkl_name))
            layout = [(i.filename, "stored" if i.compress_type == 0 else f"method {i.compress_type}")
                      for i in z.infolist()]
        all_ops |= ops
        all_globals |= globals_
        examples.append((name, pids[0]))
        per_file.append((name, pkl_name, len(names), len(pids), sorted(ops)))
        print(f"{name}: {len(pids)} persistent ids, opcodes {sorted(ops)}, globals {sorted(globals_)}")
    print("distinct opcodes:", " ".join(sorted(all_ops)))
    print("distinct globals:", " ".join(sorted(all_globals)))

    outcomes = {name: torch_outcome(name) for name in READABLE + [n for n, _ in HOSTILE]}
    for name, outcome in outcomes.items():
        print(f"torch.load(weights_only=True) {name}: {outcome}")

    lines = [
        "# Pickle fixtures",
        "",
        f"Written by `Tools/reference/pickle_fixtures.py` with torch {torch.__version__}, diffusers "
        f"{diffusers.__version__}, Python {sys.version.split()[0]}. Expected values are in the `.safetensors` files "
        "beside the `.pt` files: the same names, contiguous, and as float32 for the half and bfloat16 files.",
        "",
        "## Readable",
        "",
        "- `state_f32.pt`: float32; `scalar` (0-d), `vector`, `matrix`, `conv.weight` (4-d), `transposed` (stride "
        "(1, 6)), `offset` (offset 5), `sliced` (offset 8, stride (6, 1)), `shared.full` + `shared.row` (one storage, "
        "two views), `tied.a` + `tied.b` (one tensor object: the second is a memo BINGET of the first), `expanded` "
        "(stride (0, 1)), `channels_last` (stride (12, 1, 6, 3)), `empty` (size (0, 3), a 0-byte record), `param` "
        "(`_rebuild_parameter`).",
        "- `state_f16.pt`, `state_bf16.pt`: `vector`, `matrix`, `transposed` (stride (1, 3)), `sliced` (offset 5), "
        "`conv.weight`, `special` (0, -0, 1, -2.5, largest finite, its negative, a subnormal, inf, -inf, NaN), `param`.",
        "- `module_state.pt`: `torch.save(module.state_dict())` of nn.Sequential(Conv2d(2, 3, 3), GroupNorm(1, 3), "
        "Linear(3, 2)): keys `0.weight` ... `2.bias`. The state dict's `_metadata` attribute (an OrderedDict of "
        "`{'version': 1}` dicts per module prefix) is pickled after SETITEMS as EMPTY_DICT, SETITEM(S) and BUILD on "
        "the OrderedDict: the usual shape of a checkpoint saved from a module. Read BUILD on the top-level "
        "OrderedDict and drop its state.",
        "- `tiny-ddpm-bin/`: `Tests/Fixtures/tiny-ddpm` re-saved with `save_pretrained(safe_serialization=False)`; "
        "`unet/diffusion_pytorch_model.bin` loads bit-identical to `tiny-ddpm/unet/diffusion_pytorch_model.safetensors`. "
        "Its top level is a plain dict (EMPTY_DICT), not an OrderedDict, and with 144 tensors the memo passes 255 "
        "(LONG_BINPUT); storage sizes of 256 elements and more use BININT2 (BININT past 65535, LONG_BINGET once a "
        "memo entry above 255 is read back: both absent here but expected in larger files).",
        "",
        "## Must be refused",
        "",
    ]
    lines += [f"- `{name}`: {why}" for name, why in HOSTILE]
    lines += [
        "",
        "## What the readable files use",
        "",
        "Opcodes (all files together): " + ", ".join(f"`{o}`" for o in sorted(all_ops)) + ".",
        "",
        "GLOBAL names: " + ", ".join(f"`{g}`" for g in sorted(all_globals)) + ".",
        "",
        "| file | data.pkl entry | zip entries | persistent ids | opcodes |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| `{n}` | `{p}` | {e} | {c} | {' '.join(o)} |" for n, p, e, c, o in per_file]
    lines += [
        "",
        "Persistent ids (BINPERSID pops a tuple): `('storage', <GLOBAL torch.<Type>Storage>, key, location, numel)`, "
        "numel in elements of the storage type, key the record `<archive>/data/<key>`. For example:",
        "",
    ]
    lines += [f"- `{n}`: `{pid!r}`" for n, pid in examples]
    lines += [
        "",
        "Tensors are `_rebuild_tensor_v2(persistent storage, storage_offset, size tuple, stride tuple, "
        "requires_grad False, OrderedDict() backward hooks)`; a parameter is `_rebuild_parameter(tensor, "
        "requires_grad, OrderedDict())`. A storage key repeats (through BINGET of the memoized key string) when "
        "views share it; the reader must share one storage per key.",
        "",
        "## Zip layout of torch.save",
        "",
        "Entries, in order: `<archive>/data.pkl`, `.format_version` (`1`), `.storage_alignment` (`64`), `byteorder` "
        "(`little`), `data/<key>` for each storage in key order, `version` (`3\\n`), `.data/serialization_id`. "
        "`<archive>` is the saved file's name without extension (`state_f32`, `diffusion_pytorch_model`; `archive` "
        "when saved to a buffer), so find `data.pkl` by suffix. Every entry is STORED; each entry's data starts "
        "on a 64-byte boundary, padded by an extra field with id `FB` in the local header (the central directory has "
        "no extra). Local headers set flag bit 3 with sizes and CRC 0, which follow in a data descriptor: take "
        "offsets and sizes from the central directory (a zero-length record, like `empty`'s `state_f32/data/11`, has "
        "flag 0x800 and no descriptor). A zip64 end-of-central-directory record and locator are "
        "always written before the ordinary one.",
        "",
        "## torch.load(weights_only=True) on each file",
        "",
    ]
    lines += [f"- `{n}`: {o}" for n, o in outcomes.items()]
    with open(path("README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    write_state("state_f32", state_f32(), as_f32=False)
    write_state("state_f16", state_half(torch.float16), as_f32=True)
    write_state("state_bf16", state_half(torch.bfloat16), as_f32=True)
    write_state("module_state", module_state(), as_f32=False)
    tiny_ddpm_bin()
    hostile_files()
    write_readme()
    total = 0
    for d, _, fs in os.walk(OUT):
        for f in sorted(fs):
            size = os.path.getsize(os.path.join(d, f))
            total += size
            print(f"{size:8d}  {os.path.relpath(os.path.join(d, f), OUT)}")
    print(f"{total:8d}  total in {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
