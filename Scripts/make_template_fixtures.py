#!/usr/bin/env python3
"""Renders real chat templates with Python's jinja2 exactly as transformers does, writing the expected
outputs that Tests/OuroTokenizerTests/ChatTemplateFixtureTests compare our renderer against byte for byte.

Needs jinja2 (PyPI), in a venv outside the repository:
    python3 -m venv /tmp/venv-jinja && /tmp/venv-jinja/bin/pip install jinja2
    /tmp/venv-jinja/bin/python Scripts/make_template_fixtures.py

transformers is not needed: `environment()` below reproduces its `_compile_jinja_template`
(transformers/utils/chat_template_utils.py): an ImmutableSandboxedEnvironment with trim_blocks and
lstrip_blocks, the `{% generation %}` tag and loopcontrols extensions, `raise_exception` and a `tojson` filter that is plain
json.dumps(ensure_ascii=False) rather than jinja2's HTML-escaping one. `apply_chat_template` renders
with messages, tools=None, documents=None, add_generation_prompt, the special tokens (bos_token,
eos_token when set) and extra keyword arguments such as enable_thinking.

Writes Tests/Fixtures/templates/{templates,conversations,expected}.json.
"""
import json
import os

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "templates")

# The templates are test data, each quoted from the model's tokenizer_config.json `chat_template`
# (the JSON string decoded), with where the text was found.
TEMPLATES = [
    {
        "name": "smollm2",
        "source": "HuggingFaceTB/SmolLM2-135M-Instruct tokenizer_config.json chat_template "
                  "(Ouro uses the SmolLM2 tokenizer and ChatML); text as quoted verbatim in public "
                  "code that tests against SmolLM2's GGUF tokenizer.chat_template",
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "chat_template": "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                         "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
                         "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
                         "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    },
    {
        "name": "ouro-thinking",
        "source": "github.com/LoopedLMs/ouro_rl templates/ouro_chat.j2 (Ouro-1.4B-Thinking ChatML with "
                  "enable_thinking; upstream special tokens are all <|endoftext|>)",
        "bos_token": "<|endoftext|>",
        "eos_token": "<|endoftext|>",
        "chat_template": "{# Ouro chat template with enable_thinking support (PR pending upstream). #}\n"
                         "{# When enable_thinking=True, prepends <think>\\n to trigger CoT reasoning. #}\n"
                         "{%- if messages[0]['role'] == 'system' -%}\n"
                         "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
                         "{%- else -%}\n"
                         "    {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}\n"
                         "{%- endif -%}\n"
                         "{%- for message in messages -%}\n"
                         "    {%- if message.role == 'system' and loop.first -%}\n"
                         "        {# Skip #}\n"
                         "    {%- else -%}\n"
                         "        {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\n"
                         "    {%- endif -%}\n"
                         "{%- endfor -%}\n"
                         "{%- if add_generation_prompt -%}\n"
                         "    {{- '<|im_start|>assistant\\n' }}\n"
                         "    {%- if enable_thinking is defined and enable_thinking is true -%}\n"
                         "        {{- '<think>\\n' }}\n"
                         "    {%- endif -%}\n"
                         "{%- endif -%}\n",
    },
    {
        "name": "llama3",
        "source": "meta-llama/Meta-Llama-3-8B-Instruct tokenizer_config.json chat_template (as quoted, with "
                  "that URL, in public code)",
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>",
        "chat_template": "{% set loop_messages = messages %}{% for message in loop_messages %}"
                         "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
                         "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
                         "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
    },
    {
        "name": "mistral",
        "source": "mistralai/Mistral-7B-Instruct-v0.2 and Mixtral-8x7B-Instruct-v0.1 tokenizer_config.json chat_template",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "chat_template": "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                         "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
                         "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
                         "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
                         "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}",
    },
    {
        "name": "gemma",
        "source": "google/gemma-7b-it tokenizer_config.json chat_template",
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "chat_template": "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
                         "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                         "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
                         "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
                         "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
                         "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}",
    },
    {
        "name": "qwen2.5",
        "source": "Qwen/Qwen2.5-*-Instruct tokenizer_config.json chat_template (tools branch, default system prompt)",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "chat_template": "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\" and not message.tool_calls) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n",
    },
    {
        "name": "qwen3",
        "source": "Qwen/Qwen3 tokenizer_config.json chat_template, first release (namespace, messages[::-1], "
                  "split/strip on <think> blocks, enable_thinking); as quoted in github.com/wangling03/BioReason "
                  "bioreason/models/dl/chat_template_dl.py (qwen3_chat_template)",
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "chat_template": "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0].role == 'system' %}\n        {{- messages[0].content + '\\n\\n' }}\n    {%- endif %}\n    {{- \"# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n    {%- if messages[0].role == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}\n{%- for message in messages[::-1] %}\n    {%- set index = (messages|length - 1) - loop.index0 %}\n    {%- if ns.multi_step_tool and message.role == \"user\" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}\n        {%- set ns.multi_step_tool = false %}\n        {%- set ns.last_query_index = index %}\n    {%- endif %}\n{%- endfor %}\n{%- for message in messages %}\n    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) %}\n        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n    {%- elif message.role == \"assistant\" %}\n        {%- set content = message.content %}\n        {%- set reasoning_content = '' %}\n        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}\n            {%- set reasoning_content = message.reasoning_content %}\n        {%- else %}\n            {%- if '</think>' in message.content %}\n                {%- set content = message.content.split('</think>')[-1].lstrip('\\n') %}\n                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}\n            {%- endif %}\n        {%- endif %}\n        {%- if loop.index0 > ns.last_query_index %}\n            {%- if loop.last or (not loop.last and reasoning_content) %}\n                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}\n            {%- else %}\n                {{- '<|im_start|>' + message.role + '\\n' + content }}\n            {%- endif %}\n        {%- else %}\n            {{- '<|im_start|>' + message.role + '\\n' + content }}\n        {%- endif %}\n        {%- if message.tool_calls %}\n            {%- for tool_call in message.tool_calls %}\n                {%- if (loop.first and content) or (not loop.first) %}\n                    {{- '\\n' }}\n                {%- endif %}\n                {%- if tool_call.function %}\n                    {%- set tool_call = tool_call.function %}\n                {%- endif %}\n                {{- '<tool_call>\\n{\"name\": \"' }}\n                {{- tool_call.name }}\n                {{- '\", \"arguments\": ' }}\n                {%- if tool_call.arguments is string %}\n                    {{- tool_call.arguments }}\n                {%- else %}\n                    {{- tool_call.arguments | tojson }}\n                {%- endif %}\n                {{- '}\\n</tool_call>' }}\n            {%- endfor %}\n        {%- endif %}\n        {{- '<|im_end|>\\n' }}\n    {%- elif message.role == \"tool\" %}\n        {%- if loop.first or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n    {%- if enable_thinking is defined and enable_thinking is false %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- endif %}\n{%- endif %}",
    },
]

# Templates whose output depends on enable_thinking: rendered without it, with true and with false.
THINKING = {"ouro-thinking", "qwen3"}

CONVERSATIONS = [
    {"name": "user", "messages": [{"role": "user", "content": "Hello!"}]},
    {"name": "system-user", "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+2?"}]},
    {"name": "multi-turn", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."}]},
    {"name": "system-multi-turn", "messages": [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Good morning"},
        {"role": "assistant", "content": "Bonjour"},
        {"role": "user", "content": "Thanks"}]},
    {"name": "whitespace-unicode-think", "messages": [
        {"role": "user", "content": "  Ünïcödé — 日本語 \"quotes\" 'single' \\backslash\\ {{ not a tag }}  \n"},
        {"role": "assistant", "content": "\n<think>\nLet me reason.\n</think>\n\nAnswer: 42 "},
        {"role": "user", "content": "Why?\t"}]},
    {"name": "assistant-last", "messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nshort\n</think>\n\nHello"}]},
    {"name": "tool-calls", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {
                "city": "Paris", "unit": "°C", "days": 3, "precise": True, "limit": 2.5,
                "extra": None, "tags": ["a", "b\n\"c\""]}}}]},
        {"role": "tool", "content": "{\"temp\": 21}"},
        {"role": "tool", "content": "sunny"},
        {"role": "user", "content": "Thanks"}]},
]


