/// Error text made safe to print as one line. Names and values read from untrusted files end up in
/// error messages; their control characters (C0, DEL, C1, U+2028/2029) are shown as escapes so they
/// can neither break the line nor send terminal escape sequences.
public func singleLine(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isUnprintable) else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
        if isUnprintable(scalar) { out += scalar.escaped(asASCII: true) } else { out.unicodeScalars.append(scalar) }
    }
    return out
}

private func isUnprintable(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}"
}
