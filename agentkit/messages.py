"""Chat messages: the OpenAI chat format plus what DeepSeek adds (reasoning, prefix).

Tool-call ``arguments`` stay a JSON *string* end to end, because that is what providers send
and what the official DeepSeek template inlines verbatim. ``to_openai``/``message_from_openai``
round-trip a provider's message dict losslessly: unknown keys are kept in ``extra``.
"""

from __future__ import annotations

import json
import operator
import uuid
from typing import Annotated, Any, Iterable, Literal, Sequence, Union

from pydantic import BaseModel, ConfigDict, Field

# Keys we map to typed fields; anything else a provider sends survives in ``extra``.
_REASONING_KEYS = ("reasoning_content", "reasoning")


def new_tool_call_id() -> str:
    """A fresh tool-call id in OpenAI's style (``call_`` + 24 hex digits)."""
    return "call_" + uuid.uuid4().hex[:24]


class ToolCall(BaseModel):
    """One tool call of an assistant turn: ``id``, tool ``name`` and ``arguments`` as a JSON string."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_tool_call_id)
    name: str
    arguments: str = "{}"  # JSON text, exactly as the model produced it
    extra: dict[str, Any] = Field(default_factory=dict)  # e.g. "index", provider-specific keys

    __slots__ = ("_edits",)  # edits, for ``SeenConversation``; a slot, so equality never sees it

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        _bump(self)

    def parsed_arguments(self) -> Any:
        """The arguments decoded; raises ``json.JSONDecodeError`` on invalid JSON."""
        return json.loads(self.arguments) if self.arguments.strip() else {}

    def to_openai(self) -> dict[str, Any]:
        """This call in OpenAI's ``{id, type, function: {name, arguments}}`` form."""
        out: dict[str, Any] = {"id": self.id, "type": "function",
                               "function": {"name": self.name, "arguments": self.arguments}}
        out.update(self.extra)
        return out

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> "ToolCall":
        """A call from OpenAI's form (object arguments are serialized to a JSON string)."""
        fn = data.get("function") or {}
        args = fn.get("arguments")
        if args is None:
            args = ""
        elif not isinstance(args, str):  # some servers send an object; keep it as JSON text
            args = json.dumps(args, ensure_ascii=False)
        extra = {k: v for k, v in data.items() if k not in ("id", "type", "function")}
        return cls(id=data.get("id") or new_tool_call_id(), name=fn.get("name") or "",
                   arguments=args, extra=extra)


class Usage(BaseModel):
    """Token usage of one call (or a sum). ``cost_usd`` is None when it cannot be known."""

    model_config = ConfigDict(extra="forbid")

    prompt: int = 0
    completion: int = 0
    reasoning: int = 0  # part of ``completion``
    cached: int = 0  # part of ``prompt`` served from the provider's cache
    cost_usd: float | None = 0.0

    @property
    def total(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt + self.completion

    def __add__(self, other: "Usage") -> "Usage":
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return Usage(prompt=self.prompt + other.prompt, completion=self.completion + other.completion,
                     reasoning=self.reasoning + other.reasoning, cached=self.cached + other.cached,
                     cost_usd=cost)


def _stamped(obj: Any) -> int:
    """How many times fields of ``obj`` were reassigned (counting from its first stamp)."""
    try:
        return obj._edits  # type: ignore[no-any-return]
    except AttributeError:  # never edited nor stamped: start counting here
        object.__setattr__(obj, "_edits", 0)
        return 0


def _bump(obj: Any) -> None:
    object.__setattr__(obj, "_edits", _stamped(obj) + 1)


_EDITS = operator.attrgetter("_edits")


class SeenConversation:
    """A conversation as one cache last saw it: its message objects, their tool calls, and how
    often each was edited then. The cache that holds it (the model client's request dicts, a
    ``PromptCounter``) asks whether the next conversation only grew from it; nothing here is
    shared between caches or kept anywhere else.

    Seen as edits: a field of a message or of one of its tool calls reassigned (``msg.content =
    ...``, ``msg.tool_calls = [...]``). Not seen: changes inside a dict or list value (``extra``,
    content parts, ``tool_calls.append``); assign a new value instead. OpenAI dicts never count
    as unchanged."""

    __slots__ = ("messages", "stamps", "calls", "call_stamps", "typed")

    def __init__(self, messages: Iterable[Any] = ()) -> None:
        self.messages: list[Any] = []
        self.stamps: list[int] = []
        self.calls: list[ToolCall] = []
        self.call_stamps: list[int] = []
        self.typed = True
        self.extend(messages)

    def grown_into(self, messages: Sequence[Any]) -> bool:
        """Whether ``messages`` begins with the very same message objects, none edited since (it
        may have more after them); what a cache made from them still holds for that prefix."""
        return (self.typed and len(messages) >= len(self.messages) and all(map(operator.is_, messages, self.messages))
                and list(map(_EDITS, self.messages)) == self.stamps
                and list(map(_EDITS, self.calls)) == self.call_stamps)

    def extend(self, messages: Sequence[Any] | Iterable[Any]) -> "SeenConversation":
        """See ``messages`` (the conversation so far: only those past the ones seen are new)."""
        new = list(messages)[len(self.messages):]
        for m in new:
            if not isinstance(m, _Base):
                self.typed = False
                continue
            self.stamps.append(_stamped(m))
            for c in m.__dict__.get("tool_calls") or ():
                self.calls.append(c)
                self.call_stamps.append(_stamped(c))
        self.messages += new
        return self




class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)  # unknown provider keys, kept verbatim

    __slots__ = ("_edits",)  # edits, for ``SeenConversation``; a slot, so equality never sees it

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        _bump(self)

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role}  # type: ignore[attr-defined]
        out.update(self._fields_to_openai())
        if self.name is not None:
            out["name"] = self.name
        out.update(self.extra)
        return out

    def _fields_to_openai(self) -> dict[str, Any]:
        return {"content": self.content}  # type: ignore[attr-defined]

    @property
    def text(self) -> str:
        """The content as plain text (content parts joined)."""
        return content_text(getattr(self, "content", None))


