import CZstd
import OuroIO
import Quantization

/// Writes a reference bundle (Formats/reference-bundle.md) prompt by prompt: the safetensors header
/// is known from the layouts before any model runs, so each prompt's tensors go to disk (through a
/// zstd stream when compressing) as soon as they exist and memory holds one prompt at most.
/// The destination appears only when `finish()` succeeds (AtomicOutputFile).
public final class ReferenceBundleWriter {
    /// How logit tensors are stored. F16 halves the bundle; it rounds logits by up to ~2^-11
    /// relative (about 5e-3 on a logit of 10), enough for KLD/top-1 of quantized files, not
    /// for lossless 1e-3 checks.
    public enum LogitType: String, Sendable, CaseIterable {
        case f32, f16
        var dtype: String { self == .f32 ? "F32" : "F16" }
        var size: Int { self == .f32 ? 4 : 2 }
    }

    private struct Entry {
        let name: String
        let dtype: String
        let shape: [Int]
        let byteCount: Int
    }

    public let destination: String
    private let output: AtomicOutputFile
    private let layouts: [PromptLayout]
    private let entriesByPrompt: [[Entry]]
    private let logitType: LogitType
    private var nextPrompt = 0
    private var compressor: ZstdStreamEncoder?
    /// Uncompressed size (header + data).
    public let plainSize: Int

    public init(destination: String, layouts: [PromptLayout], steps s: Int, vocab v: Int, hidden: Int?,
                metadata: [String: String], logitType: LogitType = .f32, compressionLevel: Int? = nil) throws {
        self.destination = destination
        self.layouts = layouts
        self.logitType = logitType
        let logit = logitType.dtype, ls = logitType.size
        var entries: [[Entry]] = []
        var offset = 0
        var header: [String] = []
        for layout in layouts {
            let p = layout.prefix, t = layout.tokens
            var list: [Entry] = []
            func add(_ suffix: String, _ dtype: String, _ shape: [Int], _ size: Int) {
                list.append(Entry(name: p + suffix, dtype: dtype, shape: shape, byteCount: shape.reduce(size, *)))
            }
            add("input_ids", "I64", [t], 8)
            add("step_logits", logit, [s, t, v], ls)
            if layout.hasStepHidden, let hidden { add("step_hidden", "F32", [s, t, hidden], 4) }
            add("gate_logits", "F32", [s, t], 4)
            add("exit_pdf", "F32", [t, s], 4)
            add("final_logits", logit, [t, v], ls)
            if layout.hasWeighted { add("weighted_logits", logit, [t, v], ls) }
            for q in layout.thresholds {
                add("threshold_\(q.key).logits", logit, [t, v], ls)
                add("threshold_\(q.key).exit_steps", "I64", [t], 8)
            }
            for k in layout.exitAtSteps { add("exit_at_step_\(k).logits", logit, [t, v], ls) }
            if let n = layout.greedyCachedCount { add("greedy_cached", "I64", [n], 8) }
            if let n = layout.greedyUncachedCount { add("greedy_uncached", "I64", [n], 8) }
            if layout.hasLabels { add("labels", "I64", [t], 8) }
            for e in list {
                header.append("\(jsonQuoted(e.name)):{\"dtype\":\"\(e.dtype)\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + e.byteCount)]}")
                offset += e.byteCount
            }
            entries.append(list)
        }
        let meta = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }.joined(separator: ",")
        var json = Array(("{\"__metadata__\":{\(meta)}" + header.map { "," + $0 }.joined() + "}").utf8)
        // safetensors pads the header with spaces so the data starts 8-byte aligned.
        while json.count % 8 != 0 { json.append(0x20) }
        entriesByPrompt = entries
        plainSize = 8 + json.count + offset

