#!/usr/bin/env python3
"""Helper of Scripts/bench_peers.sh (OuroKit vs llama.cpp on this machine, in one run).

    bench_peers.py llama-gguf CHECKPOINT OUT.gguf       write the checkpoint's blocks as a llama f16 GGUF
    bench_peers.py llama-bench TYPE ROUND FILE < JSON    llama-bench -o json output -> one JSONL line
    bench_peers.py report RESULTS.jsonl                  markdown tables of a run

llama-gguf: llama.cpp has no Ouro architecture, so the peer runs the same blocks (same shapes, the
same weights rounded from bf16 to f16) once per token where Ouro runs them total_ut_steps times. The
Ouro-only tensors (the second sandwich norms, the exit gate) are left out; the tokenizer is
llama.cpp's "no_vocab" (vocab_size dummy tokens), which is all llama-bench needs: it feeds random
token ids. Tensors are converted and written one at a time, so memory stays at about one tensor.
llama-gguf and llama-bench need numpy and gguf-py (PyPI: gguf); report needs only the standard library.
"""
import json
import os
import statistics
import sys

# Ouro's --type -> the llama-quantize type it is compared with. Ouro's q4_k is uniform Q4_K; the
# nearest llama.cpp type is the Q4_K_S preset (Q4_K, with Q6_K output and some Q5_K attn_v).
PAIRS = {"q8_0": "q8_0", "q4_0": "q4_0", "q4_k": "q4_k_s", "q4_k_s": "q4_k_s", "q4_k_m": "q4_k_m",
         "iq4_nl": "iq4_nl", "q6_k": "q6_k", "iq4_xs": "iq4_xs", "q5_k": "q5_k_s", "q3_k": "q3_k_s"}
# Matrices one token streams (the output head included); embeddings are a row lookup, norms are tiny.
MATRIX_SUFFIXES = ("attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                   "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight")


def safetensors_index(folder):
    """name -> (file, dtype, shape, byte offset of the data) for every tensor of the checkpoint."""
    index_path = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for name in files:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            length = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(length))
        for tensor, info in header.items():
            if tensor != "__metadata__":
                out[tensor] = (path, info["dtype"], tuple(info["shape"]), 8 + length + info["data_offsets"][0])
    return out


def load_f32(entry):
    import numpy as np
    path, dtype, shape, offset = entry
    count = 1
    for d in shape:
        count *= d
    if dtype == "BF16":
        raw = np.fromfile(path, dtype=np.uint16, count=count, offset=offset)
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype in ("F16", "F32"):
        t = np.float16 if dtype == "F16" else np.float32
        return np.fromfile(path, dtype=t, count=count, offset=offset).astype(np.float32).reshape(shape)
    sys.exit(f"{path}: tensor dtype {dtype} is not BF16, F16 or F32")


