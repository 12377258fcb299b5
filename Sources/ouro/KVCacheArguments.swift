import ArgumentParser
import OuroModel

extension KVCacheType: ExpressibleByArgument {}
extension KVSharing: ExpressibleByArgument {}

/// `--kv-type` and `--kv-share`: how the KV cache stores keys and values (generate, chat, validate, bench).
struct KVCacheArguments: ParsableArguments {
    @Option(help: ArgumentHelp(
        "KV cache element type: f32, f16 (default) or q8_0 (ggml blocks of 32; needs head_dim % 32 == 0).",
        discussion: "Bytes per position: f32 4, f16 2, q8_0 1.0625 per element."))
    var kvType: KVCacheType = .f16

    @Option(help: ArgumentHelp(
        "Which K/V a position keeps across loop steps: full (default, one per step: upstream's exact semantics), last (the last step's, 4x less) or mean (the mean over steps).",
        discussion: "With last/mean a prompt is still processed with per-step K/V, then reduced; later tokens attend at every step to the kept K/V of earlier positions plus their own current-step K/V. Not what the model was trained with: see Docs/KV-CACHE.md for the measured cost."))
    var kvShare: KVSharing = .full

    func options(contextLimit: Int? = nil) -> KVCacheOptions {
        KVCacheOptions(type: kvType, sharing: kvShare, contextLimit: contextLimit)
    }
}

/// `--ctx N`: the most positions the KV cache may hold (generate, chat, bench).
struct ContextLimitArgument: ParsableArguments {
    @Option(name: .customLong("ctx"), help: "Most positions the KV cache may hold (default: the model's max_position_embeddings); memory is allocated as positions arrive.")
    var contextLimit: Int?

    func validate() throws {
        if let contextLimit, contextLimit < 1 { throw ValidationError("'--ctx' must be 1 or more") }
    }
}