        output = try AtomicOutputFile(destination: destination)
        if let level = compressionLevel {
            compressor = try ZstdStreamEncoder(level: level, contentSize: plainSize, path: destination)
        }
        var lengthBytes = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { lengthBytes[i] = UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64(i))) }
        try emit(lengthBytes)
        try emit(json)
    }

    /// Appends the next prompt; prompts must come in layout order with the layout's shapes.
    public func append(_ prompt: ReferencePrompt) throws {
        precondition(nextPrompt < layouts.count, "ReferenceBundleWriter: more prompts than layouts")
        let layout = layouts[nextPrompt]
        precondition(prompt.layout == layout, "ReferenceBundleWriter: prompt \(nextPrompt) does not match its layout")
        for entry in entriesByPrompt[nextPrompt] {
            let bytes = try tensorBytes(entry, prompt)
            precondition(bytes.count == entry.byteCount, "ReferenceBundleWriter: \(entry.name) has the wrong size")
            try emit(bytes)
        }
        nextPrompt += 1
    }

    /// Flushes the compressor and renames the file into place; returns the bytes on disk.
    @discardableResult
    public func finish() throws -> Int {
        precondition(nextPrompt == layouts.count, "ReferenceBundleWriter: \(layouts.count - nextPrompt) prompts missing")
        if let compressor { try output.write(try compressor.end()) }
        try output.commit()
        return output.bytesWritten
    }

    public func abort() { output.abort() }

    private func emit(_ bytes: [UInt8]) throws {
        if let compressor {
            let compressed = try compressor.compress(bytes)
            if !compressed.isEmpty { try output.write(compressed) }
        } else {
            try output.write(bytes)
        }
    }

    private func tensorBytes(_ entry: Entry, _ p: ReferencePrompt) throws -> [UInt8] {
        let suffix = String(entry.name.dropFirst(p.layout.prefix.count))
        func floats(_ values: [Float], as dtype: String) -> [UInt8] {
            if dtype == "F16" {
                var halves = [UInt16](repeating: 0, count: values.count)
                values.withUnsafeBufferPointer { src in
                    halves.withUnsafeMutableBufferPointer { dst in
                        if !values.isEmpty { Float16Bits.convert(src.baseAddress!, count: values.count, into: dst.baseAddress!) }
                    }
                }
                return halves.withUnsafeBytes { Array($0) }   // little-endian host (x86-64 / arm64)
            }
            return values.withUnsafeBytes { Array($0) }
        }
        func ints(_ values: [Int]) -> [UInt8] { values.map { Int64($0).littleEndian }.withUnsafeBytes { Array($0) } }
        switch suffix {
        case "input_ids": return ints(p.inputIDs)
        case "step_logits": return floats(p.stepLogits, as: entry.dtype)
        case "step_hidden": return floats(p.stepHidden ?? [], as: entry.dtype)
        case "gate_logits": return floats(p.gateLogits, as: entry.dtype)
        case "exit_pdf": return floats(p.exitPDF, as: entry.dtype)
        case "final_logits": return floats(p.finalLogits, as: entry.dtype)
        case "weighted_logits": return floats(p.weightedLogits ?? [], as: entry.dtype)
        case "greedy_cached": return ints(p.greedyCached ?? [])
        case "greedy_uncached": return ints(p.greedyUncached ?? [])
        case "labels": return ints(p.labels ?? [])
        default:
            if let q = p.thresholds.first(where: { suffix.hasPrefix("threshold_\($0.key).") }) {
                return suffix.hasSuffix(".logits") ? floats(q.logits, as: entry.dtype) : ints(q.exitSteps)
            }
            if let k = p.exitAtStep.first(where: { suffix == "exit_at_step_\($0.step).logits" }) {
                return floats(k.logits, as: entry.dtype)
            }
            preconditionFailure("ReferenceBundleWriter: no data for \(entry.name)")
        }
    }
}

/// libzstd's streaming compressor (`ZSTD_compressStream2`), recording the content size in the frame
/// header so readers can check it against their cap before allocating.
final class ZstdStreamEncoder {
    private let stream: OpaquePointer
    private let path: String
    private var chunk: [UInt8]

    init(level: Int, contentSize: Int, path: String) throws {
        guard let stream = ZSTD_createCCtx() else {
            throw ValidationFailure.corruptCompressedData(path: path, reason: "cannot create a zstd encoder")
        }
        self.stream = stream
        self.path = path
        chunk = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        ZSTD_CCtx_setParameter(stream, ZSTD_c_compressionLevel, Int32(level))
        ZSTD_CCtx_setParameter(stream, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setPledgedSrcSize(stream, UInt64(contentSize))
    }

    deinit { ZSTD_freeCCtx(stream) }

    func compress(_ bytes: [UInt8]) throws -> [UInt8] { try run(bytes, ZSTD_e_continue) }
    func end() throws -> [UInt8] { try run([], ZSTD_e_end) }

    private func run(_ bytes: [UInt8], _ mode: ZSTD_EndDirective) throws -> [UInt8] {
        var result: [UInt8] = []
        try bytes.withUnsafeBytes { raw in
            var input = ZSTD_inBuffer(src: raw.baseAddress, size: raw.count, pos: 0)
            while true {
                let (remaining, produced): (Int, Int) = try chunk.withUnsafeMutableBytes { out in
                    var buffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                    let r = ZSTD_compressStream2(stream, &buffer, &input, mode)
                    if ZSTD_isError(r) != 0 {
                        throw ValidationFailure.corruptCompressedData(path: path, reason: String(cString: ZSTD_getErrorName(r)))
                    }
                    return (r, buffer.pos)
                }
                result.append(contentsOf: chunk[0..<produced])
                let done = mode == ZSTD_e_end ? remaining == 0 : input.pos == input.size
                if done { break }
            }
        }
        return result
    }
}
