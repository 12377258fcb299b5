import CZstd
import OuroIO
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams zstd-compressed bytes into memory with libzstd's `ZSTD_decompressStream`.
/// Reference bundles are shipped as `.safetensors.zst`; the decompressed bytes are parsed in memory.
public enum ZstdDecoder {
    /// Default cap on the decompressed size: a bundle for a 1.4B model with a few long prompts stays far below.
    public static let defaultLimit: UInt64 = 8 << 30

    // zstd.h defines these as `(0ULL - 1)` / `(0ULL - 2)`, which do not import into Swift.
    private static let contentSizeUnknown = UInt64.max
    private static let contentSizeError = UInt64.max - 1

    /// Decompresses every frame in `input` into memory. `path` only names the source in errors.
    public static func decompress(_ input: UnsafeRawBufferPointer, path: String,
                                  limit: UInt64 = defaultLimit) throws -> [UInt8] {
        var output: [UInt8] = []
        try decompress(input, path: path, limit: limit, reserve: { output.reserveCapacity($0) }) { chunk in
            output.append(contentsOf: chunk)
        }
        return output
    }

    /// Decompresses into a new file under the temporary folder, written as it streams (memory stays
    /// at one chunk); returns its path. The caller maps it and unlinks it.
    public static func decompressToTemporaryFile(_ input: UnsafeRawBufferPointer, path: String,
                                                 limit: UInt64 = defaultLimit) throws -> String {
        var template = Array((temporaryFolder() + "/ouro-bundle-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw FileIOError.cannotCreate(path: temporaryFolder(), errno: errno) }
        let temporary = String(cString: template)
        defer { close(fd) }
        do {
            try decompress(input, path: path, limit: limit, reserve: { _ in }) { chunk in
                var done = 0
                while done < chunk.count {
                    let n = write(fd, chunk.baseAddress! + done, chunk.count - done)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { throw FileIOError.writeFailed(path: temporary, errno: n < 0 ? errno : ENOSPC) }
                    done += n
                }
            }
        } catch {
            unlink(temporary)
            throw error
        }
        return temporary
    }

    private static func temporaryFolder() -> String {
        if let folder = getenv("TMPDIR").map({ String(cString: $0) }), !folder.isEmpty { return folder }
        return "/tmp"
    }

    private static func decompress(_ input: UnsafeRawBufferPointer, path: String, limit: UInt64,
                                   reserve: (Int) -> Void,
                                   sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let inputBase = input.baseAddress, input.count > 0 else {
            throw ValidationFailure.truncatedCompressedData(path: path)
        }
        let declared = ZSTD_getFrameContentSize(inputBase, input.count)
        if declared == contentSizeError {
            // Either not zstd at all or fewer bytes than a frame header.
            throw input.count < 18 && hasZstdMagic(input)
                ? ValidationFailure.truncatedCompressedData(path: path)
                : ValidationFailure.corruptCompressedData(path: path, reason: "no zstd frame header")
        }
        if declared != contentSizeUnknown && declared > limit {
            throw ValidationFailure.decompressedTooLarge(path: path, size: declared, limit: limit)
        }

        guard let stream = ZSTD_createDStream() else {
            throw ValidationFailure.corruptCompressedData(path: path, reason: "cannot create a zstd decoder")
        }
        defer { ZSTD_freeDStream(stream) }
        ZSTD_initDStream(stream)

        var written: UInt64 = 0
        // The declared size comes from the file: reserve at most a plausible multiple of the input and grow beyond.
        if declared != contentSizeUnknown {
            let plausible = UInt64(input.count).multipliedReportingOverflow(by: 16)
            let capacity = plausible.overflow ? declared : min(declared, max(plausible.partialValue, 1 << 20))
            reserve(Int(capacity))
        }
        let chunkSize = ZSTD_DStreamOutSize()
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var inBuffer = ZSTD_inBuffer(src: inputBase, size: input.count, pos: 0)
        var lastResult = 0
        repeat {
            let produced: Int = try chunk.withUnsafeMutableBytes { raw in
                var outBuffer = ZSTD_outBuffer(dst: raw.baseAddress, size: raw.count, pos: 0)
                let result = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
                if ZSTD_isError(result) != 0 {
                    throw ValidationFailure.corruptCompressedData(path: path, reason: String(cString: ZSTD_getErrorName(result)))
                }
                lastResult = result
                return outBuffer.pos
            }
            if written + UInt64(produced) > limit {
                throw ValidationFailure.decompressedTooLarge(path: path, size: written + UInt64(produced), limit: limit)
            }
            try chunk.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            written += UInt64(produced)
            // Stop when the input is used up and the decoder had no more room to flush.
            if inBuffer.pos == inBuffer.size && produced < chunkSize { break }
        } while true
        // A non-zero hint means the current frame still expects input.
        guard lastResult == 0 else { throw ValidationFailure.truncatedCompressedData(path: path) }
        if declared != contentSizeUnknown && written < declared {
            throw ValidationFailure.truncatedCompressedData(path: path)
        }
    }

    static func hasZstdMagic(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 4 && bytes[0] == 0x28 && bytes[1] == 0xB5 && bytes[2] == 0x2F && bytes[3] == 0xFD
    }
}
