#!/usr/bin/env python3
"""Write an Ouro reference bundle (Formats/reference-bundle.md) from a Hugging Face checkpoint.

Runs the upstream OuroForCausalLM (trust_remote_code=True) in float32 with eager attention and
use_cache=False, captures every loop step the way Tests/Fixtures/*/reference.json describes, and
writes `pN.*` tensors plus our __metadata__ to a safetensors file, zstd-compressed by default.

    python3 Scripts/reference_logits.py CHECKPOINT -o ref.safetensors.zst --ids 1,2,3 --ids 4,5,6
    python3 Scripts/reference_logits.py CHECKPOINT -o ref.safetensors.zst --text a.txt --max-tokens 256

Needs torch, transformers, safetensors and (for compression) zstandard. They are imported only
when a bundle is written, so `--help` works without them.
"""
import argparse
import copy
import json
import platform
import sys

FORMAT = "ouro-reference"
FORMAT_VERSION = "1"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Write an Ouro reference bundle from a Hugging Face checkpoint.")
    p.add_argument("checkpoint", help="checkpoint folder or Hugging Face repo id (remote code is trusted)")
    p.add_argument("-o", "--output", required=True, help="bundle path (.safetensors.zst, or .safetensors with --no-compress)")
    src = p.add_argument_group("prompts (any mix, in order; each becomes p0, p1, ...)")
    src.add_argument("--ids", action="append", default=[], metavar="LIST", help="one prompt as comma-separated token ids")
    src.add_argument("--ids-file", action="append", default=[], metavar="FILE",
                     help="one prompt per non-empty line, ids separated by commas or spaces")
    src.add_argument("--text", action="append", default=[], metavar="FILE",
                     help="a text file tokenized with the checkpoint's tokenizer (one prompt per file)")
    p.add_argument("--max-tokens", type=int, default=256,
                   help="prompt length cap for --text; when the text is longer, the next token becomes the last label")
    p.add_argument("--no-labels", action="store_true", help="do not write pN.labels for --text prompts")
    p.add_argument("--thresholds", default="0.5,0.9", help="exit thresholds to record (comma list; empty for none)")
    p.add_argument("--exit-at-steps", default="1", help="0-based exit_at_step values to record (comma list)")
    p.add_argument("--greedy", type=int, default=12, help="greedy new tokens to record (0: none)")
    p.add_argument("--no-cached-greedy", action="store_true",
                   help="skip generate(use_cache=True) (some copies of the remote code crash with a cache)")
    p.add_argument("--no-hidden", action="store_true", help="omit pN.step_hidden (smaller bundles)")
    p.add_argument("--no-compress", action="store_true", help="write plain safetensors")
    p.add_argument("--level", type=int, default=10, help="zstd level (default 10; 19 is ~1%% smaller and ~15x slower)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 gives reproducible bytes)")
    return p.parse_args(argv)


def comma_list(text, kind):
    return [kind(x) for x in text.replace(" ", ",").split(",") if x.strip()]


def collect_prompts(args, tokenizer_loader):
    """[(input_ids, labels or None)]"""
    prompts = [(comma_list(s, int), None) for s in args.ids]
    for path in args.ids_file:
        with open(path) as f:
            prompts += [(comma_list(line, int), None) for line in f if line.strip()]
    if args.text:
        tokenizer = tokenizer_loader()
        for path in args.text:
            with open(path, encoding="utf-8") as f:
                ids = tokenizer(f.read(), add_special_tokens=False)["input_ids"]
            ids = ids[: args.max_tokens + 1]
            if len(ids) > args.max_tokens and not args.no_labels:
                prompts.append((ids[: args.max_tokens], ids[1 : args.max_tokens + 1]))
            else:
                prompts.append((ids[: args.max_tokens], None))
    if not prompts:
        sys.exit("reference_logits.py: no prompts: give --ids, --ids-file or --text")
    for ids, _ in prompts:
        if not ids:
            sys.exit("reference_logits.py: empty prompt")
    return prompts


