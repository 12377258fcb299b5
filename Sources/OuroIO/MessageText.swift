/// Text helpers shared by the readers of untrusted text (safetensors headers, shard indexes, tokenizer files).

/// True when `bytes` are well-formed UTF-8 (no overlong forms, surrogates or values past U+10FFFF).
public func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var iterator = bytes.makeIterator()
    var decoder = UTF8()
    while true {
        switch decoder.decode(&iterator) {
        case .scalarValue: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}

/// `'text'` with control characters escaped and long text clipped, so that messages stay one line.
public func quotedForMessage(_ text: String) -> String {
    var out = "'"
    var count = 0
    for scalar in text.unicodeScalars {
        if count == 120 { out += "…"; break }
        if scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\u{2028}" || scalar == "\u{2029}" {
            out += scalar.escaped(asASCII: true)
        } else {
            out.unicodeScalars.append(scalar)
        }
        count += 1
    }
    return out + "'"
}
