import OuroIO
import Quantization

/// Writes a GGUF v3 file through `AtomicOutputFile`: the destination holds either the complete file
/// (after `finish()`) or nothing new.
///
/// The phases are enforced: metadata (`add`) → tensor infos (`addTensor`) → data (`writeTensorData`,
/// in tensor-info order, any chunking) → `finish()`. The header, metadata and tensor infos are kept in
/// memory and written when the first tensor bytes arrive (the header needs the final counts).
/// `general.alignment` is always written, as a u32, after the caller's metadata.
public final class GGUFWriter {
    private enum State: CustomStringConvertible {
        case metadata, tensorInfos
        case data(tensor: Int, written: Int)
        case finished, aborted

        var description: String {
            switch self {
            case .metadata: return "adding metadata"
            case .tensorInfos: return "adding tensor infos"
            case let .data(tensor, _): return "writing the data of tensor \(tensor)"
            case .finished: return "finished"
            case .aborted: return "aborted"
            }
        }
    }

    public let destination: String
    public let alignment: Int
    private let output: AtomicOutputFile
    private var state = State.metadata
    private var metadata: [(key: String, value: GGUFValue)] = []
    private var keys: Set<String> = []
    public private(set) var tensors: [GGUFTensorInfo] = []
    private var tensorNames: Set<String> = []
    private var nextOffset = 0

    public init(destination: String, alignment: Int = 64) throws {
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= Int(UInt32.max) else {
            throw GGUFError.badAlignment(path: destination, found: "\(alignment)")
        }
        self.destination = destination
        self.alignment = alignment
        output = try AtomicOutputFile(destination: destination)
    }

    /// Adds one metadata entry. `general.alignment` is the writer's own and cannot be added.
    public func add(_ key: String, _ value: GGUFValue) throws {
        guard case .metadata = state else { throw wrongState("add('\(key)')") }
        guard !key.isEmpty else { throw GGUFError.emptyName(path: destination, what: "metadata key") }
        guard key.utf8.count <= GGUFFormat.maxKeyBytes else {
            throw GGUFError.stringTooLong(path: destination, what: "metadata key", length: UInt64(key.utf8.count))
        }
        guard key != GGUFFormat.alignmentKey else {
            throw GGUFError.badAlignment(path: destination, found: "set by the caller; the writer writes it (\(alignment))")
        }
        guard !keys.contains(key) else { throw GGUFError.duplicateKey(path: destination, key: key) }
        try validate(value, key: key, depth: 0)
        keys.insert(key)
        metadata.append((key, value))
    }

