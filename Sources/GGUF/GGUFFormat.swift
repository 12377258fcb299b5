/// Constants of the GGUF container shared by the reader and the writer (from ggml's gguf.h / gguf.cpp).
enum GGUFFormat {
    /// "GGUF" as the first four bytes.
    static let magic: [UInt8] = Array("GGUF".utf8)
    static let version: UInt32 = 3
    /// Versions the reader accepts: v2 has the same layout as v3 (v3 only added big-endian files,
    /// which announce themselves through a byte-swapped version and are rejected).
    static let readableVersions: ClosedRange<UInt32> = 2...3
    /// The data section alignment when `general.alignment` is absent.
    static let defaultAlignment = 32
    static let alignmentKey = "general.alignment"
    /// ggml's GGML_MAX_NAME is 64 including the terminating NUL.
    static let maxTensorNameBytes = 63
    /// ggml's GGML_MAX_DIMS.
    static let maxDimensions = 4
    /// Caps on untrusted lengths (on top of "fits in the file"): keys, and any string value
    /// (chat templates are the longest in practice, a few KB).
    static let maxKeyBytes = 65_535
    static let maxStringBytes = 1 << 26
    /// Arrays of arrays are allowed, but not deeper than this.
    static let maxArrayNesting = 8
    /// Fixed header: magic, version, u64 tensor count, u64 metadata count.
    static let headerSize = 4 + 4 + 8 + 8
    /// Fewest bytes of one metadata entry: key length (u64), 1 key byte, value type (u32), 1-byte value.
    static let minimumKeyValueSize = 8 + 1 + 4 + 1
    /// Fewest bytes of one tensor info: name length (u64), 1 name byte, n_dims (u32), type (u32), offset (u64).
    static let minimumTensorInfoSize = 8 + 1 + 4 + 4 + 8
}
