// GGUFFile(path:bytes:), every accessor, then what the runtime does with an accepted file:
// OuroConfiguration(gguf:) and OuroWeights.load (tensor presence, shapes, types).
import GGUF
@testable import OuroModel

private let name = "fuzz.gguf"

func fuzzOne(_ bytes: [UInt8]) {
    let file: GGUFFile
    do {
        file = try GGUFFile(path: name, bytes: bytes)
    } catch let error as GGUFError {
        checkRejection(error, naming: name)
        return
    } catch {
        reject("unexpected error type \(type(of: error)): \(error)")
    }
    for (key, value) in file.metadata {
        // Not `==`: a float value may be NaN.
        guard file.value(key) != nil else { reject("metadata \(key) not found by key") }
        _ = (value.int, value.double, value.string)
    }
    for tensor in file.tensors {
        guard file.tensor(tensor.name) != nil else { reject("tensor \(tensor.name) not found by name") }
        let raw = file.data(tensor)
        guard raw.count == tensor.byteCount else { reject("data view has the wrong size") }
        _ = touch(raw)
    }
    do {
        let weights = try OuroWeights.load(ggufFile: file)
        guard weights.layers.count == weights.config.layerCount else { reject("layer count") }
    } catch let error as ModelError {
        checkRejection(error, naming: name)
    } catch let error as GGUFError {
        // Loading checks the header checksums (GGUFFile.checkHeaderIntegrity), which the parser does not.
        checkRejection(error, naming: name)
    } catch {
        reject("unexpected error type \(type(of: error)): \(error)")
    }
}
