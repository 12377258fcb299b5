import Foundation
import GGUF
import OuroConversion
import OuroModel
import OuroTestSupport
import Quantization
import SafeTensors
import XCTest

final class ConverterTests: XCTestCase {
    let types: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0]

    private func convert(_ folder: String, _ type: GGMLType) throws -> (path: String, summary: Converter.Summary) {
        let out = try Fixtures.temporaryFolder() + "/model-\(type.name).gguf"
        let summary = try Converter(checkpoint: folder, type: type).convert(to: out)
        return (out, summary)
    }

    func testEveryFixtureConvertsToEveryTypeWithTheProfileKeysAndTensors() throws {
        for fixture in Fixtures.all {
            let folder = Fixtures.folder(fixture)
            let config = try OuroConfiguration.load(folder: folder)
            let expected = TensorNaming.expectedTensors(config)
            for type in types {
                let (path, summary) = try convert(folder, type)
                let file = try GGUFFile(path: path)
                XCTAssertEqual(file.version, 3)
                XCTAssertEqual(file.alignment, 64)
                XCTAssertEqual(file.value("general.architecture")?.string, "ouro")
                XCTAssertEqual(file.value("general.name")?.string, fixture)
                XCTAssertEqual(file.value("general.quantization_version")?.int, 2)
                XCTAssertEqual(file.value("ouro.loop_count")?.int, config.loopCount)
                XCTAssertEqual(file.value("ouro.block_count")?.int, config.layerCount)
                XCTAssertEqual(try OuroConfiguration(gguf: file).loopCount, config.loopCount)
                // The shared blocks are stored once, whatever the loop count.
                XCTAssertEqual(file.tensors.map(\.name), expected.map(\.ggufName), "\(fixture) \(type)")
                for (info, tensor) in zip(file.tensors, expected) {
                    XCTAssertEqual(info.dimensions, tensor.shape.reversed(), info.name)
                    XCTAssertEqual(info.offset % 64, 0, info.name)
                    XCTAssertEqual(info.type, tensor.isQuantizable ? type : .f32, "\(fixture) \(info.name)")
                }
                XCTAssertEqual(summary.fileBytes, try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
                // bf16 sources: f32 and bf16 hold every value exactly; f16 and the block types do not.
                XCTAssertEqual(summary.lossless, type == .f32 || type == .bf16, "\(fixture) \(type)")
            }
        }
    }

    func testFloatFilesHoldTheSourceValuesExactly() throws {
        let folder = Fixtures.folder("ouro-tiny-b")
        let checkpoint = try SafeTensorsCheckpoint(folder: folder)
        for type in [GGMLType.f32, .bf16] {
            let file = try GGUFFile(path: try convert(folder, type).path)
            for info in file.tensors {
                let hf = TensorNaming.hfName(forGGUF: info.name)!
                let (source, sourceInfo) = checkpoint.tensor(hf)!
                let expected = try source.floats(sourceInfo.name)
                let stored = try dequantize(info.type, file.data(info), count: info.elementCount)
                XCTAssertEqual(stored.map(\.bitPattern), expected.map(\.bitPattern), "\(type) \(info.name)")
            }
        }
    }

    func testQuantizedValuesStayWithinEachBlocksBound() throws {
        let folder = Fixtures.folder("ouro-trained-s")
        let checkpoint = try SafeTensorsCheckpoint(folder: folder)
        for type in [GGMLType.q8_0, .q4_0] {
            let file = try GGUFFile(path: try convert(folder, type).path)
            for info in file.tensors where info.type == type {
                let (source, sourceInfo) = checkpoint.tensor(TensorNaming.hfName(forGGUF: info.name)!)!
                let original = try source.floats(sourceInfo.name)
                let stored = try dequantize(type, file.data(info), count: info.elementCount)
                for block in stride(from: 0, to: original.count, by: 32) {
                    let values = original[block..<block + 32]
                    let amax = values.map(abs).max()!
                    // Q8_0 rounds to d = amax/127, Q4_0 to d = amax/8; plus the f16 rounding of d.
                    let step = type == .q8_0 ? amax / 127 : amax / 8
                    let bound = step / 2 * 1.01 + amax * 1e-3 + 1e-12
                    for i in block..<block + 32 {
                        XCTAssertLessThanOrEqual(abs(stored[i] - original[i]), type == .q8_0 ? bound : step * 1.01 + 1e-12,
                                                 "\(info.name)[\(i)]")
                    }
                }
            }
        }
    }

    /// gguf-py (llama.cpp's Python reader and quantizer) reads our files and quantizes the source to the same bytes.
    func testIndependentReaderAndQuantizerAgreeByteForByte() throws {
        let python = ProcessInfo.processInfo.environment["OURO_PYTHON"] ?? "python3"
        guard run(python, ["-c", "import gguf, numpy"]).status == 0 else {
            throw XCTSkip("gguf-py not importable by \(python); Scripts/test.sh installs it into a venv")
        }
        let script = Fixtures.root + "/../../Scripts/check_conversion.py"
        for fixture in ["ouro-tiny-a", "ouro-tiny-b", "ouro-trained-s"] {
            for type in types {
                let path = try convert(Fixtures.folder(fixture), type).path
                let result = run(python, [script, Fixtures.folder(fixture), path])
                XCTAssertEqual(result.status, 0, "\(fixture) \(type): \(result.output)")
                XCTAssertTrue(result.output.contains("\"ok\": true"), result.output)
            }
        }
    }

    /// gguf-py reads every metadata key of a `--gptq` Q4_K file and dequantizes every tensor close to the
    /// source; a corrupted block scale makes the same check fail (so it can).
    func testIndependentReaderDecodesAGPTQFile() throws {
        let python = ProcessInfo.processInfo.environment["OURO_PYTHON"] ?? "python3"
        guard run(python, ["-c", "import gguf, numpy"]).status == 0 else {
            throw XCTSkip("gguf-py not importable by \(python); Scripts/test.sh installs it into a venv")
        }
        let script = Fixtures.root + "/../../Scripts/check_conversion.py"
        let folder = Fixtures.folder("ouro-trained-s")
        let weights = try OuroWeights.load(checkpoint: folder)
        let tokens = (0..<256).map { ($0 * 37 + 11) % weights.config.vocabSize }
        let hessians = try Hessians.collect(weights: weights, tokens: tokens)
        var recipe = QuantizationRecipe.uniform(.q4_K)
        recipe.name += "+gptq"
        let path = try Fixtures.temporaryFolder() + "/gptq-q4_k.gguf"
        _ = try Converter(checkpoint: folder, recipe: recipe, hessians: hessians, weights: weights).convert(to: path)
        let file = try GGUFFile(path: path)
        let gptqTensors = file.value("ouro.quantization.gptq.tensors")?.array?.count ?? 0
        XCTAssertGreaterThan(gptqTensors, 0)
        let result = run(python, [script, folder, path])
        XCTAssertEqual(result.status, 0, result.output)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        XCTAssertEqual(json["keys_read"] as? Int, file.metadata.count)
        let checked = try XCTUnwrap(json["tensors_checked"] as? [String: Int])
        XCTAssertEqual(checked.values.reduce(0, +), file.tensors.count)
        XCTAssertGreaterThan(checked["Q4_K"] ?? 0, 0)

        // Q4_K's d (a block's first two bytes) set to f16 1024 in the first block of a Q4_K tensor that
        // has non-zero sub-block scales (a zero row's block decodes to 0 whatever d is).
        let target = try XCTUnwrap(file.tensors.first { $0.type == .q4_K })
        let bytes = file.data(target), blockBytes = GGMLType.q4_K.bytesPerBlock
        let block = try XCTUnwrap((0..<bytes.count / blockBytes).first { b in (4..<16).contains { bytes[b * blockBytes + $0] != 0 } })
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64(file.dataOffset + target.offset + block * blockBytes))
        try handle.write(contentsOf: Data([0x00, 0x64]))
        try handle.close()
        let broken = run(python, [script, folder, path])
        XCTAssertEqual(broken.status, 1, broken.output)
        XCTAssertTrue(broken.output.contains(target.name), broken.output)
    }

    func testF32FileReproducesTheReferenceLogits() throws {
        for fixture in ["ouro-tiny-a", "ouro-tiny-b"] {
            let path = try convert(Fixtures.folder(fixture), .f32).path
            let runner = OuroRunner(weights: try OuroWeights.load(gguf: path))
            let reference = try SafeTensorsFile(path: Fixtures.folder(fixture) + "/reference.safetensors")
            let tokens = try reference.int64s("p0.input_ids").map { Int($0) }
            let out = try runner.forward(tokens: tokens)
            let golden = try reference.floats("p0.step_logits")
            let ours = out.stepLogits.flatMap { $0 }
            XCTAssertEqual(ours.count, golden.count)
            let worst = zip(ours, golden).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-3, fixture)
        }
    }

    func testRowsThatAreNotWholeBlocksFallBackToF16AndSaySo() throws {
        // hidden 48 (3 heads of 16): rows of 48 are not whole Q8_0 blocks; ffn rows (intermediate 64) are.
        var builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        builder.config = builder.config.replacingOccurrences(of: "\"hidden_size\": 64", with: "\"hidden_size\": 48")
            .replacingOccurrences(of: "\"num_attention_heads\": 4", with: "\"num_attention_heads\": 3")
            .replacingOccurrences(of: "\"num_key_value_heads\": 4", with: "\"num_key_value_heads\": 3")
            .replacingOccurrences(of: "\"intermediate_size\": 192", with: "\"intermediate_size\": 64")
        let config = try JSONSerialization.jsonObject(with: Data(builder.config.utf8)) as! [String: Any]
        XCTAssertEqual(config["hidden_size"] as? Int, 48)
        builder.tensors = TensorNaming.expectedTensors(try JSONDecoder().decode(OuroConfiguration.self, from: Data(builder.config.utf8)))
            .map { tensor in
                let count = tensor.elementCount
                let values = (0..<count).map { i in BFloat16Bits.from(Float(sin(Double(i) * 0.37))) }
                return CheckpointBuilder.Tensor(name: tensor.hfName, dtype: "BF16", shape: tensor.shape,
                                                bytes: values.withUnsafeBytes { Array($0) })
            }
        let folder = try builder.write()
        let converter = try Converter(checkpoint: folder, type: .q8_0)
        let byName = Dictionary(uniqueKeysWithValues: converter.plan.entries.map { ($0.name, $0) })
        XCTAssertEqual(byName["blk.0.attn_q.weight"]?.targetType, .f16)
        XCTAssertNotNil(byName["blk.0.attn_q.weight"]?.note)
        XCTAssertEqual(byName["blk.0.ffn_down.weight"]?.targetType, .q8_0)   // rows of 64
        XCTAssertNil(byName["blk.0.ffn_down.weight"]?.note)
        let file = try GGUFFile(path: try converter.convert(to: folder + "/out.gguf").destination)
        XCTAssertEqual(file.tensor("blk.0.attn_q.weight")?.type, .f16)
        _ = try OuroRunner(weights: OuroWeights.load(gguf: file.path)).forward(tokens: [1, 2, 3])
    }

    func testBadCheckpointLeavesNothingAtTheDestination() throws {
        var builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        builder.remove("model.layers.1.mlp.up_proj.weight")
        let folder = try builder.write()
        let out = folder + "/out.gguf"
        XCTAssertThrowsError(try Converter(checkpoint: folder, type: .q8_0).convert(to: out)) { error in
            XCTAssertTrue("\(error)".contains("model.layers.1.mlp.up_proj.weight"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try leftovers(folder), [])
    }

    func testUnwritableDestinationIsAOneLineErrorAndLeavesNothing() throws {
        let folder = try Fixtures.temporaryFolder()
        let missing = folder + "/no/such/folder/out.gguf"
        XCTAssertThrowsError(try Converter(checkpoint: Fixtures.folder("ouro-tiny-a"), type: .q8_0).convert(to: missing)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(missing), text)
            XCTAssertFalse(text.contains("\n"), text)
        }
        XCTAssertEqual(try leftovers(folder), [])
    }

    func testRefusesToOverwriteTheCheckpointItself() throws {
        let builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        let folder = try builder.write()
        let target = folder + "/model.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: target))
        XCTAssertThrowsError(try Converter(checkpoint: folder, type: .q8_0).convert(to: target)) { error in
            XCTAssertEqual(error as? ConversionError, .outputIsInput(path: target))
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: target)), before)
    }

    func testReconvertingReplacesTheDestinationAtomically() throws {
        let folder = try Fixtures.temporaryFolder()
        let out = folder + "/model.gguf"
        _ = try Converter(checkpoint: Fixtures.folder("ouro-tiny-a"), type: .q4_0).convert(to: out)
        _ = try Converter(checkpoint: Fixtures.folder("ouro-tiny-a"), type: .q8_0).convert(to: out)
        XCTAssertEqual(try GGUFFile(path: out).tensor("blk.0.attn_q.weight")?.type, .q8_0)
        XCTAssertEqual(try leftovers(folder), ["model.gguf"])
    }

    private func leftovers(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { $0 != "config.json" && $0 != "model.safetensors" }.sorted()
    }

    private func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
