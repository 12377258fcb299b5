import OuroIO

extension GGUFFile {
    /// The same checks over bytes held in memory (tests, fuzzing); `path` only names the data in
    /// errors. The bytes are copied once into a read-only anonymous mapping.
    public convenience init(path: String, bytes: [UInt8]) throws {
        let file = try bytes.withUnsafeBytes { try MappedFile(path: path, copying: $0) }
        try self.init(file: file)
    }
}
