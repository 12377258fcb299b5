import Foundation
import XCTest
@testable import OuroModel

/// Inputs found by Scripts/fuzz.sh (targets `config`, `gguf`), minimized; each once broke a guarantee.
final class ModelFuzzRegressionTests: XCTestCase {
    /// config.json `{"layer_types":["\n"],"model_type":"ouro"}`: the rejected value went raw into the message.
    func testConfigErrorQuotingAValueWithNewlineStaysOneLine() throws {
        let bytes: [UInt8] = [
            0x7b, 0x22, 0x6c, 0x61, 0x79, 0x65, 0x72, 0x5f, 0x74, 0x79, 0x70, 0x65, 0x73, 0x22, 0x3a, 0x5b,
            0x22, 0x5c, 0x6e, 0x22, 0x5d, 0x2c, 0x22, 0x6d, 0x6f, 0x64, 0x65, 0x6c, 0x5f, 0x74, 0x79, 0x70,
            0x65, 0x22, 0x3a, 0x22, 0x6f, 0x75, 0x72, 0x6f, 0x22, 0x7d,
        ]
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/config.json"))
        XCTAssertThrowsError(try OuroConfiguration.load(folder: folder)) { error in
            guard case ModelError.invalidConfig(_, "layer_types", _) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual("\(error)", "\(folder)/config.json: 'layer_types' contains \"\\n\"; only \"full_attention\" is supported")
        }
    }
}
