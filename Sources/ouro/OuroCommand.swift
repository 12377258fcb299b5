import ArgumentParser
import Foundation
import OuroModel

@main
struct OuroCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ouro",
        abstract: "Convert, quantize, run and validate Ouro looped language models.",
        discussion: """
            Typical use:
              ouro convert ./Ouro-1.4B --output ouro-q4.gguf --type q4_k_m
              ouro validate ouro-q4.gguf --baseline ./Ouro-1.4B --text-file text.txt
              ouro generate ouro-q4.gguf --prompt "The capital of France is"
              ouro chat ouro-q4.gguf
              ouro serve ouro-q4.gguf --port 8080

            Environment: OURO_KERNELS=scalar|avx2|avx512 (x86-64) or scalar|neon|dotprod|i8mm (aarch64)
            forces the integer-kernel level; a level this CPU lacks is an error.

            Exit codes: 0 success, 1 a check failed (validate), 2 bad input or usage.
            """,
        subcommands: [Convert.self, Inspect.self, Validate.self, Reference.self, Generate.self, Chat.self, Verify.self, Bench.self, Tokenize.self, Serve.self])

    /// Usage errors exit with 2 (as bad input does) instead of ArgumentParser's 64, so scripts see one code.
    static func main() {
        if let problem = MachineProbe.kernelEnvironmentProblem() {
            printError("ouro: \(problem)")
            Foundation.exit(2)
        }
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || code == .failure || code.rawValue == 2 {
                exit(withError: error)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}

/// Prints `ouro: <one-line description>` on stderr and exits 2: the one way the CLI reports bad input.
func reportingBadInput<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        printError("ouro: \(error)")
        throw ExitCode(2)
    }
}

func printError(_ line: String, terminator: String = "\n") {
    FileHandle.standardError.write(Data((line + terminator).utf8))
}

/// True when stderr is a terminal: progress lines are drawn only there.
var standardErrorIsTerminal: Bool { isatty(2) != 0 }

func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

func jsonString<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
