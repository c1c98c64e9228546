"""A model's own chat template (Jinja, as Hugging Face tokenizers and GGUF files carry it).

Used for a local model whose GGUF has `tokenizer.chat_template` in its metadata, or whose
configuration gives one (`chat_template`). Tool calls and results have no role every template
knows: a call is the assistant's JSON text, a result a user message "Tool (name): ...", and
consecutive messages of one role are merged, since many templates insist that roles alternate.
Generation stops at the end-of-sequence token and at every turn-end marker the template uses.
"""

from __future__ import annotations

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from server.inference.backend import GenerationRequest, Role
from server.inference.prompt import line
from server.inference.toolcalls import instructions

# Turn-end markers of the common template families; those the template names are stop strings.
TURN_ENDS = ("<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|end|>", "</s>", "<|endoftext|>")


class ChatTemplate:
    def __init__(self, template: str, *, eos_token: str) -> None:
        # The completion call adds the BOS token itself: the template must not add a second.
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos_token, bos_token="")
        self.stops = sorted({eos_token, *(end for end in TURN_ENDS if end in template)} - {""})

    def render(self, request: GenerationRequest) -> str:
        if not request.turns:
            return request.prompt
        messages: list[dict[str, str]] = []
        system = "\n\n".join(turn.content.strip() for turn in request.turns if turn.role is Role.SYSTEM)
        if request.wants_tool_call:
            system = f"{system}\n\n{instructions(request.tools, request.tool_choice)}".strip()
        if system:
            messages.append({"role": "system", "content": system})
        for turn in request.turns:
            if turn.role is Role.SYSTEM:
                continue
            role = "assistant" if turn.role is Role.ASSISTANT else "user"
            content = line(turn).partition(": ")[2] if turn.role is not Role.TOOL else line(turn)
            if messages and messages[-1]["role"] == role:
                messages[-1]["content"] += "\n" + content
            else:
                messages.append({"role": role, "content": content})
        return self._formatter(messages=messages).prompt  # type: ignore[arg-type]
