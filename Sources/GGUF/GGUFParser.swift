import OuroIO

/// The reading primitives of `GGUFFile`: a `ByteCursor` over untrusted bytes whose every read names
/// what it was reading, so a short file becomes `GGUFError.truncated` saying where.
struct GGUFParser {
    let path: String
    var cursor: ByteCursor

    init(path: String, bytes: UnsafeRawBufferPointer) {
        self.path = path
        cursor = ByteCursor(bytes)
    }

    var offset: Int { cursor.offset }
    var remaining: Int { cursor.remaining }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        do { return try cursor.read(T.self) } catch let e as ByteCursor.OutOfBounds { throw truncated(e, what()) }
    }

    mutating func bytes(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        do { return try cursor.readBytes(count) } catch let e as ByteCursor.OutOfBounds { throw truncated(e, what()) }
    }

    mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws {
        do { try cursor.skip(count) } catch let e as ByteCursor.OutOfBounds { throw truncated(e, what()) }
    }

    private func truncated(_ e: ByteCursor.OutOfBounds, _ what: String) -> GGUFError {
        .truncated(path: path, what: what, offset: e.offset, needed: e.needed)
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (no terminator). The length is checked
    /// against `cap` and the rest of the file before anything is read.
    mutating func string(_ what: @autoclosure () -> String, cap: Int) throws -> String {
        let length = try read(UInt64.self, "the length of \(what())")
        guard length <= UInt64(cap), length <= UInt64(remaining) else {
            throw GGUFError.stringTooLong(path: path, what: what(), length: length)
        }
        let raw = try bytes(Int(length), what())
        guard let text = String(validating: raw, as: UTF8.self) else { throw GGUFError.invalidUTF8(path: path, what: what()) }
        return text
    }

    /// One metadata value of type `type`; arrays recurse up to `GGUFFormat.maxArrayNesting` levels.
    mutating func value(_ type: GGUFValueType, key: String, depth: Int = 0) throws -> GGUFValue {
        let what = "the value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what))
        case .int8: return .int8(try read(Int8.self, what))
        case .uint16: return .uint16(try read(UInt16.self, what))
        case .int16: return .int16(try read(Int16.self, what))
        case .uint32: return .uint32(try read(UInt32.self, what))
        case .int32: return .int32(try read(Int32.self, what))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
        case .uint64: return .uint64(try read(UInt64.self, what))
        case .int64: return .int64(try read(Int64.self, what))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
        case .bool:
            let byte = try read(UInt8.self, what)
            guard byte <= 1 else { throw GGUFError.invalidBool(path: path, key: key, byte: byte) }
            return .bool(byte == 1)
        case .string:
            return .string(try string(what, cap: GGUFFormat.maxStringBytes))
        case .array:
            guard depth < GGUFFormat.maxArrayNesting else { throw GGUFError.nestingTooDeep(path: path, key: key) }
            let elementType = try valueType(key: key)
            let count = try read(UInt64.self, "the element count of '\(key)'")
            // Every element needs at least minimumSize bytes: reject counts the file cannot hold
            // before reserving anything.
            let (needed, overflow) = count.multipliedReportingOverflow(by: UInt64(elementType.minimumSize))
            guard !overflow, needed <= UInt64(remaining) else {
                throw GGUFError.countTooLarge(path: path, what: "array '\(key)' element count", count: count, fileSize: cursor.bytes.count)
            }
            var elements: [GGUFValue] = []
            elements.reserveCapacity(Int(count))
            for _ in 0..<Int(count) {
                elements.append(try value(elementType, key: key, depth: depth + 1))
            }
            return .array(elementType, elements)
        }
    }

    mutating func valueType(key: String) throws -> GGUFValueType {
        let raw = try read(UInt32.self, "the value type of '\(key)'")
        guard let type = GGUFValueType(rawValue: raw) else { throw GGUFError.unknownValueType(path: path, key: key, rawValue: raw) }
        return type
    }
}
