import Foundation
import GGUF
import OuroIO
import OuroModel
import OuroTokenizer
import Quantization

/// Converts a Hugging Face Ouro checkpoint folder into one GGUF file.
///
/// The checkpoint is validated in full (config, every tensor's presence, dtype and shape) before the
/// output is created. Tensors are then streamed one at a time, a bounded chunk of rows at a time, so
/// memory stays bounded whatever the checkpoint's size. The output appears at the destination only
/// when it is complete (see `AtomicOutputFile`).
public struct Converter {
    public struct Progress: Sendable {
        public let tensorIndex: Int       // 0-based index of the tensor being written
        public let tensorCount: Int
        public let tensorName: String
        public let bytesWritten: Int
        public let totalBytes: Int
    }

    public struct Summary: Sendable {
        public let destination: String
        public let plan: ConversionPlan
        public let fileBytes: Int
        public let seconds: Double
        /// True when every stored value equals its source value exactly (f32, or f16/bf16 that could hold the source).
        public let lossless: Bool
    }

    public let folder: String
    public let weights: OuroWeights
    public let plan: ConversionPlan
    public var modelName: String
    /// Every stored value equals the source's (see `isLossless`).
    public let lossless: Bool

    /// Per-column importance (imatrix) of the tensors it covers; nil quantizes without.
    public let importance: ImportanceMatrix?

    /// The checkpoint's tokenizer (tokenizer.json and its configs) as `tokenizer.ggml.*` keys; empty
    /// when the folder has no tokenizer.json.
    let tokenizerMetadata: [(String, GGUFValue)]
    /// Input Hessians: matrices they cover whose type has element codes (Q4_0, IQ4_NL, Q4_K, Q6_K)
    /// are written with error-compensating rounding (`ErrorCompensatingRounding`).
    public var hessians: Hessians?
    /// Relative damping of H for error-compensating rounding.
    public var damping = ErrorCompensatingRounding.defaultDamping
    /// Input Hessians gathered a layer group at a time as the tensors are written (bounded memory);
    /// used instead of `hessians` for the tensors it covers.
    public var hessianGroups: HessianGroups?
    /// Projections sharing an input (q/k/v, gate/up) share one H: factor it once.
    private let factors = FactorCache()

    /// Opens and validates the checkpoint and decides each tensor's output type.
    public init(checkpoint folder: String, type: GGMLType, name: String? = nil) throws {
        try self.init(checkpoint: folder, recipe: .uniform(type), name: name)
    }

    /// Converts with a recipe (uniform type, preset or per-tensor map) and optional importance
    /// weights. `weights` may be the checkpoint already loaded (by the caller that built the recipe).
    public init(checkpoint folder: String, recipe: QuantizationRecipe, importance: ImportanceMatrix? = nil,
                hessians: Hessians? = nil, weights preloaded: OuroWeights? = nil, name: String? = nil) throws {
        for type in Set([recipe.defaultType] + recipe.overrides.values) where !Self.writableTypes.contains(type) {
            throw ConversionError.unsupportedTargetType(type.name)
        }
        self.folder = folder
        weights = try preloaded ?? OuroWeights.load(checkpoint: folder)
        let expected = TensorNaming.expectedTensors(weights.config)
        var sourceTypes: [String: GGMLType] = [:]
        for tensor in expected {
            if let weight = weights.tensor(tensor.ggufName) { sourceTypes[tensor.ggufName] = weight.type }
        }
        plan = ConversionPlan(expected: expected, sourceTypes: sourceTypes, recipe: recipe)
        self.importance = importance
        tokenizerMetadata = try Self.tokenizerMetadata(folder: folder, config: weights.config)
        self.hessians = hessians
        modelName = name ?? URL(fileURLWithPath: folder).standardizedFileURL.lastPathComponent
        lossless = Self.isLossless(plan, weights)
    }

    public static let writableTypes: [GGMLType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs]

    /// Rows converted per chunk: enough to amortise calls, small enough to keep memory bounded.
    static let chunkElements = 1 << 20

    public func convert(to destination: String, progress: ((Progress) -> Void)? = nil) throws -> Summary {
        let started = Date()
        try checkNotOverwritingInput(destination)
        let writer = try GGUFWriter(destination: destination)
        do {
            for (key, value) in try metadata() { try writer.add(key, value) }
            for entry in plan.entries {
                try writer.addTensor(name: entry.name, dimensions: entry.shape.reversed(), type: entry.targetType)
            }
            var written = 0
            for (index, entry) in plan.entries.enumerated() {
                progress?(Progress(tensorIndex: index, tensorCount: plan.entries.count, tensorName: entry.name,
                                   bytesWritten: written, totalBytes: plan.totalBytes))
                guard let source = weights.tensor(entry.name) else { continue }  // validated by OuroWeights.load
                try convertTensor(entry, source: source, writer: writer)
                written += entry.byteCount
            }
            progress?(Progress(tensorIndex: plan.entries.count, tensorCount: plan.entries.count, tensorName: "",
                               bytesWritten: written, totalBytes: plan.totalBytes))
            try writer.finish()
            let size = (try? FileManager.default.attributesOfItem(atPath: destination))?[.size] as? Int
            return Summary(destination: destination, plan: plan, fileBytes: size ?? 0,
                           seconds: Date().timeIntervalSince(started), lossless: lossless)
        } catch {
            writer.abort()
            throw error
        }
    }

