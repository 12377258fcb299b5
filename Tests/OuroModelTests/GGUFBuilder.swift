import Foundation
import GGUF
import Quantization
import SafeTensors
@testable import OuroModel

/// Writes a GGUF file from a fixture checkpoint with GGUFWriter (standing in for the converter):
/// norms and exit gate as f32, the matrices as `matrixType`.
enum GGUFBuilder {
    static func write(fixture: String, matrixType: GGMLType, to path: String,
                      metadata: (inout [(String, GGUFValue)]) -> Void = { _ in },
                      tensors edit: (inout [(ExpectedTensor, [Float])]) -> Void = { _ in }) throws {
        let folder = Fixtures.folder(fixture)
        let config = try OuroConfiguration.load(folder: folder)
        let checkpoint = try SafeTensorsCheckpoint(folder: folder)
        var entries: [(ExpectedTensor, [Float])] = try TensorNaming.expectedTensors(config).map { tensor in
            let (file, _) = checkpoint.tensor(tensor.hfName)!
            return (tensor, try file.floats(tensor.hfName))
        }
        edit(&entries)
        var keys = config.ggufMetadata()
        metadata(&keys)
        let writer = try GGUFWriter(destination: path)
        for (key, value) in keys { try writer.add(key, value) }
        for (tensor, _) in entries {
            try writer.addTensor(name: tensor.ggufName, dimensions: tensor.ggufDimensions,
                                 type: tensor.isQuantizable ? matrixType : .f32)
        }
        for (tensor, values) in entries {
            try writer.writeTensorData(try quantize(tensor.isQuantizable ? matrixType : .f32, values))
        }
        try writer.finish()
    }
}
