// swift-tools-version:6.0
import PackageDescription

// No compiler flags anywhere (SwiftPM refuses `unsafeFlags` in a package used as a dependency, and
// ISA flags would not build on arm64): code that needs x86 extensions is C in CKernels, compiled per
// function with target attributes and chosen at run time.
let package = Package(
    name: "OuroKit",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ouro", targets: ["ouro"]),
        .library(name: "OuroKit", targets: [
            "OuroIO", "SafeTensors", "Quantization", "GGUF", "OuroModel", "OuroConversion", "OuroValidation",
            "OuroTokenizer",
        ]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    ],
    targets: [
        // System libraries: dense float math (OpenBLAS) and compression of reference bundles (zstd).
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd",
                       providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]),

        // Integer dot kernels for quantized linear layers (AVX-512 VNNI / AVX2 / plain C, chosen at
        // run time per function, as ggml does) and the thread pool that splits them.
        .target(name: "CKernels"),
        // Files: memory maps, bounds-checked byte cursors, atomic output.
        .target(name: "OuroIO"),
        // Hugging Face safetensors files and sharded checkpoints (read only, by mmap).
        .target(name: "SafeTensors", dependencies: ["OuroIO", "Quantization"]),
        // ggml element formats: the type table, f16/bf16 conversion, block codecs and dot kernels (float rows in CKernels).
        .target(name: "Quantization", dependencies: ["CKernels"]),
        // GGUF v3 container: reader and writer.
        .target(name: "GGUF", dependencies: ["OuroIO", "Quantization"]),
        // Text: Hugging Face tokenizer.json (byte-level BPE), the GGUF tokenizer keys, chat templates.
        .target(name: "OuroTokenizer", dependencies: ["OuroIO", "GGUF"]),
        // The looped model: configuration, tensor naming, weights, forward pass, KV cache, generation.
        .target(name: "OuroModel", dependencies: ["OuroIO", "SafeTensors", "GGUF", "Quantization", "COpenBLAS", "CKernels"]),
        // Checkpoint folder -> GGUF file.
        .target(name: "OuroConversion", dependencies: ["OuroIO", "SafeTensors", "GGUF", "Quantization", "OuroModel", "OuroTokenizer", "COpenBLAS"]),
        // Reference bundles, parity metrics and reports.
        .target(name: "OuroValidation", dependencies: ["OuroIO", "SafeTensors", "GGUF", "Quantization", "OuroModel", "CZstd"]),
        // OpenAI-compatible HTTP server with continuous batching (the only module that sees NIO/Hummingbird).
        .target(name: "OuroServer", dependencies: [
            "OuroIO", "OuroModel", "OuroTokenizer",
            .product(name: "Hummingbird", package: "hummingbird"),
        ]),
        // The command-line tool.
        .executableTarget(name: "ouro", dependencies: [
            "OuroIO", "SafeTensors", "GGUF", "Quantization", "OuroModel", "OuroConversion", "OuroValidation",
            "OuroTokenizer", "OuroServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Fixture paths and checkpoint builders shared by the test targets.
        .target(name: "OuroTestSupport", dependencies: ["SafeTensors"], path: "Tests/OuroTestSupport"),
        .testTarget(name: "OuroIOTests", dependencies: ["OuroIO"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["SafeTensors", "OuroIO", "Quantization"]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization"], resources: [.copy("Vectors")]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "Quantization", "OuroIO"]),
        .testTarget(name: "OuroModelTests", dependencies: ["OuroModel", "OuroTestSupport", "SafeTensors", "GGUF", "Quantization", "CKernels"]),
        .testTarget(name: "OuroConversionTests", dependencies: ["OuroConversion", "OuroTestSupport", "OuroModel", "GGUF", "SafeTensors", "Quantization", "OuroTokenizer"]),
        // Runs the built `ouro` binary: exit codes, one-line errors, output formats.
        .testTarget(name: "OuroCLITests", dependencies: ["ouro", "OuroTestSupport", "GGUF", "SafeTensors"]),
        .testTarget(name: "OuroTokenizerTests", dependencies: ["OuroTokenizer", "OuroIO", "OuroTestSupport", "GGUF"]),
        // Starts `ouro serve` and drives it over loopback (the openai Python client, raw HTTP).
        .testTarget(name: "OuroServerTests", dependencies: ["ouro", "OuroTestSupport"], exclude: ["openai_checks.py"]),
        .testTarget(name: "OuroValidationTests", dependencies: ["OuroValidation", "OuroTestSupport", "OuroModel", "OuroConversion", "SafeTensors"]),
    ]
)
