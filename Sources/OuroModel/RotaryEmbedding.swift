import Foundation

/// HF Llama-style RoPE ("rotate half"), with angles computed the way torch does in float32:
/// inv_freq = 1 / theta^(2i/D) in float32, angle = float32(pos) * inv_freq, cos/sin of that float.
struct RotaryEmbedding: Sendable {
    let half: Int
    let inverseFrequency: [Float]

    init(headDim: Int, theta: Double) {
        half = headDim / 2
        let base = Float(theta)
        inverseFrequency = (0..<headDim / 2).map { i in
            1 / powf(base, Float(2 * i) / Float(headDim))
        }
    }

    /// cos/sin tables [positions.count][D/2] for consecutive positions.
    func tables(start: Int, count: Int, cos: UnsafeMutablePointer<Float>, sin: UnsafeMutablePointer<Float>) {
        for t in 0..<count {
            let position = Float(start + t)
            for i in 0..<half {
                let angle = position * inverseFrequency[i]
                // The float angle is exact input; double cos/sin then rounding is within torch's 1 ulp.
                cos[t * half + i] = Float(Foundation.cos(Double(angle)))
                sin[t * half + i] = Float(Foundation.sin(Double(angle)))
            }
        }
    }

    /// Rotates `heads` heads of one token in place: x*cos + rotate_half(x)*sin, rotate_half(x) = (−x2, x1).
    @inline(__always)
    func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        for h in 0..<heads {
            let v = x + h * 2 * half
            for i in 0..<half {
                let x1 = v[i], x2 = v[i + half]
                v[i] = x1 * cos[i] + (-x2) * sin[i]
                v[i + half] = x2 * cos[i] + x1 * sin[i]
            }
        }
    }
}