    /// Streams one tensor through f32 into its target type, a bounded chunk of rows at a time.
    private func convertTensor(_ entry: ConversionPlan.Entry, source: WeightTensor, writer: GGUFWriter) throws {
        let columns = entry.columns
        let rowsPerChunk = max(1, Self.chunkElements / max(columns, 1))
        let sourceRowBytes = source.rowByteCount
        let targetRowBytes = entry.targetType.rowByteCount(columns)!
        let encoder = RowEncoder(type: entry.targetType, importance: importance?.values[entry.name],
                                 searchedQ4_0: plan.recipe.searchedQ4_0)
        var compensation: ChunkWork.Compensation?
        if supportsElementRounding(entry.targetType),
           let h = try hessianGroups?.matrix(for: entry.name) ?? hessians?.byTensor[entry.name], h.columns == columns {
            compensation = .init(factor: factors.factor(h, damping: damping), importance: importance?.values[entry.name])
        }
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerChunk * columns)
        defer { floats.deallocate() }
        let output = UnsafeMutableRawPointer.allocate(byteCount: rowsPerChunk * targetRowBytes, alignment: 64)
        defer { output.deallocate() }
        // Each chunk's rows are split over the cores: quantizing is the costly part.
        let parts = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        let work = ChunkWork(source: source, encoder: encoder, columns: columns, sourceRowBytes: sourceRowBytes,
                             targetRowBytes: targetRowBytes, floats: floats, output: output,
                             compensation: compensation)
        var row = 0
        while row < entry.rows {
            let count = min(rowsPerChunk, entry.rows - row)
            if parts == 1 || count < 2 * parts {
                work.run(rows: row..<row + count, chunkStart: row)
            } else {
                let start = row
                DispatchQueue.concurrentPerform(iterations: parts) { p in
                    work.run(rows: (start + count * p / parts)..<(start + count * (p + 1) / parts), chunkStart: start)
                }
            }
            try writer.writeTensorData(UnsafeRawBufferPointer(start: output, count: count * targetRowBytes))
            // Done with these source rows: let their pages go, so resident memory stays at about
            // one chunk whatever the checkpoint's size.
            source.releasePages(rows: row..<row + count)
            row += count
        }
    }

    /// One tensor's scratch buffers while its chunks are converted; parts write disjoint rows.
    private final class ChunkWork: @unchecked Sendable {
        let source: WeightTensor
        let encoder: RowEncoder
        let columns: Int, sourceRowBytes: Int, targetRowBytes: Int
        let floats: UnsafeMutablePointer<Float>
        let output: UnsafeMutableRawPointer
        let compensation: Compensation?

        struct Compensation {
            let factor: ErrorCompensatingRounding.Factor
            let importance: [Float]?
        }

        init(source: WeightTensor, encoder: RowEncoder, columns: Int, sourceRowBytes: Int, targetRowBytes: Int,
             floats: UnsafeMutablePointer<Float>, output: UnsafeMutableRawPointer, compensation: Compensation?) {
            self.compensation = compensation
            self.source = source
            self.encoder = encoder
            self.columns = columns
            self.sourceRowBytes = sourceRowBytes
            self.targetRowBytes = targetRowBytes
            self.floats = floats
            self.output = output
        }

        /// Converts source rows `rows`; chunk buffers are indexed from `chunkStart`.
        func run(rows: Range<Int>, chunkStart: Int) {
            for r in rows {
                let dst = floats + (r - chunkStart) * columns
                dequantizeRow(source.type, source.bytes.baseAddress! + r * sourceRowBytes, count: columns, into: dst)
                if compensation == nil { encoder.encode(dst, count: columns, into: output + (r - chunkStart) * targetRowBytes) }
            }
            guard let compensation, !rows.isEmpty else { return }
            let first = rows.lowerBound - chunkStart
            let quantize = { (importance: UnsafePointer<Float>?) in
                ErrorCompensatingRounding.quantize(rows: self.floats + first * self.columns, count: rows.count, columns: self.columns,
                                                   type: self.encoder.type, factor: compensation.factor, importance: importance,
                                                   into: self.output + first * self.targetRowBytes)
            }
            if let importance = compensation.importance {
                importance.withUnsafeBufferPointer { quantize($0.baseAddress!) }
            } else {
                quantize(nil)
            }
        }
    }

    /// Whether every value survives in the plan's types: decided before writing, because the answer is
    /// stored in the header (`ouro.conversion.lossless`) and picks `validate`'s criteria.
    static func isLossless(_ plan: ConversionPlan, _ weights: OuroWeights) -> Bool {
        for entry in plan.entries {
            if entry.targetType.isQuantized { return false }
            guard entry.targetType != entry.sourceType, entry.targetType != .f32,
                  let source = weights.tensor(entry.name) else { continue }
            // Only 16-bit targets of a different source type can round: check each value.
            let columns = entry.columns
            let row = UnsafeMutablePointer<Float>.allocate(capacity: columns)
            let again = UnsafeMutablePointer<Float>.allocate(capacity: columns)
            let stored = UnsafeMutableRawPointer.allocate(byteCount: entry.targetType.rowByteCount(columns)!, alignment: 16)
            defer { row.deallocate(); again.deallocate(); stored.deallocate() }
            for r in 0..<entry.rows {
                dequantizeRow(source.type, source.bytes.baseAddress! + r * source.rowByteCount, count: columns, into: row)
                quantizeRow(entry.targetType, row, count: columns, into: stored)
                dequantizeRow(entry.targetType, stored, count: columns, into: again)
                for c in 0..<columns where row[c].bitPattern != again[c].bitPattern && !(row[c].isNaN && again[c].isNaN) {
                    return false
                }
            }
            source.releasePages()
        }
        return true
    }

    /// The model's hyper-parameters plus what identifies this file.
    func metadata() throws -> [(String, GGUFValue)] {
        var keys: [(String, GGUFValue)] = [("general.architecture", .string("ouro"))]
        keys.append(("general.name", .string(modelName)))
        keys.append(("general.file_type", .uint32(plan.recipe.fileType)))
        keys.append(("general.quantization_version", .uint32(2)))
        keys += weights.config.ggufMetadata().filter { $0.0 != "general.architecture" }
        keys += tokenizerMetadata
        keys.append((OuroWeights.losslessKey, .bool(lossless)))
        if plan.entries.contains(where: { $0.targetType.isQuantized }) {
            keys.append((OuroWeights.recipeKey, .string(plan.recipe.name)))
            let weighted = plan.entries.filter { $0.targetType.isQuantized && $0.targetType != .q8_0 && importance?.values[$0.name] != nil }
            let compensated = plan.entries.filter {
                supportsElementRounding($0.targetType) && (hessians?.byTensor[$0.name] != nil || hessianGroups?.covers($0.name) == true)
            }
            if hessians != nil || hessianGroups != nil { keys.append(("ouro.quantization.gptq.tensors", .array(.string, compensated.map { .string($0.name) }))) }
            keys.append(("ouro.quantization.imatrix.tensors", .array(.string, weighted.map { .string($0.name) })))
            if let importance { keys.append(("ouro.quantization.imatrix.tokens", .uint32(UInt32(clamping: importance.tokens)))) }
        }
        keys += try SourceIdentity(folder: folder).metadata()
        return keys
    }

    /// Read and checked before anything is written: a malformed tokenizer.json, one larger than the
    /// embedding, or one the GGUF keys cannot express stops the conversion.
    static func tokenizerMetadata(folder: String, config: OuroConfiguration) throws -> [(String, GGUFValue)] {
        let path = URL(fileURLWithPath: folder).appendingPathComponent("tokenizer.json").path
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let tokenizer = try Tokenizer.load(folder: folder)
        return try tokenizer.ggufMetadata(embeddingRows: config.vocabSize, eosID: config.eosTokenID)
    }

    private func checkNotOverwritingInput(_ destination: String) throws {
        let out = URL(fileURLWithPath: destination).standardizedFileURL.resolvingSymlinksInPath().path
        let input = URL(fileURLWithPath: folder).standardizedFileURL.resolvingSymlinksInPath().path
        let inputFiles = try FileManager.default.contentsOfDirectory(atPath: input).map { "\(input)/\($0)" }
        if inputFiles.contains(out) && (out.hasSuffix(".safetensors") || out.hasSuffix(".json")) {
            throw ConversionError.outputIsInput(path: destination)
        }
    }
}

/// The last factor computed, keyed by its H: consecutive tensors with one input reuse it.
/// The key is the H object itself, held weakly: an identifier or address could be reused by the
/// next layer group's H once this one is freed, and hand a tensor another matrix's factor.
private final class FactorCache: @unchecked Sendable {
    private weak var matrix: Hessians.Matrix?
    private var damping = 0.0
    private var last: ErrorCompensatingRounding.Factor?

    func factor(_ h: Hessians.Matrix, damping: Double) -> ErrorCompensatingRounding.Factor {
        if let last, let matrix, matrix === h, self.damping == damping { return last }
        last = nil
        let factor = ErrorCompensatingRounding.factor(h, damping: damping)
        (matrix, self.damping, last) = (h, damping, factor)
        return factor
    }
}
