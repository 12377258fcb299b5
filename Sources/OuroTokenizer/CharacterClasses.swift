/// The Unicode classes the pre-tokenizer patterns use, looked up per scalar from a table built once for
/// the Basic Multilingual Plane (other planes ask Swift's Unicode properties directly).
///
/// - letter: `\p{L}` (Lu Ll Lt Lm Lo)
/// - number: `\p{N}` (Nd Nl No; also Rust's `char::is_numeric`, which `Digits` uses)
/// - space: `\s` (the White_Space property, as Oniguruma and Rust's regex define it)
/// - word: `\w` in Rust's regex (Alphabetic, marks, Nd, Pc, Join_Control), for `single_word` tokens
struct CharacterClass: OptionSet {
    let rawValue: UInt8
    static let letter = CharacterClass(rawValue: 1)
    static let number = CharacterClass(rawValue: 2)
    static let space = CharacterClass(rawValue: 4)
    static let word = CharacterClass(rawValue: 8)

    private static let basicPlane: [UInt8] = (0..<0x10000).map { compute(UInt32($0)).rawValue }

    @inline(__always)
    static func of(_ scalar: UInt32) -> CharacterClass {
        if scalar < 0x10000 {
            return basicPlane.withUnsafeBufferPointer { CharacterClass(rawValue: $0[Int(scalar)]) }
        }
        return compute(scalar)
    }

    private static func compute(_ value: UInt32) -> CharacterClass {
        guard let scalar = Unicode.Scalar(value) else { return [] }   // surrogates: never in a String
        let properties = scalar.properties
        var result: CharacterClass = []
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            result.insert(.letter)
        case .decimalNumber, .letterNumber, .otherNumber:
            result.insert(.number)
        default: break
        }
        if properties.isWhitespace { result.insert(.space) }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation:
            result.insert(.word)
        default:
            if properties.isAlphabetic || properties.isJoinControl { result.insert(.word) }
        }
        return result
    }
}

/// Decodes the scalar starting at `i` of valid UTF-8 (the module only scans Swift strings' bytes).
@inline(__always)
func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, _ i: Int) -> (value: UInt32, length: Int) {
    let b0 = UInt32(bytes[i])
    if b0 < 0x80 { return (b0, 1) }
    if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F), 2) }
    if b0 < 0xF0 {
        return ((b0 & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F), 3)
    }
    return ((b0 & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
            | UInt32(bytes[i + 3] & 0x3F), 4)
}

/// The start of the scalar that ends just before `i` (valid UTF-8, `i` > 0 on a boundary).
@inline(__always)
func previousScalarStart(_ bytes: UnsafeBufferPointer<UInt8>, _ i: Int) -> Int {
    var j = i - 1
    while j > 0 && bytes[j] & 0xC0 == 0x80 { j -= 1 }
    return j
}
