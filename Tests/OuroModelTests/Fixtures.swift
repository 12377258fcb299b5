import Foundation

/// Paths of the shared test fixtures, found relative to this file.
enum Fixtures {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures").path
    }()

    static func folder(_ name: String) -> String { root + "/" + name }

    static let all = ["ouro-tiny-a", "ouro-tiny-b", "ouro-trained-s"]

    /// A fresh empty directory under the system temporary folder.
    static func temporaryFolder() throws -> String {
        let path = NSTemporaryDirectory() + "ouromodel-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Tensor names and shapes from safetensors headers, read independently of the SafeTensors module.
    static func headerShapes(_ folder: String) throws -> [String: [Int]] {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { $0.hasSuffix(".safetensors") && $0 != "reference.safetensors" }
        var result: [String: [Int]] = [:]
        for file in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file))
            let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + length)) as! [String: Any]
            for (name, value) in header where name != "__metadata__" {
                result[name] = ((value as! [String: Any])["shape"] as! [NSNumber]).map(\.intValue)
            }
        }
        return result
    }
}