    /// Declares the next tensor; its bytes must later arrive in this order. Dimensions innermost first.
    public func addTensor(name: String, dimensions: [Int], type: GGMLType) throws {
        switch state {
        case .metadata: state = .tensorInfos
        case .tensorInfos: break
        default: throw wrongState("addTensor('\(name)')")
        }
        guard !name.isEmpty else { throw GGUFError.emptyName(path: destination, what: "tensor name") }
        guard name.utf8.count <= GGUFFormat.maxTensorNameBytes else {
            throw GGUFError.tensorNameTooLong(path: destination, name: name, bytes: name.utf8.count)
        }
        guard !tensorNames.contains(name) else { throw GGUFError.duplicateTensor(path: destination, tensor: name) }
        guard dimensions.count <= GGUFFormat.maxDimensions else {
            throw GGUFError.tooManyDimensions(path: destination, tensor: name, count: UInt32(clamping: dimensions.count))
        }
        if let first = dimensions.first, first > 0, first % type.blockSize != 0 {
            throw GGUFError.notWholeBlocks(path: destination, tensor: name, type: type, rowLength: first)
        }
        guard let byteCount = GGUFTensorInfo.byteCount(dimensions: dimensions, type: type) else {
            throw GGUFError.badDimensions(path: destination, tensor: name, dimensions: dimensions.map { UInt64(bitPattern: Int64($0)) })
        }
        tensors.append(GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: nextOffset, byteCount: byteCount))
        tensorNames.insert(name)
        nextOffset = alignedUp(nextOffset + byteCount, to: alignment)
    }

    /// Appends bytes of the current tensor. A chunk may not run past the tensor's end; when a tensor
    /// is complete it is padded to the alignment and the next one becomes current.
    public func writeTensorData(_ chunk: UnsafeRawBufferPointer) throws {
        switch state {
        case .metadata, .tensorInfos:
            guard !tensors.isEmpty else { throw wrongState("writeTensorData") }
            try writeHeader()
            state = .data(tensor: 0, written: 0)
        case .data: break
        default: throw wrongState("writeTensorData")
        }
        guard case .data(let index, let written) = state else { return }
        guard index < tensors.count else {
            throw GGUFError.tooMuchTensorData(path: destination, tensor: tensors.last?.name ?? "", expected: 0, received: chunk.count)
        }
        let tensor = tensors[index]
        guard chunk.count <= tensor.byteCount - written else {
            throw GGUFError.tooMuchTensorData(path: destination, tensor: tensor.name, expected: tensor.byteCount, received: written + chunk.count)
        }
        try output.write(chunk)
        if written + chunk.count == tensor.byteCount {
            try output.writeZeros(alignedUp(tensor.byteCount, to: alignment) - tensor.byteCount)
            state = .data(tensor: index + 1, written: 0)
        } else {
            state = .data(tensor: index, written: written + chunk.count)
        }
    }

    public func writeTensorData(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeTensorData($0) }
    }

    /// Checks that every tensor was written, then commits (fsync + rename).
    public func finish() throws {
        switch state {
        case .metadata, .tensorInfos:
            if let first = tensors.first {
                throw GGUFError.incompleteTensorData(path: destination, tensor: first.name, expected: first.byteCount, received: 0)
            }
            try writeHeader()
        case let .data(index, written):
            if index < tensors.count {
                throw GGUFError.incompleteTensorData(path: destination, tensor: tensors[index].name,
                                                     expected: tensors[index].byteCount, received: written)
            }
        default: throw wrongState("finish")
        }
        try output.commit()
        state = .finished
    }

    /// Removes everything written so far; the destination is untouched.
    public func abort() {
        output.abort()
        state = .aborted
    }

    // MARK: - Encoding

    private func writeHeader() throws {
        var e = GGUFEncoder()
        e.bytes(GGUFFormat.magic)
        e.integer(GGUFFormat.version)
        e.integer(UInt64(tensors.count))
        e.integer(UInt64(metadata.count + 1))
        for (key, value) in metadata + [(GGUFFormat.alignmentKey, .uint32(UInt32(alignment)))] {
            e.string(key)
            e.integer(value.type.rawValue)
            e.value(value)
        }
        for t in tensors {
            e.string(t.name)
            e.integer(UInt32(t.dimensions.count))
            for d in t.dimensions { e.integer(UInt64(d)) }
            e.integer(t.type.rawValue)
            e.integer(UInt64(t.offset))
        }
        e.bytes([UInt8](repeating: 0, count: alignedUp(e.data.count, to: alignment) - e.data.count))
        try output.write(e.data)
    }

    private func validate(_ value: GGUFValue, key: String, depth: Int) throws {
        switch value {
        case let .string(s):
            guard s.utf8.count <= GGUFFormat.maxStringBytes else {
                throw GGUFError.stringTooLong(path: destination, what: "the value of '\(key)'", length: UInt64(s.utf8.count))
            }
        case let .array(elementType, elements):
            guard depth < GGUFFormat.maxArrayNesting else { throw GGUFError.nestingTooDeep(path: destination, key: key) }
            for element in elements {
                guard element.type == elementType else {
                    throw GGUFError.arrayTypeMismatch(path: destination, key: key, declared: elementType)
                }
                if elementType == .array || elementType == .string { try validate(element, key: key, depth: depth + 1) }
            }
        default: break
        }
    }

    private func wrongState(_ call: String) -> GGUFError {
        .wrongWriterState(path: destination, call: call, state: state.description)
    }
}

/// Little-endian serialization of GGUF header parts into a byte array.
struct GGUFEncoder {
    var data: [UInt8] = []

    mutating func bytes(_ b: [UInt8]) { data.append(contentsOf: b) }

    mutating func integer<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) }
    }

    mutating func string(_ s: String) {
        integer(UInt64(s.utf8.count))
        data.append(contentsOf: s.utf8)
    }

    mutating func value(_ v: GGUFValue) {
        switch v {
        case let .uint8(x): integer(x)
        case let .int8(x): integer(x)
        case let .uint16(x): integer(x)
        case let .int16(x): integer(x)
        case let .uint32(x): integer(x)
        case let .int32(x): integer(x)
        case let .float32(x): integer(x.bitPattern)
        case let .bool(x): integer(UInt8(x ? 1 : 0))
        case let .string(s): string(s)
        case let .array(elementType, elements):
            integer(elementType.rawValue)
            integer(UInt64(elements.count))
            for element in elements { value(element) }
        case let .uint64(x): integer(x)
        case let .int64(x): integer(x)
        case let .float64(x): integer(x.bitPattern)
        }
    }
}
