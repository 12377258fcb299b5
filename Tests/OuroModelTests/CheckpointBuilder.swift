import Foundation
import SafeTensors

/// Writes a modified copy of a fixture checkpoint (single safetensors file) into a temporary folder.
struct CheckpointBuilder {
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: [UInt8]
    }

    var config: String
    var tensors: [Tensor]

    init(fixture: String) throws {
        let folder = Fixtures.folder(fixture)
        config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
        let file = try SafeTensorsFile(path: folder + "/model.safetensors")
        tensors = file.tensors.map { Tensor(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, bytes: Array(file.data($0))) }
    }

    mutating func update(_ name: String, _ change: (inout Tensor) -> Void) {
        if let i = tensors.firstIndex(where: { $0.name == name }) { change(&tensors[i]) }
    }

    mutating func remove(_ name: String) { tensors.removeAll { $0.name == name } }

    /// Writes config.json and model.safetensors; returns the folder.
    func write() throws -> String {
        let folder = try Fixtures.temporaryFolder()
        try config.write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        var header: [String] = []
        var offset = 0
        for t in tensors {
            header.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
        }
        var json = Array(("{" + header.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var data = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json
        for t in tensors { data += t.bytes }
        try Data(data).write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
        return folder
    }
}
