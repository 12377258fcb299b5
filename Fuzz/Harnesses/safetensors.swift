// SafeTensorsFile(path:bytes:): the whole header parse, then every accessor on what it accepted.
@testable import SafeTensors

private let name = "fuzz.safetensors"

func fuzzOne(_ bytes: [UInt8]) {
    let file: SafeTensorsFile
    do {
        file = try SafeTensorsFile(path: name, bytes: bytes)
    } catch let error as SafeTensorsError {
        checkRejection(error, naming: name)
        return
    } catch {
        reject("unexpected error type \(type(of: error)): \(error)")
    }
    var previousEnd = 0
    for info in file.tensors {
        guard file.info(info.name) != nil else { reject("tensor \(info.name) not found by name") }
        guard info.byteRange.lowerBound >= previousEnd, info.byteRange.upperBound <= bytes.count else {
            reject("tensor \(info.name) range \(info.byteRange) overlaps or leaves the file")
        }
        previousEnd = info.byteRange.upperBound
        let (expected, overflow) = info.elementCount.multipliedReportingOverflow(by: info.dtype.size)
        guard !overflow, expected == info.byteRange.count else { reject("tensor \(info.name) size disagrees with its shape") }
        let raw = file.data(info)
        guard raw.count == info.byteRange.count else { reject("data view has the wrong size") }
        _ = touch(raw)
        do {
            switch info.dtype {
            case .f32, .f16, .bf16:
                guard try file.floats(info.name).count == info.elementCount else { reject("floats count") }
            case .i64, .i32:
                guard try file.int64s(info.name).count == info.elementCount else { reject("int64s count") }
            default:
                do { _ = try file.floats(info.name); reject("floats accepted \(info.dtype)") } catch let error as SafeTensorsError {
                    checkRejection(error, naming: name)
                }
            }
        } catch {
            reject("accessor failed on an accepted tensor: \(error)")
        }
    }
    for (key, value) in file.metadata { _ = key.utf8.count + value.utf8.count }
}
