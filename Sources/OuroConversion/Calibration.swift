import Foundation
import OuroModel

/// Calibration tokens for the importance matrix and the sensitivity search: read from a file of token
/// ids, or sampled from the unquantized model itself.
public enum Calibration {
    /// Token ids separated by commas and/or whitespace; each must be < `vocab`.
    public static func load(path: String, vocab: Int) throws -> [Int] {
        guard let data = FileManager.default.contents(atPath: path) else { throw CalibrationError.unreadable(path: path) }
        let text = String(decoding: data, as: UTF8.self)
        var tokens: [Int] = []
        for field in text.split(whereSeparator: { $0 == "," || $0.isWhitespace }) {
            guard let id = Int(field), id >= 0, id < vocab else {
                throw CalibrationError.badToken(path: path, field: String(field.prefix(20)), vocab: vocab)
            }
            tokens.append(id)
        }
        guard !tokens.isEmpty else { throw CalibrationError.empty(path: path) }
        return tokens
    }

    /// `sequences` texts of `length` tokens each, sampled at temperature 1 from bos (token 0 when the
    /// config names none), seeds `seed`, `seed + 1`... The bos token starts each sequence.
    public static func sample(weights: OuroWeights, sequences: Int, length: Int, seed: UInt64,
                              temperature: Float = 1) throws -> [Int] {
        let runner = OuroRunner(weights: weights)
        let bos = weights.config.bosTokenID ?? 0
        var tokens: [Int] = []
        for s in 0..<max(sequences, 0) {
            let sampler = Sampler(temperature: temperature, seed: seed &+ UInt64(s))
            tokens.append(bos)
            tokens += try runner.sample(prompt: [bos], maxNewTokens: max(length - 1, 0), sampler: sampler)
        }
        return tokens
    }
}

/// Why calibration tokens could not be read. One line naming the file.
public enum CalibrationError: Error, Equatable, CustomStringConvertible {
    case unreadable(path: String)
    case badToken(path: String, field: String, vocab: Int)
    case empty(path: String)

    public var description: String {
        switch self {
        case let .unreadable(path): return "\(path): cannot read the calibration file"
        case let .badToken(path, field, vocab): return "\(path): '\(field)' is not a token id below \(vocab)"
        case let .empty(path): return "\(path): no token ids in the calibration file"
        }
    }
}
