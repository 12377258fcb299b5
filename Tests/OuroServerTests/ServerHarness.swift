import Foundation
import OuroTestSupport
import XCTest

/// Starts the built `ouro serve` on 127.0.0.1 at a port the test picks, and talks raw HTTP to it.
final class ServerProcess: @unchecked Sendable {
    static let binary = Bundle.main.bundleURL.appendingPathComponent("ouro").path

    let process = Process()
    let port: Int
    private let errors = Pipe()
    private let lock = NSLock()
    private var stderrText = ""

    /// The trained fixture converted to a q8_0 GGUF once (with its tokenizer and chat template).
    static let model: String = {
        let folder = try! Fixtures.temporaryFolder()
        let path = folder + "/ouro-trained-s.gguf"
        let convert = Process()
        convert.executableURL = URL(fileURLWithPath: binary)
        convert.arguments = ["convert", Fixtures.folder("ouro-trained-s"), "--output", path, "--type", "q8_0"]
        convert.standardOutput = FileHandle.nullDevice
        convert.standardError = FileHandle.nullDevice
        try! convert.run()
        convert.waitUntilExit()
        precondition(convert.terminationStatus == 0, "convert failed")
        return path
    }()

    /// A port nobody listens on now: bind to port 0, read what the kernel gave, close.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Starts the server and waits (up to 60 s) until it says it is listening.
    init(_ extra: [String] = [], model: String = ServerProcess.model) throws {
        port = Self.freePort()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["serve", model, "--port", String(port), "--name", "trained"] + extra
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        errors.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.lock(); self.stderrText += String(decoding: data, as: UTF8.self); self.lock.unlock()
        }
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !stderr.contains("ouro serve:") {
            guard process.isRunning, Date() < deadline else {
                throw XCTSkip("ouro serve did not start: \(stderr)")
            }
            usleep(20_000)
        }
    }

    var stderr: String {
        lock.lock(); defer { lock.unlock() }
        return stderrText
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        errors.fileHandleForReading.readabilityHandler = nil
    }

    deinit { stop() }

    var baseURL: String { "http://127.0.0.1:\(port)/v1" }
}

/// A minimal HTTP/1.1 client over a POSIX socket, so tests control every byte (malformed bodies,
/// hanging up mid-stream).
struct RawHTTP {
    struct Reply {
        let status: Int
        let headers: [String: String]
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    let port: Int

    func connect() throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(fd); throw NSError(domain: "connect", code: Int(errno)) }
        var timeout = timeval(tv_sec: 120, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    static func requestBytes(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) -> Data {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return Data((head + "\r\n").utf8) + (body ?? Data())
    }

    static func send(_ fd: Int32, _ data: Data) {
        data.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = Foundation.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                sent += n
            }
        }
    }

    func request(_ method: String, _ path: String, body: Data? = nil, headers: [String: String] = [:]) throws -> Reply {
        let fd = try connect()
        defer { close(fd) }
        Self.send(fd, Self.requestBytes(method, path, body: body, headers: headers))
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data.append(contentsOf: buffer[0..<n])
        }
        return try Self.parse(data)
    }

    func post(_ path: String, _ json: String, headers: [String: String] = [:]) throws -> Reply {
        try request("POST", path, body: Data(json.utf8), headers: headers)
    }

    static func parse(_ data: Data) throws -> Reply {
        let text = String(decoding: data, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw NSError(domain: "no HTTP head in: \(text.prefix(200))", code: 0) }
        let lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            if let colon = line.firstIndex(of: ":") {
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        var body = String(text[split.upperBound...])
        if headers["transfer-encoding"] == "chunked" { body = dechunk(body) }
        return Reply(status: status, headers: headers, body: body)
    }

    static func dechunk(_ text: String) -> String {
        var rest = Substring(text), out = ""
        while let line = rest.range(of: "\r\n") {
            guard let size = Int(rest[..<line.lowerBound], radix: 16), size > 0 else { break }
            let start = line.upperBound
            let utf8 = rest.utf8
            guard let end = utf8.index(start, offsetBy: size, limitedBy: utf8.endIndex) else { break }
            out += String(rest[start..<end])
            rest = rest[end...].dropFirst(2)
        }
        return out
    }
}