def capture_prompt(torch, model, ids, labels, args, thresholds, exit_steps):
    """Every tensor of one prompt, keyed by suffix (without the pN. prefix)."""
    x = torch.tensor([ids], dtype=torch.long)
    mask = torch.ones_like(x)
    out = {"input_ids": x[0].clone()}
    with torch.no_grad():
        # OuroModel.forward returns (outputs, hidden_states_list, gate_list[, ...]).
        inner = model.model(input_ids=x, attention_mask=mask, use_cache=False)
        hidden_list, gate_list = inner[1], inner[2]
        steps = len(hidden_list)
        hidden = torch.stack([h[0] for h in hidden_list])                       # [S,T,H], after model.norm
        step_logits = torch.stack([model.lm_head(h)[0] for h in hidden_list])   # [S,T,V]
        gates = torch.stack([g[0, :, 0] for g in gate_list])                    # [S,T], pre-sigmoid
        out["step_logits"] = step_logits.float()
        if not args.no_hidden:
            out["step_hidden"] = hidden.float()
        out["gate_logits"] = gates.float()

        # Upstream's exit distribution in float32: p_s = λ_s Π_{j<s}(1-λ_j), the last step takes the rest.
        remaining = torch.ones_like(gates[0])
        pdf = []
        for s in range(steps):
            if s < steps - 1:
                lam = torch.sigmoid(gates[s])
                pdf.append(lam * remaining)
                remaining = remaining * (1 - lam)
            else:
                pdf.append(remaining)
        exit_pdf = torch.stack(pdf, dim=1)                                      # [T,S]
        out["exit_pdf"] = exit_pdf

        # Default forward: with config.early_exit_threshold set (1.0 in real configs) this is the
        # threshold branch; that is what users get, so it is the reference "final" logits.
        out["final_logits"] = model(input_ids=x, attention_mask=mask, use_cache=False).logits[0].float()

        # use_weighted_exit is ignored while a threshold is configured: clear it for this call only.
        saved = getattr(model, "early_exit_threshold", None)
        model.early_exit_threshold = None
        try:
            out["weighted_logits"] = model(input_ids=x, attention_mask=mask, use_cache=False,
                                           use_weighted_exit=True).logits[0].float()
        finally:
            model.early_exit_threshold = saved

        cumulative = torch.cumsum(exit_pdf, dim=1)
        for q in thresholds:
            key = f"threshold_{q}"
            logits = model(input_ids=x, attention_mask=mask, use_cache=False, exit_threshold=float(q)).logits[0].float()
            reached = cumulative >= float(q)
            first = torch.where(reached.any(dim=1), reached.float().argmax(dim=1), torch.full_like(reached[:, 0], steps - 1, dtype=torch.long))
            # Prefer the step whose logits upstream actually returned (its pdf may round differently).
            for t in range(len(ids)):
                if not torch.equal(step_logits[first[t], t], logits[t]):
                    same = [s for s in range(steps) if torch.equal(step_logits[s, t], logits[t])]
                    if same:
                        first[t] = same[0]
                    else:
                        print(f"warning: threshold {q}, token {t}: upstream logits match no loop step", file=sys.stderr)
            out[key + ".logits"] = logits
            out[key + ".exit_steps"] = first.long()
        for k in exit_steps:
            if 0 <= k < steps:
                out[f"exit_at_step_{k}.logits"] = model(input_ids=x, attention_mask=mask, use_cache=False,
                                                        exit_at_step=k).logits[0].float()

        if args.greedy > 0:
            # Uncached: re-run the whole sequence per token and take the default forward's argmax.
            seq = list(ids)
            for _ in range(args.greedy):
                t = torch.tensor([seq], dtype=torch.long)
                logits = model(input_ids=t, attention_mask=torch.ones_like(t), use_cache=False).logits[0, -1]
                seq.append(int(torch.argmax(logits)))
            out["greedy_uncached"] = torch.tensor(seq[len(ids):], dtype=torch.long)
            if not args.no_cached_greedy:
                config = copy.deepcopy(model.generation_config)
                config.eos_token_id = None          # exactly N tokens, as the runtime's greedy
                config.do_sample = False
                try:
                    gen = model.generate(x, attention_mask=mask, generation_config=config,
                                         max_new_tokens=args.greedy, use_cache=True)
                    out["greedy_cached"] = gen[0, len(ids):].clone()
                except Exception as error:  # noqa: BLE001 - report and keep the rest of the bundle
                    print(f"warning: cached generate failed ({type(error).__name__}: {error}); "
                          "greedy_cached omitted", file=sys.stderr)
        if labels is not None:
            out["labels"] = torch.tensor(labels, dtype=torch.long)
    return {k: v.contiguous() for k, v in out.items()}


def main(argv=None):
    args = parse_args(argv)
    thresholds = [t for t in args.thresholds.split(",") if t.strip()]
    for t in thresholds:
        float(t)  # the text is the tensor name; it must parse as a number
    exit_steps = comma_list(args.exit_at_steps, int)

    import torch
    import transformers
    from safetensors.torch import save
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, trust_remote_code=True,
                                                 torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    prompts = collect_prompts(args, lambda: AutoTokenizer.from_pretrained(args.checkpoint, trust_remote_code=True))

    tensors = {}
    for n, (ids, labels) in enumerate(prompts):
        for suffix, value in capture_prompt(torch, model, ids, labels, args, thresholds, exit_steps).items():
            tensors[f"p{n}.{suffix}"] = value
        print(f"p{n}: {len(ids)} tokens", file=sys.stderr)

    config = model.config
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source_model": str(args.checkpoint),
        "source_revision": str(getattr(config, "_commit_hash", None) or ""),
        "total_ut_steps": str(config.total_ut_steps),
        "vocab_size": str(config.vocab_size),
        "hidden_size": str(config.hidden_size),
        "early_exit_threshold": json.dumps(getattr(config, "early_exit_threshold", None)),
        "dtype": "float32",
        "attn_implementation": "eager",
        "tool": "Scripts/reference_logits.py",
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "torch_num_threads": str(args.threads),
    }
    data = save(tensors, metadata=metadata)
    if not args.no_compress:
        import zstandard
        data = zstandard.ZstdCompressor(level=args.level, write_content_size=True).compress(data)
    with open(args.output, "wb") as f:
        f.write(data)
    print(f"wrote {args.output}: {len(prompts)} prompts, {len(data)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
