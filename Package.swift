// swift-tools-version:6.1
// Diffuse: diffusion models in Swift on OpenCL or the CPU. Layers follow README "Architecture".
import PackageDescription

let optimize: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]

let package = Package(
    name: "Diffuse",
    // No `platforms`: Debian 12 on x86-64 is what is built and tested (the system libraries come
    // through apt); a macOS minimum here claimed a platform nobody builds.
    products: [
        .executable(name: "diffuse", targets: ["diffuse"]),
        // Libraries other Swift packages can use (README "Using Diffuse from Swift").
        .library(name: "Tensor", targets: ["Tensor", "CPUBackend", "OpenCLBackend"]),
        .library(name: "NN", targets: ["NN"]),
        .library(name: "DiffusionModels", targets: ["DiffusionModels"]),
        .library(name: "DiffusionPipelines", targets: ["DiffusionPipelines"]),
    ],
    // `swift build --traits MPI` links Open MPI (Debian libopenmpi-dev) for data-parallel training
    // under mpirun; the default build needs no MPI and runs as one process.
    traits: [.trait(name: "MPI", description: "Data-parallel training and sampling over Open MPI (mpirun -np N diffuse ...)")],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    // Layers, each depending only on those below it (README "Architecture" draws this graph).
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenCL", path: "Sources/COpenCL", providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]),
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi", providers: [.apt(["libopenmpi-dev"])]),
        // AVX2/FMA loops picked at run time (Swift cannot target an instruction set per function).
        .target(name: "CKernels", cSettings: [.unsafeFlags(["-O3"], .when(configuration: .release))]),
        // JPEG decoding through libjpeg-turbo (Debian libjpeg62-turbo-dev), its longjmp errors kept in C.
        .target(name: "CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        // OpenCL C sources, embedded as bytes (PackageResources.<name>_cl) so nothing is read at run time.
        .target(name: "Kernels", path: "Kernels",
                resources: ["elementwise", "activation", "reduce", "loss", "scheduler", "optimizer", "random",
                            "gemm", "gemm_tiled", "conv_tiled", "conv2d", "conv_rows", "groupnorm", "groupnorm_rows", "attention",
                            "attention_fused", "attention_lanes", "pool"].map { .embedInCode("\($0).cl") }),

        // Core: the error type, atomic writes, path checks and signal handling every layer shares.
        .target(name: "DiffuseCore", swiftSettings: optimize),
        // Shapes, autograd, Philox and the Device protocol (generic ops only); no backend.
        .target(name: "Tensor", dependencies: ["DiffuseCore"], swiftSettings: optimize),
        // The two backends, peers behind the Device protocol.
        .target(name: "CPUBackend", dependencies: ["Tensor", "DiffuseCore", "CBLAS", "CKernels"], swiftSettings: optimize),
        .target(name: "OpenCLBackend", dependencies: ["Tensor", "DiffuseCore", "COpenCL", "Kernels"], swiftSettings: optimize),
        .target(name: "NN", dependencies: ["Tensor", "DiffuseCore"], swiftSettings: optimize),
        // Models and schedulers: no backend, no network, no files but the configs they decode.
        .target(name: "DiffusionModels", dependencies: ["NN", "Tensor", "DiffuseCore"], swiftSettings: optimize),
        // File formats: PNG, IDX, safetensors, plots and grids.
        .target(name: "DataIO", dependencies: ["DiffuseCore", "CPNG", "CZlib", "CJPEG"], swiftSettings: optimize),
        // The processes of a data-parallel job and their collectives (Open MPI with the MPI trait).
        .target(name: "DataParallel",
                dependencies: ["DiffuseCore", .target(name: "CMPI", condition: .when(traits: ["MPI"]))],
                swiftSettings: optimize),
        // The Hugging Face Hub: its cache layout and downloads.
        .target(name: "Hub", dependencies: ["DiffuseCore"], swiftSettings: optimize),
        // A loopback look-alike of the Hub for tests and `diffuse serve-hub`.
        .target(name: "HubTestServer", dependencies: ["Hub", "DiffuseCore"], swiftSettings: optimize),
        // Pipeline folders, the registry keyed by _class_name, trainers, runs, checkpoints, device choice.
        .target(name: "DiffusionPipelines",
                dependencies: ["DiffusionModels", "NN", "Tensor", "CPUBackend", "OpenCLBackend", "DataIO", "Hub",
                               "DataParallel", "DiffuseCore"],
                swiftSettings: optimize),
        .executableTarget(
            name: "diffuse",
            dependencies: ["DiffusionPipelines", "DiffusionModels", "NN", "Tensor", "CPUBackend", "OpenCLBackend", "DataIO",
                           "Hub", "HubTestServer", "DataParallel", "DiffuseCore",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimize),

        // One test-support library: the device list, the tolerance helper, fixtures, scratch folders.
        .target(name: "TestSupport", dependencies: ["Tensor", "CPUBackend", "OpenCLBackend", "DataIO", "DiffuseCore"],
                path: "Tests/TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "CPUBackend", "DiffuseCore", "TestSupport"]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Tensor", "CPUBackend", "TestSupport"]),
        .testTarget(name: "OpenCLTests",
                    dependencies: ["OpenCLBackend", "CPUBackend", "Tensor", "NN", "DiffusionModels", "DiffusionPipelines", "DiffuseCore",
                                   "TestSupport"]),
        .testTarget(name: "DataIOTests", dependencies: ["DataIO", "DiffuseCore", "CZlib", "TestSupport"]),
        .testTarget(name: "HubTests", dependencies: ["Hub", "HubTestServer", "DiffuseCore", "TestSupport"]),
        .testTarget(name: "DiffusionTests",
                    dependencies: ["DiffusionPipelines", "DiffusionModels", "NN", "Tensor", "CPUBackend", "OpenCLBackend",
                                   "DataIO", "DiffuseCore", "TestSupport"]),
        // Runs the built `diffuse` binary: exit codes, messages and run folders as a user sees them.
        .testTarget(
            name: "CLITests", dependencies: ["diffuse", "DataIO", "DataParallel", "Hub", "HubTestServer", "DiffuseCore", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
