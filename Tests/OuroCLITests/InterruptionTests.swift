import Foundation
import GGUF
import OuroTestSupport
import XCTest

/// A conversion stopped at any point leaves either the old destination or nothing, never a partial file.
final class InterruptionTests: XCTestCase {
    private let checkpoint = Fixtures.folder("ouro-tiny-b")

    /// Starts `ouro convert` paused after `tensors` tensors (hidden test hook) and waits until it says so.
    private func startPausedConversion(to out: String, after tensors: Int) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["convert", checkpoint, "-o", out, "--type", "q8_0", "--pause-after-tensors", String(tensors)]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var said = Data()
        while !String(decoding: said, as: UTF8.self).contains("paused") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            said.append(chunk)
        }
        XCTAssertTrue(String(decoding: said, as: UTF8.self).contains("paused"))
        return process
    }

    private func contents(_ folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
    }

    func testSIGINTAndSIGTERMLeaveNoDestinationAndNoTemporaryFile() throws {
        for signal in [SIGINT, SIGTERM] {
            let folder = try Fixtures.temporaryFolder()
            let process = try startPausedConversion(to: folder + "/model.gguf", after: 10)
            XCTAssertEqual(try contents(folder).count, 1, "a temporary file exists while writing")
            kill(process.processIdentifier, signal)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationReason, .uncaughtSignal)
            XCTAssertEqual(try contents(folder), [], "signal \(signal)")
        }
    }

    func testKillNineLeavesTheOldDestinationAndTheNextRunCleansUp() throws {
        let folder = try Fixtures.temporaryFolder()
        let out = folder + "/model.gguf"
        XCTAssertEqual(try CLI.run(["convert", checkpoint, "-o", out, "--type", "q4_0"]).status, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: out))

        let process = try startPausedConversion(to: out, after: 5)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out)), before, "destination untouched")
        XCTAssertEqual(try contents(folder).count, 2, "the killed run's temporary file is still there")

        XCTAssertEqual(try CLI.run(["convert", checkpoint, "-o", out, "--type", "q8_0"]).status, 0)
        XCTAssertEqual(try contents(folder), ["model.gguf"], "the stale temporary file was removed")
        XCTAssertEqual(try GGUFFile(path: out).tensor("blk.0.attn_q.weight")?.type, .q8_0)
    }

    func testFileSizeLimitGivesAClearErrorAndNoPartialFile() throws {
        let folder = try Fixtures.temporaryFolder()
        let out = folder + "/model.gguf"
        // ulimit -f counts 1024-byte blocks: 200 KiB is less than the ~800 KiB file.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "ulimit -f 200; exec \"$0\" convert \"$1\" -o \"$2\" --type q8_0", CLI.binary, checkpoint, out]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 2, message)
        XCTAssertTrue(message.contains(out) && message.contains("file size limit"), message)
        XCTAssertEqual(message.split(separator: "\n").count, 1, message)
        XCTAssertEqual(try contents(folder), [])
    }

    func testTwoConversionsToOneDestinationBothFinishWithAValidFile() throws {
        let folder = try Fixtures.temporaryFolder()
        let out = folder + "/model.gguf"
        let processes = try (0..<2).map { _ -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: CLI.binary)
            p.arguments = ["convert", checkpoint, "-o", out, "--type", "q8_0"]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in processes {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
        }
        XCTAssertEqual(try contents(folder), ["model.gguf"])
        XCTAssertEqual(try GGUFFile(path: out).corruptedTensors(), [])
    }
}
