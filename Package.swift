// swift-tools-version:6.0
// Diffuse: diffusion models in Swift on OpenCL or the CPU. Layers follow README "Architecture".
import PackageDescription

let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "Diffuse",
    // No `platforms`: Debian 12 on x86-64 is what is built and tested (the system libraries come
    // through apt); a macOS minimum here claimed a platform nobody builds.
    products: [
        .executable(name: "diffuse", targets: ["diffuse"]),
        .library(name: "Diffusion", targets: ["Diffusion"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL", providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        // AVX2/FMA loops picked at run time (Swift cannot target an instruction set per function).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release))]),
        .target(name: "Tensor", dependencies: ["CBLAS", "CKernels"], swiftSettings: optimize),
        // OpenCL C sources, embedded as bytes (PackageResources.<name>_cl) so nothing is read at run time.
        .target(name: "Kernels", path: "Kernels",
                resources: ["elementwise", "activation", "reduce", "loss", "scheduler", "optimizer", "random",
                            "gemm", "gemm_tiled", "conv2d", "groupnorm", "attention", "attention_fused",
                            "attention_lanes", "pool"].map { .embedInCode("\($0).cl") }),
        .target(name: "OpenCLBackend", dependencies: ["Tensor", "COpenCL", "Kernels", "DataIO"], swiftSettings: optimize),
        .target(name: "NN", dependencies: ["Tensor"], swiftSettings: optimize),
        .target(name: "DataIO", dependencies: ["Tensor", "CPNG", "CZlib"], swiftSettings: optimize),
        // The Hugging Face Hub: its cache layout, downloads, and a loopback look-alike server for tests.
        .target(name: "Hub", dependencies: ["Tensor", "DataIO"], swiftSettings: optimize),
        .target(name: "Diffusion", dependencies: ["NN", "Tensor", "DataIO", "OpenCLBackend", "Hub"], swiftSettings: optimize),
        .executableTarget(
            name: "diffuse",
            dependencies: ["Diffusion", "DataIO", "NN", "Tensor", "Hub",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimize),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Tensor"]),
        .testTarget(name: "OpenCLTests", dependencies: ["OpenCLBackend", "Tensor", "NN", "Diffusion"]),
        .testTarget(name: "DataIOTests", dependencies: ["DataIO", "Tensor", "CZlib"]),
        .testTarget(name: "HubTests", dependencies: ["Hub", "Tensor"]),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion", "NN", "Tensor", "DataIO", "OpenCLBackend"]),
        // Runs the built `diffuse` binary: exit codes, messages and run folders as a user sees them.
        .testTarget(name: "CLITests", dependencies: ["diffuse", "DataIO", "Hub"]),
    ],
    swiftLanguageModes: [.v5]
)
