"""Drives `ouro serve` with the official openai client. Expected greedy answers come from the test
(computed with `ouro generate` on the same model), as JSON in argv[3]. Exits non-zero on a failure."""
import json
import sys
import threading

import openai

base_url, model, expected = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


ids = [m.id for m in client.models.list().data]
check(ids == [model], f"models.list gives {ids}")

# Completions, greedy: the text and token count `ouro generate --prompt` gives.
c = client.completions.create(model=model, prompt=expected["prompt"], max_tokens=expected["max_tokens"], temperature=0)
check(c.choices[0].text == expected["completion_text"], f"completion text {c.choices[0].text!r} != {expected['completion_text']!r}")
check(c.usage.completion_tokens == expected["completion_tokens"], f"completion usage {c.usage}")
check(c.usage.prompt_tokens == expected["prompt_tokens"], f"prompt usage {c.usage}")
check(c.choices[0].finish_reason in ("stop", "length"), f"finish_reason {c.choices[0].finish_reason}")
check(c.model_extra["ouro"]["loop_steps"] == 4, f"ouro object {c.model_extra.get('ouro')}")

# The same, streamed.
pieces, finish = [], None
for chunk in client.completions.create(model=model, prompt=expected["prompt"], max_tokens=expected["max_tokens"], temperature=0, stream=True):
    pieces.append(chunk.choices[0].text)
    finish = chunk.choices[0].finish_reason or finish
check("".join(pieces) == expected["completion_text"], f"streamed completion {''.join(pieces)!r}")
check(finish == c.choices[0].finish_reason, f"streamed finish_reason {finish}")

# Chat, greedy, through the model's template: the text `ouro generate --chat` gives.
messages = [{"role": "user", "content": expected["chat_user"]}]
r = client.chat.completions.create(model=model, messages=messages, max_tokens=expected["max_tokens"], temperature=0)
check(r.choices[0].message.content == expected["chat_text"], f"chat text {r.choices[0].message.content!r} != {expected['chat_text']!r}")
check(r.choices[0].message.role == "assistant", "chat role")
check(r.usage.prompt_tokens == expected["chat_prompt_tokens"], f"chat usage {r.usage}")

# Chat streamed, with usage in the last chunk.
pieces, usage = [], None
for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=expected["max_tokens"], temperature=0,
                                            stream=True, stream_options={"include_usage": True}):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
    if chunk.usage:
        usage = chunk.usage
check("".join(pieces) == expected["chat_text"], f"streamed chat {''.join(pieces)!r}")
check(usage is not None and usage.total_tokens == r.usage.total_tokens, f"streamed usage {usage} vs {r.usage}")

# Stop strings cut the text before the first match (the stop text itself is not sent).
text = expected["completion_text"]
if len(text) >= 4:
    stop = text[2:4]
    s = client.completions.create(model=model, prompt=expected["prompt"], max_tokens=expected["max_tokens"], temperature=0, stop=[stop])
    check(s.choices[0].text == text[: text.find(stop)], f"stop {stop!r}: {s.choices[0].text!r}")
    check(s.choices[0].finish_reason == "stop", "stop finish_reason")

# Sampling: the same seed gives the same text; top_p accepted.
a = client.completions.create(model=model, prompt=expected["prompt"], max_tokens=12, temperature=1.3, top_p=0.95, seed=7)
b = client.completions.create(model=model, prompt=expected["prompt"], max_tokens=12, temperature=1.3, top_p=0.95, seed=7)
check(a.choices[0].text == b.choices[0].text, "same seed, different text")

# Concurrent: six clients at once (more than --parallel), streamed and not, all get the greedy answers.
results = {}


def worker(i):
    try:
        if i % 2:
            out = "".join(ch.choices[0].delta.content or "" for ch in client.chat.completions.create(
                model=model, messages=messages, max_tokens=expected["max_tokens"], temperature=0, stream=True) if ch.choices)
            results[i] = out == expected["chat_text"]
        else:
            out = client.completions.create(model=model, prompt=expected["prompt"], max_tokens=expected["max_tokens"], temperature=0)
            results[i] = out.choices[0].text == expected["completion_text"]
    except Exception as error:  # noqa: BLE001 - reported below
        results[i] = f"{type(error).__name__}: {error}"


threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
for t in threads:
    t.start()
for t in threads:
    t.join()
check(all(v is True for v in results.values()) and len(results) == 6, f"concurrent results {results}")

# Errors surface as the client's exception types.
try:
    client.chat.completions.create(model="no-such-model", messages=messages, max_tokens=2)
    failures.append("unknown model accepted")
except openai.NotFoundError:
    pass
try:
    client.completions.create(model=model, prompt=expected["prompt"], max_tokens=10**6)
    failures.append("max_tokens beyond the context accepted")
except openai.BadRequestError as error:
    check(error.code == "context_length_exceeded", f"error code {error.code}")

if failures:
    print("\n".join(failures))
    sys.exit(1)
print("openai checks passed")