# Small templates that pin down one jinja2 rule each (whitespace control, scoping, Python semantics);
# rendered with VARIABLES. Where jinja2 fails, ours must fail too.
FEATURES = [
    "{% set c = 0 %}{% for i in [1,2] %}{{ c }}{% set c = c + 1 %}{{ c }}{% endfor %}{{ c }}",
    "{% for i in [1,2] %}{% if i == 1 %}{% set c = 5 %}{% endif %}{{ c }}{% endfor %}",
    "{% for i in [1,2] %}{% set i = i * 10 %}{{ i }}{% endfor %}",
    "{% set ns = namespace(a=1, b='x') %}{% for i in [1,2] %}{% set ns.a = ns.a + i %}{% endfor %}{{ ns.a }}{{ ns.b }}",
    "{# c #}\nA\n  {# d #}\nB",
    "  {% if true %}\nX{% endif %}\n",
    "{{ 'a' }}\n  {% if true %}Y{% endif %}",
    "A  \n  {%- if true -%}  \n  B  {%+ if true +%}\nC{% endif %}{% endif %}\n\n",
    "{%- for m in messages %}\n  {{- m.role }}: {{ m.content -}}\n{% endfor %}\n",
    "line\r\n  {% if true %}x{% endif %}\r\n",
    "{{ [1, 'a', None, True, 1.5, {'k': 'v'}, (1,), ('it\\'s',)] }}",
    "{{ x }}|{{ x is defined }}|{{ x | length }}|{{ x ~ 'a' }}|{{ x is undefined }}",
    "{{ x.y }}",
    "{{ x['y'] }}",
    "{{ none.y }}|{{ 'abc'.nothing }}|{{ d.missing }}",
    "{{ 1 == 1.0 }} {{ true == 1 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ -7 // 2 }} {{ 2 ** 10 }} {{ 7 % -3 }}",
    "{{ 'a\\tb\\x41\\u00e9\\d\\'' \"q\" }}",
    "{{ {'a': 'é\"\\n', 'b': [1, 2.5, None, true, {}], 'c': []} | tojson }}",
    "{{ d | tojson(indent=2) }}",
    "{{ 'abc'[::-1] }} {{ [1,2,3][1:] }} {{ [1,2,3,4,5][-2:] }} {{ [1,2,3,4,5][::2] }} {{ 'hello'[1:-1] }} {{ [1,2,3][5:] }} {{ 'abcdef'[4:1:-1] }}",
    "{{ 'a b  c '.split() }} {{ 'x,y,,z'.split(',') }} {{ 'a b c'.split(' ', 1) }} {{ '  '.split() }}",
    "{{ ' x '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '  a' | trim }}|{{ '\\n\\na\\n'.lstrip('\\n') }}|{{ 'ab\\n'.rstrip() }}",
    "{{ 'Hello'.startswith('He') }} {{ 'Hello'.endswith(('x', 'lo')) }} {{ 'ab'.upper() }}{{ 'AB'.lower() }} {{ 'hELLO wORLD'.capitalize() }}",
    "{{ 'a-b-c'.replace('-', '+') }} {{ ', '.join(['x', 'y']) }} {{ 'abc'.find('c') }} {{ 'abc'.find('z') }}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{{ d.keys() | list }}{{ d.get('a') }}{{ d.get('zz', 'dflt') }}{{ d.get('zz') }}",
    "{{ 'abc' is string }} {{ none is none }} {{ 3 is number }} {{ true is number }} {{ true is integer }} {{ 1 is true }} {{ true is true }} {{ 2.0 is float }} {{ d is mapping }} {{ 'x' is sequence }}",
    "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 'a' is in ['a'] }} {{ 1 is eq 1 }} {{ x is not defined }}",
    "{{ raise_exception('boom') }}",
    "{{ 1 if true else 2 }} {{ 'a' if false }}| {{ 'y' if none else 'n' if false else 'z' }}",
    "{{ 0.1 + 0.2 }} {{ 1e20 }} {{ 1.0 }} {{ 10 ** 15 }} {{ 2.5e-7 }} {{ 1234567890123456.0 }} {{ 1e16 }} {{ 0.0001 }} {{ 0.00001 }} {{ -1.5 }} {{ 3 / 7 }}",
    "{{ 'a' + 1 }}",
    "{% for m in [1,2,3] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }};{% endfor %}",
    "{% for m in [1,2,3,4] if m is even %}{{ loop.index }}/{{ loop.length }}:{{ m }} {% else %}none{% endfor %}",
    "{% for m in [] %}x{% else %}empty{% endfor %}{% for c in 'ab' %}[{{ c }}]{% endfor %}{% for k in d %}<{{ k }}>{% endfor %}",
    "{% for i in [1,2,3,4] %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "{% for i in [1,2] %}{% for j in ['a','b'] %}{{ loop.index }}{{ j }}{% endfor %}{{ loop.index }}{% endfor %}",
    "{{ 'ab' in 'cabd' }} {{ 'x' not in ['y'] }} {{ 'a' in d }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }}",
    "{{ 1 < 'a' }}",
    "{{ not 1 == 2 }} {{ 0 or 'x' }} {{ 'a' and 'b' }} {{ none or [] }} {{ not none is none }}",
    "{{ 'x' ~ 1 ~ none ~ true ~ 2.0 }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ -(3) }} {{ - 2 | abs }}",
    "{{ messages | length }} {{ messages[0]['content'] | upper }} {{ messages[-1].role }} {{ messages | first | tojson }} {{ (messages | last).content }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 2) %}{{ t }}{{ t | length }}",
    "{% set block %}  inner {{ 1 + 1 }}\n{% endset %}[{{ block }}]",
    "{{ [3, 1, 2] | reverse | list }} {{ 'abc' | reverse }} {{ ['a', 'b'] | join('-') }} {{ [1, 2] | join }} {{ x | default('dflt') }} {{ '' | default('e', true) }} {{ 'v' | d('w') }}",
    "{{ '5' | int + 1 }} {{ 2.7 | int }} {{ '2.5' | float }} {{ -3 | abs }} {{ 'A B' | lower }} {{ 'ab' | capitalize }} {{ 'x y' | replace(' ', '_') }} {{ 42 | string }} {{ none | string }}",
    "{{ d | items | list }} {{ {'z': 1, 'a': [2]} | tojson(sort_keys=true) }}",
    "{% if x is defined and x.y %}bad{% elif 1 %}ok{% else %}no{% endif %}",
    "{{ range(3) | list }} {{ range(1, 7, 2) | list }}",
    "{% generation %}gen {{ 1 }}{% endgeneration %}",
    "{{ messages[0].content[1:] }} {{ messages[0]['content'][0] }} {{ messages[5] is defined }}",
]
VARIABLES = {
    "messages": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Yo"}],
    "d": {"a": 1, "b": [True, None, "é"], "c": {"n": 1.5}},
}