def llama_gguf(checkpoint, output):
    import numpy as np
    import gguf
    config_path = os.path.join(checkpoint, "config.json")
    try:
        with open(config_path) as f:
            c = json.load(f)
        h, inter, layers = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
        heads, kv_heads, vocab = c["num_attention_heads"], c["num_key_value_heads"], c["vocab_size"]
        head_dim = c.get("head_dim", h // heads)
    except (OSError, ValueError, KeyError) as e:
        sys.exit(f"{config_path}: {e}")
    if head_dim * heads != h:
        sys.exit(f"{config_path}: head_dim x heads != hidden_size; llama.cpp's llama architecture needs them equal")
    source = safetensors_index(checkpoint)

    # (GGUF name, checkpoint name, dtype); Ouro's input_layernorm_2 / post_attention_layernorm_2 and
    # the exit gate have no place in a llama block.
    plan = [("token_embd.weight", "model.embed_tokens.weight", np.float16)]
    for n in range(layers):
        p, b = f"model.layers.{n}.", f"blk.{n}."
        plan += [(b + "attn_norm.weight", p + "input_layernorm.weight", np.float32),
                 (b + "attn_q.weight", p + "self_attn.q_proj.weight", np.float16),
                 (b + "attn_k.weight", p + "self_attn.k_proj.weight", np.float16),
                 (b + "attn_v.weight", p + "self_attn.v_proj.weight", np.float16),
                 (b + "attn_output.weight", p + "self_attn.o_proj.weight", np.float16),
                 (b + "ffn_norm.weight", p + "post_attention_layernorm.weight", np.float32),
                 (b + "ffn_gate.weight", p + "mlp.gate_proj.weight", np.float16),
                 (b + "ffn_up.weight", p + "mlp.up_proj.weight", np.float16),
                 (b + "ffn_down.weight", p + "mlp.down_proj.weight", np.float16)]
    head = "lm_head.weight" if "lm_head.weight" in source else "model.embed_tokens.weight"
    plan += [("output_norm.weight", "model.norm.weight", np.float32), ("output.weight", head, np.float16)]
    missing = [src for _, src, _ in plan if src not in source]
    if missing:
        sys.exit(f"{checkpoint}: tensor {missing[0]} is missing")

    partial = output + ".partial"
    w = gguf.GGUFWriter(partial, "llama")
    w.add_name("ouro-blocks-as-llama")
    w.add_context_length(4096)
    w.add_embedding_length(h)
    w.add_block_count(layers)
    w.add_feed_forward_length(inter)
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(float(c.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(c.get("rms_norm_eps", 1e-6)))
    w.add_vocab_size(vocab)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("no_vocab")
    for name, src, dtype in plan:
        shape = source[src][2]
        count = 1
        for d in shape:
            count *= d
        w.add_tensor_info(name, shape, np.dtype(dtype), count * np.dtype(dtype).itemsize)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for name, src, dtype in plan:
        w.write_tensor_data(load_f32(source[src]).astype(dtype))
    w.close()
    os.replace(partial, output)


def llama_bench_line(type_name, round_index, model_file):
    """llama-bench -o json (one pp and one tg entry) on stdin -> one JSONL line on stdout."""
    import gguf
    entries = json.load(sys.stdin)
    pp = [e for e in entries if e["n_prompt"] > 0 and e["n_gen"] == 0]
    tg = [e for e in entries if e["n_gen"] > 0 and e["n_prompt"] == 0]
    if not pp or not tg:
        sys.exit(f"llama-bench output for {model_file}: expected one pp and one tg entry")
    reader = gguf.GGUFReader(model_file)
    pass_bytes = sum(int(t.n_bytes) for t in reader.tensors
                     if t.name == "output.weight" or t.name.endswith(MATRIX_SUFFIXES))
    e = pp[0]
    print(json.dumps({
        "label": "bench", "side": "llama.cpp", "type": type_name, "round": round_index,
        "threads": e["n_threads"], "prompt_tokens": e["n_prompt"], "generated_tokens": tg[0]["n_gen"],
        "prefill_tokens_per_s": e["avg_ts"], "decode_tokens_per_s": tg[0]["avg_ts"],
        "matrix_bytes_per_pass": pass_bytes, "model_size": e["model_size"], "flash_attn": e.get("flash_attn"),
        "build_commit": e.get("build_commit"), "cpu_info": e.get("cpu_info")}))


def best(rows, key):
    return max(rows, key=lambda r: r[key]) if rows else None


def round_ratios(ours, peer, loop):
    """Decode ours / llama.cpp round by round: the two ran back to back, so each ratio saw one machine
    state (two-core bandwidth here drifts over minutes, and best-of per side can pair different states)."""
    peer_by_round = {r["round"]: r["decode_tokens_per_s"] / loop for r in peer}
    ratios = sorted(r["decode_tokens_per_s"] / peer_by_round[r["round"]] for r in ours if r["round"] in peer_by_round)
    if len(ratios) < 2:
        return ""
    return f"{ratios[0]:.2f} / {statistics.median(ratios):.2f} / {ratios[-1]:.2f}"


def report(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    by = lambda label: [r for r in rows if r["label"] == label]
    machine = by("machine")[0]
    after = by("load_after")
    loop = machine["loop_count"]
    commits = [r["build_commit"] for r in by("bench") if r.get("build_commit")]
    print(f"Run of {machine['date']}: {machine['cpu']}, {machine['cores']} cores; load average before "
          f"{machine['load_before']}, after {after[0]['load'] if after else '?'}. OuroKit {str(machine['ouro_commit'])}, "
          f"llama.cpp from llama-cpp-python {machine['llama_cpp_python']} (build {commits[0] if commits else '?'}). "
          f"Prompt {machine['prompt']} tokens, {machine['generate']} generated, best of {machine['rounds']} "
          f"round(s) per side (the round-by-round column instead pairs each round's two back-to-back runs); llama.cpp tok/s divided by {loop} (Ouro runs the blocks {loop} times per token). Speed ratios above 1 and time ratios below 1 favour OuroKit.")
    if machine.get("slow_types"):
        print(f"\n{', '.join(machine['slow_types'])}: {machine['slow_generate']} generated tokens on both sides "
              f"(a slow code path of ours today).")
    print()

    bench = by("bench")
    ours = lambda t, n: [r for r in bench if r["side"] == "ouro" and r["type"] == t and r["threads"] == n]
    peer = lambda t, n: [r for r in bench if r["side"] == "llama.cpp" and r["type"] == t and r["threads"] == n]
    print(f"| ours | llama.cpp | threads | prefill tok/s | llama.cpp /{loop} | **prefill ours / llama.cpp** | decode tok/s | "
          f"llama.cpp /{loop} | **decode ours / llama.cpp** | decode ratio by round, min / median / max | "
          f"our decode / limit | llama.cpp decode / limit | our path |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in machine["threads"]:
        for t in machine["types"]:
            o, p = ours(t, n), peer(PAIRS[t], n)
            if not o:
                continue
            op, od = best(o, "prefill_tokens_per_s"), best(o, "decode_tokens_per_s")
            cells = [t, PAIRS[t].upper(), str(n), f"{op['prefill_tokens_per_s']:.2f}"]
            if p:
                pp, pd = best(p, "prefill_tokens_per_s"), best(p, "decode_tokens_per_s")
                ppre, pdec = pp["prefill_tokens_per_s"] / loop, pd["decode_tokens_per_s"] / loop
                # The peer's share of the same read bandwidth: one pass of its matrices per token.
                plimit = od["read_bandwidth_gb_per_s"] * 1e9 / pd["matrix_bytes_per_pass"]
                cells += [f"{ppre:.2f}", f"**{op['prefill_tokens_per_s'] / ppre:.2f}**",
                          f"{od['decode_tokens_per_s']:.2f}", f"{pdec:.2f}", f"**{od['decode_tokens_per_s'] / pdec:.2f}**",
                          round_ratios(o, p, loop)]
                tail = f"{pd['decode_tokens_per_s'] / plimit:.2f}"
            else:
                cells += ["", "", f"{od['decode_tokens_per_s']:.2f}", "", "", ""]
                tail = ""
            cells += [f"{od['decode_fraction_of_limit']:.2f}", tail,
                      "integer" if op["prefill_path"] == "integer" else "f32 tiles"]
            print("| " + " | ".join(cells) + " |")

    conv = by("convert")
    if conv:
        print()
        print("| ours | ouro convert s (bf16 ->) | llama.cpp | llama-quantize s (f16 ->) | **time ours / llama.cpp** | "
              "our peak RSS MiB | llama-quantize peak RSS MiB | output GB ours / llama.cpp |")
        print("|---|---|---|---|---|---|---|---|")
        for t in machine["types"]:
            o = [r for r in conv if r["side"] == "ouro" and r["type"] == t]
            p = [r for r in conv if r["side"] == "llama.cpp" and r["type"] == PAIRS[t]]
            if not o:
                continue
            o = o[-1]
            cells = [t, f"{o['seconds']:.1f}"]
            if p:
                p = p[-1]
                cells += [PAIRS[t].upper(), f"{p['seconds']:.1f}", f"**{o['seconds'] / p['seconds']:.2f}**",
                          f"{o['peak_rss_bytes'] / 2**20:.0f}", f"{p['peak_rss_bytes'] / 2**20:.0f}",
                          f"{o['output_bytes'] / 1e9:.2f} / {p['output_bytes'] / 1e9:.2f}"]
            else:
                cells += ["", "", "", f"{o['peak_rss_bytes'] / 2**20:.0f}", "", f"{o['output_bytes'] / 1e9:.2f}"]
            print("| " + " | ".join(cells) + " |")
    for note in by("note"):
        print(f"\n{note['text']}")


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "llama-gguf":
        llama_gguf(args[1], args[2])
    elif len(args) == 4 and args[0] == "llama-bench":
        llama_bench_line(args[1], int(args[2]), args[3])
    elif len(args) == 2 and args[0] == "report":
        report(args[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
