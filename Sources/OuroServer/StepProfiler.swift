import Foundation
import OuroModel

/// OURO_SERVE_PROFILE=1: where the scheduler's steps go, printed to stderr as one line per stretch
/// of steps with the same batch (e.g. "4 decode rows"), when the batch changes or the scheduler
/// goes idle. Per step: wall time split into the forward pass's parts (`BatchedStepTimes`), token
/// drawing (sampling, detokenizing, handing events to the HTTP side) and the gap between one step's
/// end and the next one's start (admission, locks, waiting for work); and the CPU time every thread
/// of the process took during the stretch, by thread name (/proc/self/task), so the model's threads
/// can be told apart from NIO's. Off by default; when off the scheduler reads no clock.
final class StepProfiler {
    static func fromEnvironment() -> StepProfiler? {
        guard let value = ProcessInfo.processInfo.environment["OURO_SERVE_PROFILE"], value == "1" else { return nil }
        return StepProfiler()
    }

    private var key = ""
    private var steps = 0
    private var times = BatchedStepTimes()
    private var drawNs: UInt64 = 0
    private var gapNs: UInt64 = 0
    private var started: UInt64 = 0
    private var lastEnd: UInt64 = 0
    private var threadCPU: [String: Double] = [:]

    /// Called before a step's forward pass with its batch's description; returns the step start.
    func beginStep(key newKey: String) -> UInt64 {
        let now = DispatchTime.now().uptimeNanoseconds
        if newKey != key {
            flush()
            key = newKey
            started = now
            threadCPU = Self.threadCPUSeconds()
        } else if lastEnd != 0 {
            gapNs += now - lastEnd
        }
        return now
    }

    func endStep(forward: BatchedStepTimes, drawStarted: UInt64) {
        let now = DispatchTime.now().uptimeNanoseconds
        steps += 1
        times.products += forward.products
        times.attention += forward.attention
        times.head += forward.head
        times.total += forward.total
        drawNs += now - drawStarted
        lastEnd = now
    }

    /// Prints the stretch so far (nothing when it has no steps) and starts a new one.
    func flush() {
        defer {
            steps = 0; times = BatchedStepTimes(); drawNs = 0; gapNs = 0; key = ""; lastEnd = 0
        }
        guard steps > 0 else { return }
        let wall = Double(lastEnd - started) / 1e6
        let n = Double(steps)
        func ms(_ ns: UInt64) -> String { String(format: "%.1f", Double(ns) / 1e6 / n) }
        let rest = times.total - min(times.total, times.products + times.attention + times.head)
        let now = Self.threadCPUSeconds()
        var cpu: [String: Double] = [:]
        for (name, seconds) in now { cpu[name, default: 0] += seconds - (threadCPU[name] ?? 0) }
        let total = cpu.values.reduce(0, +)
        let perThread = cpu.filter { $0.value > 0.0005 }.sorted { $0.value > $1.value }
            .map { "\($0.key) \(String(format: "%.1f", $0.value * 1000 / n))" }.joined(separator: ", ")
        let line = "serve profile: \(steps) steps of \(key) in \(String(format: "%.0f", wall)) ms: per step wall \(String(format: "%.1f", wall / n)) ms"
            + " = forward \(ms(times.total)) (products \(ms(times.products)), attention+KV store \(ms(times.attention)),"
            + " head+gate \(ms(times.head)), norms+rest \(ms(rest))) + draw \(ms(drawNs)) + gap \(ms(gapNs));"
            + " CPU per step \(String(format: "%.1f", total * 1000 / n)) ms (\(perThread))\n"
        FileHandle.standardError.write(line.data(using: .utf8)!)
    }

    /// Each thread's user + system CPU seconds, summed by thread name.
    static func threadCPUSeconds() -> [String: Double] {
        var result: [String: Double] = [:]
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return result }
        for task in tasks {
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            var name = String(stat[stat.index(after: open)..<close])
            // NIO names its threads by event loop and index; group them.
            if name.hasPrefix("NIO-") { name = "NIO" }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            result[name, default: 0] += (user + system) / tick
        }
        return result
    }
}
