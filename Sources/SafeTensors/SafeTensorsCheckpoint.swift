#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import OuroIO

/// The weights of a Hugging Face checkpoint folder: `model.safetensors`, or the shards listed by
/// `model.safetensors.index.json` (its `weight_map`: tensor name -> shard file name). Each shard is
/// opened (and fully validated) once; every mapped tensor must be in its shard, and no tensor may be
/// stored in two shards.
public final class SafeTensorsCheckpoint: @unchecked Sendable {
    public static let indexFileName = "model.safetensors.index.json"
    public static let singleFileName = "model.safetensors"

    public let folder: String
    /// One per weights file, in file-name order.
    public let files: [SafeTensorsFile]
    /// Sorted.
    public let tensorNames: [String]
    private let locations: [String: (file: Int, info: SafeTensorInfo)]

    public init(folder: String) throws {
        self.folder = folder
        guard Self.fileType(folder) == S_IFDIR else { throw SafeTensorsError.notAFolder(path: folder) }
        let indexPath = Self.join(folder, Self.indexFileName)
        let singlePath = Self.join(folder, Self.singleFileName)
        var locations: [String: (file: Int, info: SafeTensorInfo)] = [:]
        if Self.fileType(indexPath) != nil {
            let weightMap = try Self.readWeightMap(indexPath)
            // Shard name -> one tensor mapped to it (for the missing-shard message).
            var shards: [String: String] = [:]
            for (tensor, shard) in weightMap where shards[shard] == nil { shards[shard] = tensor }
            var files: [SafeTensorsFile] = []
            var fileByShard: [String: SafeTensorsFile] = [:]
            for (shard, someTensor) in shards.sorted(by: { $0.key < $1.key }) {
                let shardPath = Self.join(folder, shard)
                guard Self.fileType(shardPath) != nil else {
                    throw SafeTensorsError.missingShard(path: shardPath, tensor: someTensor)
                }
                let file = try SafeTensorsFile(path: shardPath)
                files.append(file)
                fileByShard[shard] = file
            }
            for (tensor, shard) in weightMap.sorted(by: { $0.key < $1.key }) {
                guard let file = fileByShard[shard], file.info(tensor) != nil else {
                    throw SafeTensorsError.tensorMissingFromShard(path: Self.join(folder, shard), tensor: tensor)
                }
            }
            // Tensors a shard holds beyond the map are kept too (transformers loads them), but a
            // name stored in two shards is ambiguous.
            for (index, file) in files.enumerated() {
                for info in file.tensors {
                    if let earlier = locations[info.name] {
                        throw SafeTensorsError.tensorInTwoShards(tensor: info.name, first: files[earlier.file].path, second: file.path)
                    }
                    locations[info.name] = (index, info)
                }
            }
            self.files = files
        } else if Self.fileType(singlePath) != nil {
            let file = try SafeTensorsFile(path: singlePath)
            for info in file.tensors { locations[info.name] = (0, info) }
            self.files = [file]
        } else {
            throw SafeTensorsError.noWeights(folder: folder)
        }
        self.locations = locations
        self.tensorNames = locations.keys.sorted()
    }

    public func tensor(_ name: String) -> (file: SafeTensorsFile, info: SafeTensorInfo)? {
        guard let location = locations[name] else { return nil }
        return (files[location.file], location.info)
    }

    /// Reads `weight_map` as tensor -> shard file name (a bare name inside the folder).
    private static func readWeightMap(_ indexPath: String) throws -> [String: String] {
        let file = try MappedFile(path: indexPath)
        guard UInt64(file.count) <= SafeTensorsHeader.maxHeaderLength else {
            throw SafeTensorsError.badIndex(path: indexPath, reason: "file is larger than 100000000 bytes")
        }
        return try parseWeightMap(file.bytes, indexPath: indexPath)
    }

    /// The index's bytes -> `weight_map`; separate from the file read so it can be fuzzed in memory.
    static func parseWeightMap(_ bytes: UnsafeRawBufferPointer, indexPath: String) throws -> [String: String] {
        guard isValidUTF8(bytes) else {
            throw SafeTensorsError.indexNotJSON(path: indexPath, reason: "not valid UTF-8")
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes)
        } catch let failure as JSONParser.Failure {
            if case let .duplicateKey(key, depth) = failure, depth == 1 {
                throw SafeTensorsError.badIndex(path: indexPath, reason: "tensor \(quotedForMessage(key)) appears twice in weight_map")
            }
            throw SafeTensorsError.indexNotJSON(path: indexPath, reason: failure.reason)
        }
        guard case .object = root else {
            throw SafeTensorsError.badIndex(path: indexPath, reason: "top level is \(root.kindName); expected an object with a weight_map")
        }
        guard case let .object(members)? = root["weight_map"] else {
            let found = root["weight_map"].map { "is \($0.kindName)" } ?? "is missing"
            throw SafeTensorsError.badIndex(path: indexPath, reason: "weight_map \(found); expected an object of tensor -> shard file")
        }
        guard !members.isEmpty else { throw SafeTensorsError.badIndex(path: indexPath, reason: "weight_map is empty") }
        var map: [String: String] = [:]
        for (tensor, value) in members {
            guard case let .string(shard) = value else {
                throw SafeTensorsError.badIndex(path: indexPath, reason: "weight_map entry \(quotedForMessage(tensor)) is \(value.kindName); expected a shard file name")
            }
            // Shards live in the folder itself; refuse names that would reach elsewhere.
            guard !shard.isEmpty, !shard.contains("/"), shard != ".", shard != ".." else {
                throw SafeTensorsError.badIndex(path: indexPath, reason: "weight_map entry \(quotedForMessage(tensor)) names shard \(quotedForMessage(shard)), not a file in this folder")
            }
            map[tensor] = shard
        }
        return map
    }

    private static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    /// `S_IFMT` bits of the path (following symlinks), or nil when it does not exist.
    private static func fileType(_ path: String) -> mode_t? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }
}
