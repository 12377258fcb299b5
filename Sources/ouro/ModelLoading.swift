import Foundation
import OuroIO
import OuroModel

/// A model argument is either a GGUF file or a checkpoint folder (run straight from safetensors).
/// Where GGUF weights live when OURO_WEIGHTS says so (huge-pages or mapped; checked at start);
/// nil when it is unset: then `defaultResidency(for:)` decides per file.
func residencyFromEnvironment() -> MappedFile.Residency? {
    switch ProcessInfo.processInfo.environment["OURO_WEIGHTS"] {
    case "mapped": return .mapped
    case "huge-pages": return .hugePages
    default: return nil
    }
}

/// A one-line complaint about OURO_WEIGHTS, or nil when it is unset or valid.
func weightsEnvironmentProblem() -> String? {
    guard let value = ProcessInfo.processInfo.environment["OURO_WEIGHTS"], !["huge-pages", "mapped"].contains(value) else { return nil }
    return "OURO_WEIGHTS is huge-pages or mapped, not '\(value)'"
}

/// The default residency of a GGUF file: a huge-page copy when it takes at most half of the memory
/// the kernel reports available (the copy is anonymous memory the kernel cannot drop under pressure,
/// unlike mapped file pages), else the mapping. Not Linux: always mapped.
func defaultResidency(for path: String) -> MappedFile.Residency {
    #if os(Linux)
    guard let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? Int,
          let available = availableMemoryBytes() else { return .mapped }
    return size <= available / 2 ? .hugePages : .mapped
    #else
    return .mapped
    #endif
}

/// MemAvailable from /proc/meminfo, in bytes (nil when it cannot be read).
private func availableMemoryBytes() -> Int? {
    guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
          let kib = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else { return nil }
    return kib * 1024
}

func loadWeights(_ path: String, residency chosen: MappedFile.Residency? = residencyFromEnvironment()) throws -> OuroWeights {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        return try OuroWeights.load(checkpoint: path)
    }
    return try OuroWeights.load(gguf: path, residency: chosen ?? defaultResidency(for: path))
}
