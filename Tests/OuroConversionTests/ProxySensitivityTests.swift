import Foundation
import OuroModel
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroConversion

/// The layer-local proxy against the full looped measurement on the trained fixture.
final class ProxySensitivityTests: XCTestCase {
    private static let calibration: [Int] = {
        let path = Fixtures.root + "/../../Docs/calibration/trained-s-textwrap.txt"
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return Array(text.split(whereSeparator: { $0 == "," || $0.isWhitespace }).compactMap { Int($0) }.prefix(128))
    }()

    /// Ranks of the proxy's estimates agree with the full measurement's over every (tensor, type) pair
    /// that was not an anchor (anchors agree by construction), and the proxy's gains measured on layers
    /// 0 and 3 only still rank the middle layers' pairs.
    func testProxyRanksLikeTheFullLoopedMeasurement() throws {
        let weights = try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s"))
        XCTAssertEqual(Self.calibration.count, 128)
        var search = SensitivitySearch(candidates: [.q4_0, .q4_K, .q6_K, .q8_0])
        search.window = 128
        search.context = .uniform(.q4_K)
        let hessians = try Hessians.collect(weights: weights, tokens: Self.calibration)
        let full = try search.measure(weights: weights, tokens: Self.calibration)
        for gainLayers in [nil, [0, 3]] as [[Int]?] {
            let proxy = try ProxySensitivity(search: search, gainLayers: gainLayers).measure(weights: weights, tokens: Self.calibration, hessians: hessians)
            let anchors = Set(TensorNaming.expectedTensors(weights.config).filter(\.isQuantizable).filter { tensor in
                gainLayers == nil || ProxySensitivity.layer(tensor.ggufName).map { gainLayers!.contains($0) } ?? true
            }.map { "\($0.ggufName) \(search.contextType($0, search.context!).name)" })
            var pairs: [(Double, Double)] = []
            for m in full where !anchors.contains("\(m.tensor) \(m.type.name)") {
                let p = try XCTUnwrap(proxy.first { $0.tensor == m.tensor && $0.type == m.type })
                pairs.append((m.finalKLD, p.finalKLD))
            }
            let rho = spearman(pairs)
            print("proxy vs full, gain layers \(gainLayers.map { "\($0)" } ?? "all"): Spearman \(rho) over \(pairs.count) pairs")
            XCTAssertGreaterThan(rho, 0.8, "gain layers \(String(describing: gainLayers))")
        }
    }

    private func spearman(_ pairs: [(Double, Double)]) -> Double {
        func ranks(_ v: [Double]) -> [Double] {
            let order = v.indices.sorted { v[$0] < v[$1] }
            var r = [Double](repeating: 0, count: v.count)
            for (rank, i) in order.enumerated() { r[i] = Double(rank) }
            return r
        }
        let a = ranks(pairs.map(\.0)), b = ranks(pairs.map(\.1))
        let n = Double(pairs.count), ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in a.indices { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb) }
        return sab / (saa * sbb).squareRoot()
    }
}
