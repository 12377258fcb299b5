import Foundation
import SafeTensors

/// Writes a modified copy of a fixture checkpoint (single safetensors file) into a temporary folder.
public struct CheckpointBuilder {
    public struct Tensor {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var bytes: [UInt8]

        public init(name: String, dtype: String, shape: [Int], bytes: [UInt8]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
    }

    public var config: String
    public var tensors: [Tensor]

    public init(fixture: String) throws {
        let folder = Fixtures.folder(fixture)
        config = try String(contentsOfFile: folder + "/config.json", encoding: .utf8)
        let file = try SafeTensorsFile(path: folder + "/model.safetensors")
        tensors = file.tensors.map { Tensor(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, bytes: Array(file.data($0))) }
    }

    public mutating func update(_ name: String, _ change: (inout Tensor) -> Void) {
        if let i = tensors.firstIndex(where: { $0.name == name }) { change(&tensors[i]) }
    }

    public mutating func remove(_ name: String) { tensors.removeAll { $0.name == name } }

    /// Writes config.json and model.safetensors; returns the folder.
    public func write() throws -> String {
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
