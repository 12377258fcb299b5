#!/usr/bin/env python3
"""Load and throughput check for `ouro serve`, on loopback only, bounded in requests and time.

  load_serve.py MODEL.gguf [--ouro .build/release/ouro] [--requests 200] [--clients 8]
                [--throughput] [--streams 4] [--time-limit 900]

Starts `ouro serve MODEL` on 127.0.0.1 at a free port, then:
  load:        --requests completions (token-id prompts, half streamed) from --clients threads;
               every reply must be 200 and complete; the server's RSS is read after the first
               tenth of the requests and at the end (stable: the end is within 25% + 64 MiB).
  throughput:  (--throughput) aggregate decode tokens/s of 1 stream and of --streams concurrent
               streams (token chunks received while every stream is decoding: latest first token
               to earliest last token), alternated --rounds times in this run; reports the medians
               and their ratio,
               and the server's CPU time per generated token in each (the figure to compare on a
               loaded machine, where wall time measures the share of the cores the server got).
Prompts are token ids, so models without a tokenizer work. Stops the server (SIGTERM) at the end and
checks it exits 0. Exit code 0 only when there were no errors.
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time


def cpu_seconds(pid):
    """The process's user + system CPU seconds (Linux /proc), 0.0 where unavailable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Server:
    def __init__(self, ouro, model, extra):
        self.port = free_port()
        self.process = subprocess.Popen([ouro, "serve", model, "--port", str(self.port), "--name", "m"] + extra,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = []
        while True:
            line = self.process.stderr.readline()
            if not line:
                raise SystemExit("server did not start: " + "".join(seen))
            seen.append(line)
            if line.startswith("ouro serve:"):
                print(line.strip(), file=sys.stderr)
                break
        # Keep draining stderr so the server never blocks on a full pipe; pass on its profile lines
        # (OURO_SERVE_PROFILE=1, OURO_POOL_PROFILE=1 in the environment).
        def drain():
            for line in self.process.stderr:
                if line.startswith(("serve profile:", "pool:")):
                    print("  " + line.rstrip(), file=sys.stderr)
        threading.Thread(target=drain, daemon=True).start()

    def post(self, body, timeout):
        """(status, decoded JSON or list of SSE events, seconds to first token chunk or None, end time)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        started = time.monotonic()
        conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        reply = conn.getresponse()
        if not body.get("stream"):
            data = json.loads(reply.read())
            conn.close()
            return reply.status, data, None, time.monotonic(), []
        events, first, arrivals = [], None, []
        for raw in reply:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                events.append("[DONE]")
                break
            event = json.loads(line[6:])
            if event.get("choices"):
                arrived = time.monotonic()
                first = first or arrived
                arrivals.append(arrived)
            events.append(event)
        conn.close()
        return reply.status, events, first, time.monotonic(), arrivals

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


def load(server, args, vocab_limit):
    errors, lock, done = [], threading.Lock(), [0]
    rss = {}
    deadline = time.monotonic() + args.time_limit
    counter = iter(range(args.requests))

    def client(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            prompt = [rng.randrange(3, vocab_limit) for _ in range(rng.randrange(4, 24))]
            body = {"model": "m", "prompt": prompt, "max_tokens": args.max_tokens, "temperature": 0.8, "seed": i,
                    "stream": i % 2 == 1}
            try:
                status, data, _, _, _ = server.post(body, timeout=args.time_limit)
                ok = status == 200 and (data[-1] == "[DONE]" if body["stream"] else bool(data.get("choices")))
                if not ok:
                    with lock:
                        errors.append(f"request {i}: {status} {str(data)[:200]}")
            except Exception as error:  # noqa: BLE001 - every failure is counted
                with lock:
                    errors.append(f"request {i}: {type(error).__name__}: {error}")
            with lock:
                done[0] += 1
                if done[0] == max(1, args.requests // 10):
                    rss["warm"] = rss_mib(server.process.pid)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rss["end"] = rss_mib(server.process.pid)
    seconds = time.monotonic() - started
    stable = rss["end"] <= rss.get("warm", rss["end"]) * 1.25 + 64
    print(f"load: {done[0]}/{args.requests} requests from {args.clients} clients in {seconds:.1f} s, {len(errors)} errors; "
          f"RSS {rss.get('warm', 0):.0f} MiB after {args.requests // 10}, {rss['end']:.0f} MiB at the end ({'stable' if stable else 'GREW'})")
    for e in errors[:10]:
        print("  " + e)
    return not errors and done[0] == args.requests and stable


def throughput(server, args, vocab_limit):
    def run(streams, round_index):
        results = [None] * streams

        def one(k):
            rng = random.Random(1000 * round_index + k)
            prompt = [rng.randrange(3, vocab_limit) for _ in range(16)]
            body = {"model": "m", "prompt": prompt, "max_tokens": args.decode_tokens, "temperature": 0,
                    "stream": True, "stream_options": {"include_usage": True}}
            status, events, first, end, arrivals = server.post(body, timeout=args.time_limit)
            usage = next((e["usage"] for e in events if isinstance(e, dict) and e.get("usage")), None)
            results[k] = (status, usage["completion_tokens"] if usage else 0, first, end, arrivals)

        threads = [threading.Thread(target=one, args=(k,)) for k in range(streams)]
        cpu0 = cpu_seconds(server.process.pid)
        client0 = time.process_time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        cpu = cpu_seconds(server.process.pid) - cpu0
        client_cpu = time.process_time() - client0
        if any(r[0] != 200 or r[2] is None for r in results):
            raise SystemExit(f"throughput run failed: {results}")
        # Whole window: from the earliest first token to the last end. It includes any step that
        # prefilled a stream arriving late (the server admits requests between steps), so the
        # reported rate is the steady window's, below.
        tokens = sum(r[1] - 1 for r in results)
        window = max(r[3] for r in results) - min(r[2] for r in results)
        # Steady window: every stream decoding (latest first token to earliest last token); the
        # token chunks that arrived inside it, after its start.
        start, stop = max(r[2] for r in results), min(r[4][-1] for r in results)
        inside = sum(1 for r in results for t in r[4] if start < t <= stop)
        steady = inside / (stop - start) if stop > start else 0.0
        print(f"    {streams} stream(s): whole window {tokens / window:.2f} tok/s; first tokens {', '.join(f'{r[2] - min(x[2] for x in results):.2f}' for r in results)} s after "
              f"the earliest; steady window {stop - start:.2f} s, {inside} tokens, {steady:.2f} tok/s; client CPU "
              f"{1000 * client_cpu / max(1, sum(r[1] for r in results)):.1f} ms per token", file=sys.stderr)
        # Server CPU per generated token (prompts included): on a loaded machine wall time measures
        # the share of the cores the server got, CPU time what the work cost.
        return steady, 1000 * cpu / max(1, sum(r[1] for r in results))

    singles, batched, single_cpu, batched_cpu = [], [], [], []
    for r in range(args.rounds):
        rate, cpu = run(1, r)
        singles.append(rate)
        single_cpu.append(cpu)
        rate, cpu = run(args.streams, r)
        batched.append(rate)
        batched_cpu.append(cpu)
        print(f"  round {r + 1}: 1 stream {singles[-1]:.2f} tok/s, {args.streams} streams {batched[-1]:.2f} tok/s aggregate; "
              f"server CPU per token {single_cpu[-1]:.1f} / {batched_cpu[-1]:.1f} ms", file=sys.stderr)
    one, many = statistics.median(singles), statistics.median(batched)
    one_cpu, many_cpu = statistics.median(single_cpu), statistics.median(batched_cpu)
    print(f"throughput: 1 stream {one:.2f} tok/s, {args.streams} concurrent streams {many:.2f} tok/s aggregate "
          f"(median of {args.rounds}); ratio {many / one:.2f}x; server CPU per token {one_cpu:.1f} -> {many_cpu:.1f} ms "
          f"({one_cpu / many_cpu if many_cpu else 0:.2f}x)")
    return many / one


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--ouro", default=".build/release/ouro")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16, help="tokens per load request")
    parser.add_argument("--parallel", type=int, default=4, help="the server's --parallel")
    parser.add_argument("--ctx", type=int, default=128, help="the server's --ctx")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--vocab", type=int, default=256, help="prompt token ids are drawn from 3..<VOCAB")
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--throughput", action="store_true")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--decode-tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-args", default="", help="more arguments for ouro serve (split on spaces); with an equals sign, e.g. --server-args=--pack-weights")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds the load phase may take")
    args = parser.parse_args()
    if args.requests > 1000 or args.clients > 32:
        raise SystemExit("at most 1000 requests and 32 clients")

    extra = ["--parallel", str(max(args.parallel, args.streams if args.throughput else 1)), "--ctx", str(args.ctx),
             "--queue", str(args.clients)]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    extra += args.server_args.split()
    server = Server(args.ouro, args.model, extra)
    ok = True
    try:
        if not args.skip_load:
            ok = load(server, args, args.vocab) and ok
        if args.throughput:
            throughput(server, args, args.vocab)
    finally:
        status = server.stop()
        print(f"server exit status after SIGTERM: {status}")
        ok = ok and status == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
