"""A local server speaking the OpenAI HTTP API (chat completions, JSON or streamed, and
responses), for driving the real ``openai`` SDK: scripted answers, error statuses, a log."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """A text answer, or ``status`` (429, 500...) with an OpenAI error body."""

    text: str = ""
    status: int = 200
    prompt_tokens: int = 100
    completion_tokens: int = 50

    @classmethod
    def of(cls, obj: Any) -> Reply:
        return cls(obj if isinstance(obj, str) else json.dumps(obj))


@dataclass
class Seen:
    path: str
    auth: str | None
    body: dict[str, Any]
    raw: str


@dataclass
class FakeOpenAI:
    replies: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *replies: Reply | dict[str, Any] | str) -> None:
        with self._lock:
            self.replies = [r if isinstance(r, Reply) else Reply.of(r) for r in replies]
            self.seen.clear()

    def next_reply(self) -> Reply:
        with self._lock:
            if len(self.replies) > 1:
                return self.replies.pop(0)
            return self.replies[0] if self.replies else Reply("{}")

    def everything_sent(self) -> str:
        return "\n".join(s.raw for s in self.seen)

    def start(self) -> tuple[ThreadingHTTPServer, str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                body = json.loads(raw or "{}")
                fake.seen.append(Seen(self.path, self.headers.get("authorization"), body, raw))
                reply = fake.next_reply()
                if reply.status != 200:
                    kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
                    return self._send(
                        reply.status,
                        {"error": {"message": f"scripted {reply.status}", "type": kind}},
                    )
                model = body.get("model", "test-model")
                usage = {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                }
                if self.path.endswith("/chat/completions") and body.get("stream"):
                    return self._stream(reply, model, usage)
                if self.path.endswith("/chat/completions"):
                    return self._send(200, {
                        "id": "chatcmpl-t", "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model, "usage": usage,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": reply.text}}],
                    })  # fmt: skip
                if self.path.endswith("/responses"):
                    return self._send(200, {
                        "id": "resp_t", "object": "response", "created_at": int(time.time()),
                        "status": "completed", "model": model,
                        "output": [{"type": "message", "id": "msg_t", "status": "completed",
                                    "role": "assistant", "content": [
                                        {"type": "output_text", "text": reply.text,
                                         "annotations": []}]}],
                        "usage": {"input_tokens": reply.prompt_tokens,
                                  "output_tokens": reply.completion_tokens,
                                  "total_tokens": usage["total_tokens"]},
                    })  # fmt: skip
                return self._send(404, {"error": {"message": "unknown path", "type": "invalid"}})

            def _stream(self, reply: Reply, model: str, usage: dict[str, int]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                text = reply.text
                base = {"id": "chatcmpl-t", "object": "chat.completion.chunk",
                        "created": int(time.time()), "model": model}  # fmt: skip
                for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                    chunk = {**base, "choices": [{"index": 0, "finish_reason": None,
                             "delta": {"role": "assistant", "content": piece}}]}  # fmt: skip
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                last = {**base, "choices": [], "usage": usage}
                self.wfile.write(
                    f"data: {json.dumps(end)}\n\ndata: {json.dumps(last)}\n\n".encode()
                )
                self.wfile.write(b"data: [DONE]\n\n")
                self.close_connection = True

            def log_message(self, *a: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/v1"
