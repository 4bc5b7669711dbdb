"""Chat messages: the OpenAI chat format plus what DeepSeek adds (reasoning, prefix).

Tool-call ``arguments`` stay a JSON *string* end to end, because that is what providers send
and what the official DeepSeek template inlines verbatim. ``to_openai``/``message_from_openai``
round-trip a provider's message dict losslessly: unknown keys are kept in ``extra``.
"""

from __future__ import annotations

import json
import uuid
import weakref
from typing import Annotated, Any, Callable, Hashable, Iterable, Literal, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field

# Keys we map to typed fields; anything else a provider sends survives in ``extra``.
_REASONING_KEYS = ("reasoning_content", "reasoning")


def new_tool_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_tool_call_id)
    name: str
    arguments: str = "{}"  # JSON text, exactly as the model produced it
    extra: dict[str, Any] = Field(default_factory=dict)  # e.g. "index", provider-specific keys

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        EDITS[0] += 1  # a message memo made with this call is stale (see ``_Base.memo``)

    def parsed_arguments(self) -> Any:
        """The arguments decoded; raises ``json.JSONDecodeError`` on invalid JSON."""
        return json.loads(self.arguments) if self.arguments.strip() else {}

    def to_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": "function",
                               "function": {"name": self.name, "arguments": self.arguments}}
        out.update(self.extra)
        return out

    @classmethod
    def from_openai(cls, data: dict[str, Any]) -> "ToolCall":
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
        return self.prompt + self.completion

    def __add__(self, other: "Usage") -> "Usage":
        cost = None if self.cost_usd is None or other.cost_usd is None else self.cost_usd + other.cost_usd
        return Usage(prompt=self.prompt + other.prompt, completion=self.completion + other.completion,
                     reasoning=self.reasoning + other.reasoning, cached=self.cached + other.cached,
                     cost_usd=cost)


T = TypeVar("T")

# Derived forms of messages (a provider's request dict, the template's view), keyed by id(message).
# Not a private attribute: pydantic compares those in ``==``, and equal messages must stay equal.
_MEMOS: dict[int, tuple["weakref.ref[Any]", Any, dict[Hashable, Any]]] = {}


class _KeyedRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference that knows its ``_MEMOS`` key: one shared callback instead of a lambda
    (and its defaults tuple) per message, two fewer objects for the garbage collector to track."""

    __slots__ = ("key",)

    def __new__(cls, obj: Any, key: int) -> "_KeyedRef":
        self = super().__new__(cls, obj, _forget)  # the callback is taken here, not in __init__
        self.key = key
        return self

    def __init__(self, obj: Any, key: int) -> None:
        super().__init__(obj, _forget)


def _forget(ref: _KeyedRef) -> None:
    entry = _MEMOS.get(ref.key)
    if entry is not None and entry[0] is ref:
        del _MEMOS[ref.key]


# Bumped whenever a field of any message or tool call is reassigned (rare in practice): lets a
# cache that saw a list of messages know whether any of them may have changed since.
EDITS = [0]


class SeenConversation:
    """A conversation as a cache last saw it: its message objects, and ``EDITS`` at that time."""

    __slots__ = ("messages", "edits")

    def __init__(self, messages: Iterable[Any]) -> None:
        self.messages = list(messages)
        self.edits = EDITS[0]

    def grown_into(self, messages: Any) -> bool:
        """Whether ``messages`` begins with the very same message objects, none edited since (it
        may have more after them); what a cache made from them still holds for that prefix."""
        n = len(self.messages)
        return self.edits == EDITS[0] and len(messages) >= n and messages[:n] == self.messages


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)  # unknown provider keys, kept verbatim

    def memo(self, key: Hashable, make: Callable[[], T]) -> T:
        """A derived form of this message, made once and reused while the message is unchanged.

        The agent re-serializes and re-renders its whole conversation every step; with this each
        message is converted once. Reassigning a field of the message or of one of its tool calls
        (``msg.content = ...``), and adding or removing tool calls, drop the memo; so does any
        ``model_copy``, which makes a new message. Editing a dict or list inside a message in
        place (``extra``, content parts) is not noticed: assign a new value instead. Callers
        must treat what this returns as read-only.
        """
        entry = _MEMOS.get(id(self))
        calls = self.__dict__.get("tool_calls")
        stamp = (EDITS[0], len(calls)) if calls else None
        if entry is None or entry[0]() is not self or entry[1] != stamp:
            entry = (_KeyedRef(self, id(self)), stamp, {})
            _MEMOS[id(self)] = entry
        forms = entry[2]
        if key not in forms:
            forms[key] = make()
        return forms[key]  # type: ignore[no-any-return]

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        _MEMOS.pop(id(self), None)
        EDITS[0] += 1

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
    role: Literal["system"] = "system"
    content: Content = ""


class UserMessage(_Base):
    role: Literal["user"] = "user"
    content: Content = ""


class AssistantMessage(_Base):
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
    return message.to_openai()


def messages_to_openai(messages: Iterable[Message]) -> list[dict[str, Any]]:
    return [to_openai(m) for m in messages]


def messages_from_openai(items: Iterable[dict[str, Any]]) -> list[Message]:
    return [message_from_openai(d) for d in items]