class AssistantTracker(Extension):
    """transformers' `{% generation %}` tag, minus the assistant-mask bookkeeping: renders its body."""
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    def _generation_support(self, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, "jinja2.ext.loopcontrols"])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    return env


def main():
    env = environment()
    expected = []
    for template in TEMPLATES:
        compiled = env.from_string(template["chat_template"])
        specials = {k: template[k] for k in ("bos_token", "eos_token") if template[k] is not None}
        thinking_values = [None, True, False] if template["name"] in THINKING else [None]
        for conversation in CONVERSATIONS:
            for add_generation_prompt in (False, True):
                for thinking in thinking_values:
                    extra = {} if thinking is None else {"enable_thinking": thinking}
                    case = {"template": template["name"], "conversation": conversation["name"],
                            "add_generation_prompt": add_generation_prompt, **extra}
                    try:
                        case["output"] = compiled.render(messages=conversation["messages"], tools=None, documents=None,
                                                         add_generation_prompt=add_generation_prompt, **specials, **extra)
                    except jinja2.exceptions.TemplateError as error:
                        case["error"] = str(error)
                    expected.append(case)
    features = []
    for source in FEATURES:
        case = {"template": source}
        try:
            case["output"] = env.from_string(source).render(**VARIABLES)
        except jinja2.exceptions.TemplateError as error:
            case["error"] = type(error).__name__ + ": " + str(error)
        except Exception as error:  # a Python error inside the template (TypeError...)
            case["error"] = type(error).__name__ + ": " + str(error)
        features.append(case)
    os.makedirs(OUT, exist_ok=True)
    for name, value in [("templates", TEMPLATES), ("conversations", CONVERSATIONS), ("expected", expected),
                        ("features", {"variables": VARIABLES, "cases": features})]:
        with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
            json.dump(value, f, ensure_ascii=False, indent=1)
            f.write("\n")
    errors = sum("error" in c for c in expected)
    print(f"{len(expected)} renders ({errors} raise_exception) of {len(TEMPLATES)} templates with jinja2 {jinja2.__version__}")


if __name__ == "__main__":
    main()
