import ArgumentParser
import Foundation
import GGUF
import SafeTensors

extension OuroCommand {
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a model file's metadata and tensor table.",
            discussion: "Reads a GGUF file, a .safetensors file or a checkpoint folder without loading tensor data.")

        @Argument(help: "A .gguf file, a .safetensors file or a checkpoint folder.")
        var path: String

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() throws {
            let listing = try reportingBadInput { try Listing(path: path) }
            if json {
                print(try jsonString(listing))
                return
            }
            print("\(listing.path) (\(listing.format))")
            if !listing.metadata.isEmpty {
                let width = listing.metadata.map(\.key.count).max() ?? 0
                for item in listing.metadata {
                    print("  \(item.key.padding(toLength: width, withPad: " ", startingAt: 0))  \(item.value)")
                }
            }
            let nameWidth = max(4, listing.tensors.map(\.name.count).max() ?? 0)
            print("")
            print("  \("name".padding(toLength: nameWidth, withPad: " ", startingAt: 0))  type  shape                bytes")
            for t in listing.tensors {
                let shape = t.shape.map(String.init).joined(separator: " x ")
                print("  \(t.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0))  \(t.type.padding(toLength: 4, withPad: " ", startingAt: 0))  \(shape.padding(toLength: 19, withPad: " ", startingAt: 0))  \(t.bytes)")
            }
            let total = listing.tensors.reduce(0) { $0 + $1.bytes }
            print("\n  \(listing.tensors.count) tensors, \(formatBytes(total)) of tensor data")
        }
    }
}

/// What `inspect` prints, in one shape for every input format. Shapes are outermost-first everywhere
/// (GGUF stores dims innermost-first; they are reversed here so both formats read the same).
private struct Listing: Encodable {
    struct Item: Encodable { let key: String; let value: String }
    struct Tensor: Encodable { let name: String; let type: String; let shape: [Int]; let bytes: Int }

    let path: String
    let format: String
    var metadata: [Item] = []
    var tensors: [Tensor] = []

    init(path: String) throws {
        self.path = path
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            format = "checkpoint folder"
            let checkpoint = try SafeTensorsCheckpoint(folder: path)
            for name in checkpoint.tensorNames {
                guard let (_, info) = checkpoint.tensor(name) else { continue }
                tensors.append(Tensor(name: name, type: info.dtype.rawValue, shape: info.shape, bytes: info.byteRange.count))
            }
        } else if path.hasSuffix(".safetensors") {
            format = "safetensors"
            let file = try SafeTensorsFile(path: path)
            metadata = file.metadata.sorted { $0.key < $1.key }.map { Item(key: $0.key, value: $0.value) }
            tensors = file.tensors.map { Tensor(name: $0.name, type: $0.dtype.rawValue, shape: $0.shape, bytes: $0.byteRange.count) }
        } else {
            let file = try GGUFFile(path: path)
            format = "GGUF v\(file.version)"
            metadata = file.metadata.map { Item(key: $0.key, value: Self.describe($0.value)) }
            tensors = file.tensors.map { Tensor(name: $0.name, type: $0.type.name, shape: $0.dimensions.reversed(), bytes: $0.byteCount) }
        }
    }

    static func describe(_ value: GGUFValue) -> String {
        switch value {
        case let .string(s):
            return s.count > 60 ? "\"\(s.prefix(57))...\" (\(s.utf8.count) bytes)" : "\"\(s)\""
        case let .array(_, items):
            return "[\(items.count) items]"
        case let .bool(b): return String(b)
        case let .float32(f): return String(f)
        case let .float64(f): return String(f)
        default: return value.int.map(String.init) ?? "\(value)"
        }
    }
}
