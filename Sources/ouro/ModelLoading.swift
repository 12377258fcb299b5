import Foundation
import OuroIO
import OuroModel

/// A model argument is either a GGUF file or a checkpoint folder (run straight from safetensors).
func loadWeights(_ path: String, residency: MappedFile.Residency = .hugePages) throws -> OuroWeights {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        return try OuroWeights.load(checkpoint: path)
    }
    return try OuroWeights.load(gguf: path, residency: residency)
}
