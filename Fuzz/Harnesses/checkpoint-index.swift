// SafeTensorsCheckpoint's model.safetensors.index.json parser, in memory.
@testable import SafeTensors

private let name = "fuzz/model.safetensors.index.json"

func fuzzOne(_ bytes: [UInt8]) {
    do {
        let map = try bytes.withUnsafeBytes { try SafeTensorsCheckpoint.parseWeightMap($0, indexPath: name) }
        guard !map.isEmpty else { reject("empty weight_map accepted") }
        for (_, shard) in map where shard.isEmpty || shard.contains("/") || shard == "." || shard == ".." {
            reject("shard name \(shard.debugDescription) leaves the folder")
        }
    } catch let error as SafeTensorsError {
        checkRejection(error, naming: name)
    } catch {
        reject("unexpected error type \(type(of: error)): \(error)")
    }
}
