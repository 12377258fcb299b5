// Tokenizer from tokenizer.json bytes, as Tokenizer(tokenizerJSON:) reads a file; an accepted tokenizer
// then encodes and decodes a few texts: every id must be one it knows.
import Foundation
@testable import OuroTokenizer

private let name = "fuzz/tokenizer.json"
private let texts = ["Hello world, it's 2024!", "<|im_start|>user\nhi<|im_end|>", "日本語 😀👨‍👩‍👧 e\u{301}\t\r\n  x", "", "a <special> [MASK] word"]

func fuzzOne(_ bytes: [UInt8]) {
    let tokenizer: Tokenizer
    do {
        tokenizer = try bytes.withUnsafeBytes { try Tokenizer(TokenizerFileReader.readTokenizer(bytes: $0, path: name), source: name) }
    } catch let error as TokenizerError {
        checkRejection(error, naming: name)
        return
    } catch {
        reject("unexpected error type \(type(of: error)): \(error)")
    }
    for text in texts {
        let ids = tokenizer.encode(text)
        if let bad = ids.first(where: { tokenizer.token($0) == nil }) { reject("encode gave id \(bad), which has no token") }
        var stream = StreamingDecoder(tokenizer: tokenizer)
        let streamed = ids.map { stream.push($0) }.joined() + stream.finish()
        let whole = tokenizer.decode(ids)
        if !whole.unicodeScalars.contains("\u{FFFD}") && streamed != whole { reject("streaming decode differs from decode") }
    }
    _ = try? tokenizer.ggufMetadata(embeddingRows: tokenizer.vocabularySize, eosID: nil)
}
