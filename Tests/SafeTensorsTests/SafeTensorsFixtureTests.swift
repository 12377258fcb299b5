import Foundation
import XCTest
@testable import SafeTensors

final class SafeTensorsFixtureTests: XCTestCase {
    func testTinyAHasEveryTensorOfReferenceJSONWithItsDTypeAndShape() throws {
        let file = try SafeTensorsFile(path: Fixtures.path("ouro-tiny-a/model.safetensors"))
        let reference = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("ouro-tiny-a/reference.json")))) as! [String: Any]
        let expected = (reference["weights"] as! [String: Any])["tensors"] as! [String: [String: Any]]

        XCTAssertEqual(file.tensors.count, 27)
        XCTAssertEqual(Set(file.tensors.map(\.name)), Set(expected.keys))
        for (name, entry) in expected {
            let info = try XCTUnwrap(file.info(name), name)
            XCTAssertEqual(info.dtype, .bf16, name)
            XCTAssertEqual(info.dtype.rawValue, entry["dtype"] as? String, name)
            XCTAssertEqual(info.shape, entry["shape"] as? [Int], name)
            XCTAssertEqual(info.byteCount, info.elementCount * 2, name)
        }
        XCTAssertEqual(file.metadata, ["format": "pt"])
    }

    func testTensorsAreListedInDataOrderAndTileTheDataSection() throws {
        let path = Fixtures.path("ouro-tiny-a/model.safetensors")
        let file = try SafeTensorsFile(path: path)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        // 2760 = the header length stored in the file's first 8 bytes.
        XCTAssertEqual(file.tensors.first?.byteRange.lowerBound, 8 + 2760)
        for (a, b) in zip(file.tensors, file.tensors.dropFirst()) {
            XCTAssertEqual(a.byteRange.upperBound, b.byteRange.lowerBound)
        }
        XCTAssertEqual(file.tensors.last?.byteRange.upperBound, size)
        XCTAssertEqual(file.tensors.first?.name, "lm_head.weight")
    }

    func testDecodesBF16ValuesLikeAnIndependentNumpyDecode() throws {
        // Expected values from numpy over the raw bytes (u2 << 16 viewed as f4):
        // python3 -c "...np.frombuffer(raw, '<u2').astype('<u4') << 16).view('<f4')"
        let file = try SafeTensorsFile(path: Fixtures.path("ouro-tiny-a/model.safetensors"))
        let norm = try file.floats("model.norm.weight")
        XCTAssertEqual(norm.count, 64)
        XCTAssertEqual(Array(norm.prefix(3)), [1.0234375, 0.9375, 0.8828125])
        let head = try file.floats("lm_head.weight")
        XCTAssertEqual(head.count, 384 * 64)
        XCTAssertEqual(head[0], -0.478515625)
        XCTAssertEqual(head[383 * 64 + 63], -0.138671875)
        XCTAssertEqual(try file.floats("model.early_exit_gate.bias"), [-0.341796875])
    }

    func testReadsReferenceBundleInt64IdsAndFloat32Logits() throws {
        let file = try SafeTensorsFile(path: Fixtures.path("ouro-tiny-a/reference.safetensors"))
        // Same prompt as reference.json's per_prompt[0] (T = 17); values decoded with numpy '<i8'.
        let ids = try file.int64s("p0.input_ids")
        XCTAssertEqual(ids.count, 17)
        XCTAssertEqual(ids, [337, 209, 273, 198, 281, 330, 204, 263, 312, 29, 243, 279, 226, 320, 371, 143, 54])
        XCTAssertEqual(file.info("p0.input_ids")?.dtype, .i64)
        // numpy '<f4' of p0.final_logits, shape [17, 384]: [0, 0] and [16, 383].
        let logits = try file.floats("p0.final_logits")
        XCTAssertEqual(file.info("p0.final_logits")?.shape, [17, 384])
        XCTAssertEqual(logits.count, 17 * 384)
        XCTAssertEqual(logits[0], 1.5437339544296265)
        XCTAssertEqual(logits[16 * 384 + 383], 2.5636866092681885)
    }

    func testInMemoryBytesGiveTheSameTensorsAsTheMemoryMap() throws {
        let path = Fixtures.path("ouro-tiny-a/reference.safetensors")
        let mapped = try SafeTensorsFile(path: path)
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let inMemory = try SafeTensorsFile(path: path, bytes: bytes)
        XCTAssertEqual(inMemory.tensors, mapped.tensors)
        XCTAssertEqual(inMemory.metadata, mapped.metadata)
        for info in mapped.tensors {
            XCTAssertTrue(mapped.data(info).elementsEqual(inMemory.data(info)), info.name)
            XCTAssertTrue(mapped.data(info).elementsEqual(bytes[info.byteRange]), info.name)
        }
        XCTAssertEqual(try inMemory.floats("p1.step_logits"), try mapped.floats("p1.step_logits"))
        XCTAssertEqual(try inMemory.int64s("p1.input_ids"), try mapped.int64s("p1.input_ids"))
    }

    func testConvertsF16AndWidensI32() throws {
        // F16 bit patterns: 1.0, -2.0, smallest subnormal 2^-24, +inf, 65504 (largest finite).
        let halves: [UInt16] = [0x3C00, 0xC000, 0x0001, 0x7C00, 0x7BFF]
        let ints: [Int32] = [-1, 7, Int32.min]
        var data: [UInt8] = []
        for h in halves { data += withUnsafeBytes(of: h.littleEndian, Array.init) }
        for i in ints { data += withUnsafeBytes(of: i.littleEndian, Array.init) }
        let header = #"{"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},"i":{"dtype":"I32","shape":[3],"data_offsets":[10,22]}}"#
        let file = try SafeTensorsFile(path: "mem", bytes: safetensorsBytes(header: header, data: data))
        XCTAssertEqual(try file.floats("h"), [1.0, -2.0, Float(sign: .plus, exponent: -24, significand: 1), .infinity, 65504])
        XCTAssertEqual(try file.int64s("i"), [-1, 7, Int64(Int32.min)])
    }

    func testF16ConversionMatchesSwiftFloat16ForEveryBitPattern() {
        #if !((os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64))
        for bits in 0...UInt16.max {
            let ours = HalfFloatConversion.f16ToFloat(bits)
            let swift = Float(Float16(bitPattern: bits))
            if swift.isNaN {
                XCTAssertTrue(ours.isNaN, "\(bits)")
            } else {
                XCTAssertEqual(ours.bitPattern, swift.bitPattern, "\(bits)")
            }
        }
        #endif
    }

    func testAcceptsScalarsEmptyTensorsAndSpacePaddedHeader() throws {
        // huggingface/safetensors pads the header with spaces to a multiple of 8.
        let header = #"{"__metadata__":{"k":"v"},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"BF16","shape":[0,3],"data_offsets":[4,4]}}   "#
        let file = try SafeTensorsFile(path: "mem", bytes: safetensorsBytes(header: header, data: withUnsafeBytes(of: Float(2.5).bitPattern.littleEndian, Array.init)))
        XCTAssertEqual(try file.floats("s"), [2.5])
        XCTAssertEqual(file.info("s")?.elementCount, 1)
        XCTAssertEqual(try file.floats("e"), [])
        XCTAssertEqual(file.info("e")?.elementCount, 0)
        XCTAssertEqual(file.metadata, ["k": "v"])
    }

    func testEmptyHeaderObjectWithNoDataIsAValidFile() throws {
        let file = try SafeTensorsFile(path: "mem", bytes: safetensorsBytes(header: "{}"))
        XCTAssertTrue(file.tensors.isEmpty)
        XCTAssertTrue(file.metadata.isEmpty)
    }

    func testReadingMissingTensorOrWrongDTypeNamesFileAndTensor() throws {
        let path = Fixtures.path("ouro-tiny-a/reference.safetensors")
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(safeTensorsError { try file.floats("p0.input_ids") },
                       .wrongDType(path: path, tensor: "p0.input_ids", dtype: .i64, expected: "F32, F16 or BF16"))
        XCTAssertEqual(safeTensorsError { try file.int64s("p0.exit_pdf") },
                       .wrongDType(path: path, tensor: "p0.exit_pdf", dtype: .f32, expected: "I64 or I32"))
        let missing = safeTensorsError { try file.floats("nope") }
        XCTAssertEqual(missing, .tensorNotFound(path: path, tensor: "nope"))
        XCTAssertEqual(missing?.description, "\(path): no tensor named 'nope'")
        XCTAssertNil(file.info("nope"))
    }
}
