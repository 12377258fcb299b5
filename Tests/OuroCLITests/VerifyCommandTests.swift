import Foundation
import OuroTestSupport
import XCTest

final class VerifyCommandTests: XCTestCase {
    func testIntactCorruptedAndUncheckedFilesGetExitCodes012() throws {
        let folder = try Fixtures.temporaryFolder()
        let out = folder + "/a.gguf"
        XCTAssertEqual(try CLI.run(["convert", Fixtures.folder("ouro-tiny-a"), "-o", out, "--type", "q4_0"]).status, 0)
        let intact = try CLI.run(["verify", out])
        XCTAssertEqual(intact.status, 0, intact.stdout + intact.stderr)
        XCTAssertTrue(intact.stdout.hasPrefix("OK: "), intact.stdout)

        // Flip one bit in the middle of the file: inside some tensor's data.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: out))
        let corrupted = try CLI.run(["verify", out, "--json"])
        XCTAssertEqual(corrupted.status, 1, corrupted.stdout + corrupted.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(corrupted.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["ok"] as? Bool, false)
        XCTAssertEqual((json["corrupted_tensors"] as? [String])?.count, 1)

        let notGGUF = try CLI.run(["verify", Fixtures.folder("ouro-tiny-a") + "/model.safetensors"])
        XCTAssertEqual(notGGUF.status, 2)
        XCTAssertTrue(notGGUF.stderr.contains("model.safetensors"), notGGUF.stderr)
    }
}
