import Foundation
import GGUF
import OuroModel
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroConversion

/// Recipes: which type each tensor gets, block fallbacks, and exact bits-per-weight accounting.
final class QuantizationRecipeTests: XCTestCase {
    private func trainedConfig() throws -> OuroConfiguration {
        try OuroConfiguration.load(folder: Fixtures.folder("ouro-trained-s"))
    }

    private func plan(_ config: OuroConfiguration, _ recipe: QuantizationRecipe) -> ConversionPlan {
        ConversionPlan(expected: TensorNaming.expectedTensors(config), sourceTypes: [:], recipe: recipe)
    }

    /// llama.cpp's use_more_bits for 32 layers: the first and last 4, and 6, 9, ..., 27 in between.
    func testUseMoreBitsMatchesLlamaCppRule() {
        let picked = (0..<32).filter { QuantizationRecipe.useMoreBits($0, 32) }
        XCTAssertEqual(picked, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
        XCTAssertEqual((0..<4).filter { QuantizationRecipe.useMoreBits($0, 4) }, [2, 3])
    }

    /// Trained fixture (4 layers, hidden 256, intermediate 704): q4_k_m puts Q6_K on output and on
    /// attn_v / ffn_down of layers 2 and 3; ffn_down rows of 704 are not whole 256-blocks, so its
    /// Q4_K becomes IQ4_NL and its Q6_K becomes Q8_0, each with a note. Norms and gate stay F32.
    func testQ4KMPresetTypesAndFallbacksOnTrainedFixture() throws {
        let config = try trainedConfig()
        let recipe = try XCTUnwrap(QuantizationRecipe.preset("q4_k_m", config: config))
        XCTAssertEqual(recipe.fileType, 15)
        let entries = Dictionary(uniqueKeysWithValues: plan(config, recipe).entries.map { ($0.name, $0) })
        XCTAssertEqual(entries["output.weight"]?.targetType, .q6_K)
        XCTAssertEqual(entries["token_embd.weight"]?.targetType, .q4_K)
        for layer in 0..<4 {
            let more = layer >= 2
            XCTAssertEqual(entries["blk.\(layer).attn_v.weight"]?.targetType, more ? .q6_K : .q4_K)
            XCTAssertEqual(entries["blk.\(layer).ffn_down.weight"]?.targetType, more ? .q8_0 : .iq4_nl)
            XCTAssertNotNil(entries["blk.\(layer).ffn_down.weight"]?.note)
            for name in ["attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"] {
                XCTAssertEqual(entries["blk.\(layer).\(name).weight"]?.targetType, .q4_K, name)
                XCTAssertNil(entries["blk.\(layer).\(name).weight"]?.note)
            }
            XCTAssertEqual(entries["blk.\(layer).attn_norm.weight"]?.targetType, .f32)
        }
        XCTAssertEqual(entries["exit_gate.weight"]?.targetType, .f32)
        XCTAssertEqual(entries["exit_gate.bias"]?.targetType, .f32)
    }

    func testQ4KSPresetRaisesAttnVOfFirstFourLayersToQ5_K() throws {
        var config = try trainedConfig()
        config.layerCount = 16
        let recipe = try XCTUnwrap(QuantizationRecipe.preset("q4_k_s", config: config))
        XCTAssertEqual(recipe.fileType, 14)
        let v = (0..<16).map { recipe.type(for: "blk.\($0).attn_v.weight") }
        XCTAssertEqual(v, Array(repeating: GGMLType.q5_K, count: 4) + Array(repeating: .q4_K, count: 12))
        XCTAssertEqual((0..<16).map { recipe.type(for: "blk.\($0).ffn_down.weight") }, [.q5_K, .q5_K] + Array(repeating: .q4_K, count: 14))
        XCTAssertNil(QuantizationRecipe.preset("q3_k_m", config: config))
    }

    /// llama-quantize's IQ4_XS mix: ffn_down of the first eighth Q5_K only without an imatrix, attn_v
    /// Q5_K only when n_head / n_head_kv >= 4, output Q6_K.
    func testIQ4_XSMixFollowsLlamaCppRules() throws {
        var config = try trainedConfig()
        config.layerCount = 16
        config.headCount = 8
        config.kvHeadCount = 8
        let plain = try XCTUnwrap(QuantizationRecipe.preset("iq4_xs_mix", config: config))
        XCTAssertEqual(plain.fileType, 30)
        XCTAssertEqual(plain.defaultType, .iq4_xs)
        XCTAssertEqual((0..<16).map { plain.type(for: "blk.\($0).ffn_down.weight") }, [.q5_K, .q5_K] + Array(repeating: .iq4_xs, count: 14))
        XCTAssertEqual((0..<16).map { plain.type(for: "blk.\($0).attn_v.weight") }, Array(repeating: .iq4_xs, count: 16))
        XCTAssertEqual(plain.type(for: config.tieWordEmbeddings ? "token_embd.weight" : "output.weight"), .q6_K)
        let guided = try XCTUnwrap(QuantizationRecipe.preset("iq4_xs_mix", config: config, importance: true))
        XCTAssertEqual((0..<16).map { guided.type(for: "blk.\($0).ffn_down.weight") }, Array(repeating: .iq4_xs, count: 16))
        config.kvHeadCount = 2
        let grouped = try XCTUnwrap(QuantizationRecipe.preset("iq4_xs_mix", config: config))
        XCTAssertEqual((0..<16).map { grouped.type(for: "blk.\($0).attn_v.weight") }, Array(repeating: .q5_K, count: 16))
    }

    /// The fallback chain, including rows that fit no 32-block type (F16, or F32 for an F32 source).
    func testFallbacks() {
        XCTAssertEqual(ConversionPlan.fallback(for: .q4_K, columns: 704, source: .bf16), .iq4_nl)
        XCTAssertEqual(ConversionPlan.fallback(for: .q6_K, columns: 704, source: .bf16), .q8_0)
        XCTAssertEqual(ConversionPlan.fallback(for: .q3_K, columns: 704, source: .bf16), .iq4_nl)
        XCTAssertEqual(ConversionPlan.fallback(for: .iq4_xs, columns: 704, source: .bf16), .iq4_nl)
        XCTAssertEqual(ConversionPlan.fallback(for: .q5_K, columns: 704, source: .bf16), .q8_0)
        XCTAssertEqual(ConversionPlan.fallback(for: .q5_K, columns: 48, source: .bf16), .f16)
        XCTAssertEqual(ConversionPlan.fallback(for: .q4_K, columns: 48, source: .bf16), .f16)
        XCTAssertEqual(ConversionPlan.fallback(for: .q4_0, columns: 48, source: .f32), .f32)
    }

    /// Bits per weight = stored bytes x 8 / elements over projections + token_embd + output, computed
    /// here from the shapes and ggml's block sizes (Q4_K 144 B / 256, Q6_K 210 B / 256, Q8_0 34 B / 32,
    /// IQ4_NL 18 B / 32).
    func testBitsPerWeightIsExact() throws {
        let config = try trainedConfig()
        let p = plan(config, try XCTUnwrap(QuantizationRecipe.preset("q4_k_m", config: config)))
        let h = 256, i = 704, v = 384
        var bytes = 0, elements = 0
        func add(_ rows: Int, _ cols: Int, _ blockBytes: Int, _ block: Int) { bytes += rows * cols / block * blockBytes; elements += rows * cols }
        add(v, h, 144, 256)            // token_embd Q4_K
        add(v, h, 210, 256)            // output Q6_K
        for layer in 0..<4 {
            for _ in 0..<3 { add(h, h, 144, 256) }                          // q, k, o
            add(h, h, layer >= 2 ? 210 : 144, 256)                           // v
            add(i, h, 144, 256); add(i, h, 144, 256)                         // gate, up
            if layer >= 2 { add(h, i, 34, 32) } else { add(h, i, 18, 32) }   // down: Q8_0 / IQ4_NL
        }
        XCTAssertEqual(p.quantizedBitsPerWeight, Double(bytes * 8) / Double(elements))
        XCTAssertEqual(plan(config, .uniform(.q4_0)).quantizedBitsPerWeight, 4.5)
        XCTAssertEqual(plan(config, .uniform(.q8_0)).quantizedBitsPerWeight, 8.5)
    }

    /// A preset conversion writes llama.cpp's file type, the recipe name, and types the plan chose.
    func testPresetConversionStoresRecipe() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let source = Fixtures.folder("ouro-tiny-a")
        let recipe = try XCTUnwrap(QuantizationRecipe.preset("q4_k_m", config: try OuroConfiguration.load(folder: source)))
        let summary = try Converter(checkpoint: source, recipe: recipe).convert(to: folder + "/m.gguf")
        let file = try GGUFFile(path: folder + "/m.gguf")
        XCTAssertEqual(file.value("general.file_type"), .uint32(15))
        XCTAssertEqual(file.value("ouro.quantization.recipe"), .string("q4_k_m"))
        for entry in summary.plan.entries { XCTAssertEqual(file.tensor(entry.name)?.type, entry.targetType, entry.name) }
        // Hidden 64: no Q4_K anywhere; IQ4_NL and (for Q6_K) Q8_0 instead.
        XCTAssertEqual(file.tensor("blk.0.attn_q.weight")?.type, .iq4_nl)
        XCTAssertEqual(file.tensor("output.weight")?.type, .q8_0)
        let weights = try OuroWeights.load(gguf: folder + "/m.gguf")
        XCTAssertEqual(weights.quantizationRecipe, "q4_k_m")
        XCTAssertNil(weights.fileType)
    }
}
