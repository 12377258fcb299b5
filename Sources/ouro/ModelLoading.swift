import Foundation
import OuroIO
import OuroModel

/// A model argument is either a GGUF file or a checkpoint folder (run straight from safetensors).
/// Where GGUF weights live: OURO_WEIGHTS (huge-pages or mapped; checked at start), else huge pages.
func residencyFromEnvironment() -> MappedFile.Residency {
    ProcessInfo.processInfo.environment["OURO_WEIGHTS"] == "mapped" ? .mapped : .hugePages
}

/// A one-line complaint about OURO_WEIGHTS, or nil when it is unset or valid.
func weightsEnvironmentProblem() -> String? {
    guard let value = ProcessInfo.processInfo.environment["OURO_WEIGHTS"], !["huge-pages", "mapped"].contains(value) else { return nil }
    return "OURO_WEIGHTS is huge-pages or mapped, not '\(value)'"
}

func loadWeights(_ path: String, residency: MappedFile.Residency = residencyFromEnvironment()) throws -> OuroWeights {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        return try OuroWeights.load(checkpoint: path)
    }
    return try OuroWeights.load(gguf: path, residency: residency)
}
