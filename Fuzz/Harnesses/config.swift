// OuroConfiguration from config.json bytes, mapped to ModelError as OuroConfiguration.load does.
import Foundation
@testable import OuroModel

private let name = "fuzz/config.json"

func fuzzOne(_ bytes: [UInt8]) {
    let config: OuroConfiguration
    do {
        config = try JSONDecoder().decode(OuroConfiguration.self, from: Data(bytes))
    } catch let error as DecodingError {
        checkRejection(OuroConfiguration.modelError(error, path: name), naming: name)
        return
    } catch {
        reject("unexpected error type \(type(of: error)): \(error)")
    }
    if let (key, problem) = config.validationProblem() { reject("accepted an invalid config: \(key) \(problem)") }
    do {
        let again = try JSONDecoder().decode(OuroConfiguration.self, from: JSONEncoder().encode(config))
        guard again == config else { reject("encode/decode round trip changed the configuration") }
    } catch {
        reject("an accepted configuration does not round-trip: \(error)")
    }
    _ = config.ggufMetadata()
}
