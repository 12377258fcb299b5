/// `text` as a JSON string literal, byte for byte what Python's `json.dumps(text, ensure_ascii=False)`
/// writes (transformers' `tojson` filter relies on that, and serde_json, which writes safetensors
/// headers, agrees): `"` and `\` escaped, `\n \r \t \b \f` by their short forms, the other control
/// characters below U+0020 as `\u00xx` (lowercase hex), everything else as is.
public func jsonQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