Content = Union[str, list[dict[str, Any]]]


class SystemMessage(_Base):
    """The system prompt."""

    role: Literal["system"] = "system"
    content: Content = ""


class UserMessage(_Base):
    """A user turn (also the agent runtime's notes to the model)."""

    role: Literal["user"] = "user"
    content: Content = ""


class AssistantMessage(_Base):
    """A model turn: ``content``, optional ``reasoning``, and its ``tool_calls``."""

    role: Literal["assistant"] = "assistant"
    content: Content | None = None
    reasoning: str | None = None
    # Which key the reasoning came in ("reasoning_content" or "reasoning"), so it goes back the same way.
    reasoning_key: str | None = None
    reasoning_details: list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    prefix: bool | None = None  # DeepSeek chat-prefix completion

    def _fields_to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"content": self.content}
        # Reasoning that arrived only inside ``reasoning_details`` goes back only there.
        if self.reasoning is not None and (self.reasoning_key or self.reasoning_details is None):
            out[self.reasoning_key or "reasoning_content"] = self.reasoning
        if self.reasoning_details is not None:
            out["reasoning_details"] = self.reasoning_details
        if self.tool_calls:
            out["tool_calls"] = [c.to_openai() for c in self.tool_calls]
        if self.prefix is not None:
            out["prefix"] = self.prefix
        return out


class ToolMessage(_Base):
    """A tool's result, answering the call ``tool_call_id``."""

    role: Literal["tool"] = "tool"
    tool_call_id: str
    content: Content = ""

    def _fields_to_openai(self) -> dict[str, Any]:
        return {"tool_call_id": self.tool_call_id, "content": self.content}


Message = Annotated[Union[SystemMessage, UserMessage, AssistantMessage, ToolMessage],
                    Field(discriminator="role")]
_BY_ROLE: dict[str, type[_Base]] = {"system": SystemMessage, "user": UserMessage,
                                    "assistant": AssistantMessage, "tool": ToolMessage}
_TYPED_KEYS = {"role", "content", "name", "tool_call_id", "tool_calls", "prefix",
               "reasoning_details", *_REASONING_KEYS}


def content_text(content: Content | None) -> str:
    """The text of a message content (a string, or the text parts of a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def reasoning_from_details(details: Iterable[dict[str, Any]] | None) -> str | None:
    """Join the readable text of OpenRouter ``reasoning_details`` entries (None when there is none)."""
    parts = [d.get("text") or d.get("summary") or "" for d in details or () if isinstance(d, dict)]
    text = "".join(p for p in parts if isinstance(p, str))
    return text or None


def message_from_openai(data: dict[str, Any]) -> Message:
    """Build a typed message from an OpenAI-format dict; raises ``ValueError`` on an unknown role."""
    role = data.get("role")
    cls = _BY_ROLE.get(role or "")
    if cls is None:
        raise ValueError(f"unknown message role {role!r}; expected one of {sorted(_BY_ROLE)}")
    fields: dict[str, Any] = {"extra": {k: v for k, v in data.items() if k not in _TYPED_KEYS}}
    if "name" in data:
        fields["name"] = data["name"]
    if "content" in data:
        fields["content"] = data["content"]
    if cls is ToolMessage:
        fields["tool_call_id"] = data.get("tool_call_id") or ""
    if cls is AssistantMessage:
        for key in _REASONING_KEYS:
            if data.get(key) is not None:
                fields["reasoning"], fields["reasoning_key"] = data[key], key
                break
        if "reasoning_details" in data:
            fields["reasoning_details"] = data["reasoning_details"]
            if "reasoning" not in fields:
                fields["reasoning"] = reasoning_from_details(data["reasoning_details"])
        fields["tool_calls"] = [ToolCall.from_openai(c) for c in data.get("tool_calls") or []]
        if "tool_calls" in data and not data["tool_calls"]:
            fields["extra"]["tool_calls"] = data["tool_calls"]  # keep an explicit [] or null
        if "prefix" in data:
            fields["prefix"] = data["prefix"]
    elif "reasoning_content" in data or "reasoning" in data:
        for key in _REASONING_KEYS:
            if key in data:
                fields["extra"][key] = data[key]
    return cls(**fields)  # type: ignore[return-value]


def to_openai(message: Message) -> dict[str, Any]:
    """One message in the OpenAI chat format."""
    return message.to_openai()


def messages_to_openai(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Messages in the OpenAI chat format."""
    return [to_openai(m) for m in messages]


def messages_from_openai(items: Iterable[dict[str, Any]]) -> list[Message]:
    """Messages from the OpenAI chat format."""
    return [message_from_openai(d) for d in items]
