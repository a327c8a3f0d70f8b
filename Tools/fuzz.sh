#!/usr/bin/env bash
# Fuzzes one reader with libFuzzer and AddressSanitizer (issue 10 item 7):
#   Tools/fuzz.sh READER SECONDS      READER: safetensors pickle png jpeg events idx model_index scheduler_config unet_config
# The libraries are built by SwiftPM into .build-fuzz with `-Xswiftc -sanitize=fuzzer,address`
# (library targets only: an executable target would not link, libFuzzer brings its own main); the
# harness Tools/fuzz/READER.swift defines LLVMFuzzerTestOneInput and is linked against their
# objects with `swiftc -sanitize=fuzzer,address -parse-as-library`. The corpus starts from the test
# fixtures of that format (.build-fuzz/corpus/READER, kept between runs); a crashing input is
# written to .build-fuzz/crashes/READER/ and becomes a regression test. Prints libFuzzer's last
# progress line (executions, `cov:` edges covered, `ft:` features, corpus) and final statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
reader=${1:?usage: Tools/fuzz.sh READER SECONDS (READER: safetensors pickle png jpeg events idx model_index scheduler_config unet_config)}
seconds=${2:?usage: Tools/fuzz.sh READER SECONDS}
harness=Tools/fuzz/$reader.swift
[ -f "$harness" ] || { echo "fuzz: no harness $harness" >&2; exit 2; }
scratch=.build-fuzz
# One -sanitize=fuzzer,address: given as two flags (SwiftPM's --sanitize address --sanitize fuzzer),
# swiftc keeps only the last, so either coverage or AddressSanitizer silently went missing.
swift build -c release --scratch-path "$scratch" -Xswiftc -sanitize=fuzzer,address \
    -Xcc -fsanitize=fuzzer-no-link,address --target DiffusionPipelines >&2
release="$scratch/release"
objects=()
# One object per source file SwiftPM lists for the target now (`<target>.build/sources`): objects
# of files since moved to another target stay behind in the scratch folder and must not link.
for target in DiffuseCore Tensor CPUBackend NN DataIO Kernels OpenCLBackend Hub DiffusionModels DiffusionPipelines; do
    while IFS= read -r source; do
        objects+=("$release/$target.build/$(basename "$source").o")
    done < "$release/$target.build/sources"
done
objects+=("$release/CKernels.build"/*.o "$release/CJPEG.build"/*.o)
binary="$scratch/fuzz-$reader"
if [ ! -x "$binary" ] || [ "$harness" -nt "$binary" ] || [ "$release/DiffusionModels.build/DDPMScheduler.swift.o" -nt "$binary" ]; then
    swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name "Fuzz_$reader" "$harness" \
        -I "$release/Modules" -I Sources/CBLAS -I Sources/COpenCL -I Sources/CPNG -I Sources/CZlib \
        -I Sources/CKernels/include -Xcc -fmodule-map-file="$release/CKernels.build/module.modulemap" \
        -I Sources/CJPEG/include -Xcc -fmodule-map-file="$release/CJPEG.build/module.modulemap" \
        "${objects[@]}" -lopenblas -lpng -ljpeg -lz -lOpenCL -lFoundationNetworking \
        -o "$binary"
fi
corpus="$scratch/corpus/$reader"
crashes="$scratch/crashes/$reader"
mkdir -p "$corpus" "$crashes"
if [ -z "$(ls -A "$corpus")" ]; then
    case "$reader" in
        safetensors) find Tests/Fixtures -name '*.safetensors' -size -300k -exec cp {} "$corpus/" \; ;;
        pickle) find Tests/Fixtures/pickle -name '*.pt' -size -60k -exec cp {} "$corpus/" \; ;;
        png) python3 - "$corpus" <<'PY'
import struct, sys, zlib
def png(path, width, height, depth, colour, bytes_per_pixel):
    rows = b"".join(b"\x00" + bytes((x * 37 + y * 11) % 256 for x in range(width * bytes_per_pixel))
                    for y in range(height))
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    extra = chunk(b"PLTE", bytes(range(12))) if colour == 3 else b""
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + extra
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
out = sys.argv[1]
png(f"{out}/grey.png", 4, 3, 8, 0, 1)
png(f"{out}/grey16.png", 3, 2, 16, 0, 2)
png(f"{out}/rgb.png", 3, 2, 8, 2, 3)
png(f"{out}/rgba.png", 2, 2, 8, 6, 4)
png(f"{out}/palette.png", 4, 2, 8, 3, 1)
PY
             ;;
        jpeg) find Tests/Fixtures/image-folder -type f \( -name '*.png' -o -iname '*.jp*g' \) -exec sh -c 'cp "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$corpus" \; ;;
        events) cp Tests/Fixtures/tensorboard/events.out.tfevents.fixture "$corpus/" ;;
        idx) printf '\x00\x00\x08\x01\x00\x00\x00\x03abc' > "$corpus/bytes.idx"
             printf '\x00\x00\x08\x03\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x02abcd' > "$corpus/image.idx"
             gzip -c "$corpus/image.idx" > "$corpus/image.idx.gz" ;;
        model_index) find Tests/Fixtures -name model_index.json -exec sh -c 'cp "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$corpus" \; ;;
        scheduler_config) find Tests/Fixtures -name 'scheduler_config.json' -exec sh -c 'cp "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$corpus" \; ;;
        unet_config) cp Tests/Fixtures/unet2d_*.json "$corpus/"
                     find Tests/Fixtures -path '*unet/config.json' -exec sh -c 'cp "$1" "$2/$(echo "$1" | tr / _)"' _ {} "$corpus" \; ;;
    esac
fi
[ -n "$(ls -A "$corpus")" ] || { echo "fuzz: no seed inputs for $reader" >&2; exit 1; }
ASAN_OPTIONS=detect_leaks=0 "$binary" "$corpus" -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 \
    -artifact_prefix="$crashes/" -print_final_stats=1 2>&1 | grep -E '^#[0-9]+.*(DONE|pulse)|^stat::|ERROR|SUMMARY|Test unit written' | tail -12
