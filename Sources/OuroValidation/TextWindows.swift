import Foundation
import OuroModel

/// Cuts a token stream into perplexity windows the way llama-perplexity does: consecutive,
/// non-overlapping windows of `context` tokens from the start, at most `chunks` of them; within a
/// window only the second half is scored (the first half is context), each position predicting
/// the next token of the window. Unscored positions get label -100.
public enum TextWindows {
    public static func cut(_ tokens: [Int], context: Int, chunks: Int?) -> [ReferenceInput] {
        guard context >= 2 else { return [] }
        let available = tokens.count / context
        let count = min(chunks ?? available, available)
        let first = context / 2
        return (0..<count).map { c in
            let window = Array(tokens[c * context..<(c + 1) * context])
            // llama-perplexity scores positions first ..< context-1 (the last one's successor is
            // the next window's first token, which it leaves out).
            let labels = (0..<context).map { j in j >= first && j < context - 1 ? window[j + 1] : -100 }
            return ReferenceInput(tokens: window, labels: labels)
        }
    }
}

/// Size and density of a model's stored weights, for the comparison table.
public enum ModelFootprint {
    /// Bytes on disk: the GGUF file, or the safetensors files of a checkpoint folder.
    public static func fileBytes(_ path: String) -> Int? {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return nil }
        if !isDirectory.boolValue {
            return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasSuffix(".safetensors") }.reduce(0) { sum, name in
            sum + ((try? FileManager.default.attributesOfItem(atPath: path + "/" + name)[.size] as? Int) ?? 0)
        }
    }

    /// Stored tensor bits per parameter.
    public static func bitsPerWeight(_ weights: OuroWeights) -> Double {
        var bytes = 0, parameters = 0
        for tensor in TensorNaming.expectedTensors(weights.config) {
            guard let stored = weights.tensor(tensor.ggufName) else { continue }
            bytes += stored.type.rowByteCount(stored.columns).map { $0 * stored.rows } ?? stored.bytes.count
            parameters += tensor.elementCount
        }
        return parameters == 0 ? 0 : Double(bytes * 8) / Double(parameters)
    }
}
