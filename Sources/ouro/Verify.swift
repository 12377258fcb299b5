import ArgumentParser
import Foundation
import GGUF

extension OuroCommand {
    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a GGUF file's integrity: header and every tensor's checksum.",
            discussion: """
                Files written by `ouro convert` carry an XXH64 checksum of their metadata and tensor table \
                and one of every tensor's data (Formats/ouro-gguf.md). This recomputes them all and names \
                any tensor whose bytes changed. `validate`, `generate` and the library check the header \
                checksum on every load; only `verify` reads all the data.

                Exit codes: 0 intact, 1 corrupted (the damaged tensors are listed), 2 unreadable or no checksums.
                """)

        @Argument(help: "A .gguf file written by ouro convert.")
        var file: String

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let gguf = try reportingBadInput { try GGUFFile(path: file) }
            let progress = standardErrorIsTerminal && !json
            let corrupted: [String]
            do {
                corrupted = try gguf.corruptedTensors { done, total in
                    if progress { printError("\r\u{1B}[Kverified \(done)/\(total) tensors", terminator: "") }
                }
                if progress { printError("\r\u{1B}[K", terminator: "") }
            } catch let error as GGUFError {
                if case .headerChecksumMismatch = error {
                    report(ok: false, header: false, corrupted: [])
                    throw ExitCode(1)
                }
                printError("ouro: \(error)")
                throw ExitCode(2)
            }
            report(ok: corrupted.isEmpty, header: true, corrupted: corrupted)
            if !corrupted.isEmpty { throw ExitCode(1) }
        }

        private func report(ok: Bool, header: Bool, corrupted: [String]) {
            if json {
                struct Output: Encodable { let file: String; let ok: Bool; let header_ok: Bool; let corrupted_tensors: [String] }
                print((try? jsonString(Output(file: file, ok: ok, header_ok: header, corrupted_tensors: corrupted))) ?? "{}")
            } else if !header {
                print("NOT OK: \(file): header checksum mismatch: the metadata or tensor table was altered or corrupted")
            } else if corrupted.isEmpty {
                print("OK: \(file): header and all tensor checksums match")
            } else {
                for name in corrupted { print("corrupted: \(name)") }
                print("NOT OK: \(file): \(corrupted.count) tensor(s) do not match their checksums")
            }
        }
    }
}
