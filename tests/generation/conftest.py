"""Fixtures for generation: demo records, the local GGUF model, small HTTP servers."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from medmax_review.generation.backends.local import local_model_path, local_model_problem
from medmax_review.sources.models import SourceRecord
from medmax_review.sources.services import records_import

# This app's test ports (8120-8139): 8120-8124 stub servers, 8125 llama.cpp server.
STUB_PORTS = range(8120, 8125)
LLAMA_SERVER_PORT = 8125


def records_demo(project, demo_data: Path, names=("vqa_rad.jsonl", "skimage.jsonl")):
    for name in names:
        report = records_import(project=project, path=demo_data / name)
        assert not report.errors, report.errors
    return SourceRecord.objects.filter(project=project).order_by("id")


@pytest.fixture
def demo_records(project, demo_data):
    return records_demo(project, demo_data)


def wait_until(predicate, timeout: float, what: str, every: float = 0.2):
    """The predicate's first truthy value, or fail naming what never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port(ports=STUB_PORTS) -> int:
    for port in ports:
        with socket.socket() as probe:
            # as the server will: a port left in TIME_WAIT by a closed server is free again
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")


def pair_reply(request_body: dict, content: str | None = None, finish_reason: str = "stop") -> dict:
    """An OpenAI chat completion whose content is a valid pair unless `content` is given."""
    if content is None:
        prompt = request_body["messages"][-1]["content"]
        if isinstance(prompt, list):
            prompt = prompt[-1]["text"]
        question = next(
            (line[len("Question: "):] for line in prompt.splitlines() if line.startswith("Question: ")),
            "What does this image show?",
        )
        answer = next(
            (line[len("Answer: "):] for line in prompt.splitlines() if line.startswith("Answer: ")),
            "An image.",
        )
        content = json.dumps({"instruction": question, "response": answer})
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request_body.get("model", "stub"),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content},
             "finish_reason": finish_reason}
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
    }


class StubServer:
    """A real HTTP server in a thread. `script` is a list of (status, body-or-callable, delay)
    served in order; when it runs out, `default` answers every request."""

    def __init__(self, *, default=None, latency: float = 0.0, ports=STUB_PORTS):
        self.script: list = []
        self.default = default or (lambda body: (200, pair_reply(body)))
        self.latency = latency
        self.requests: list[dict] = []
        self.headers: dict[str, str] = {}  # sent with every answer
        self.lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # As real servers do: else the headers and the body, written apart, wait for the
            # client's delayed ACK, some 40 ms added to every answer.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with stub.lock:
                    stub.requests.append(body)
                    step = stub.script.pop(0) if stub.script else None
                delay = stub.latency
                if step is None:
                    status, payload = stub.default(body)
                else:
                    status, payload, delay = step
                    if callable(payload):
                        payload = payload(body)
                if delay:
                    time.sleep(delay)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in stub.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and went away

        self.port = free_port(ports)
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class CountingStub(StubServer):
    """A stub that answers every request after `delay` and remembers the most requests it had
    open at once (bench_generation uses it too)."""

    def __init__(self, delay: float, **kwargs):
        self.open = self.peak = 0
        self.counter = threading.Lock()

        def answer(body):
            with self.counter:
                self.open += 1
                self.peak = max(self.peak, self.open)
            time.sleep(delay)
            with self.counter:
                self.open -= 1
            return 200, pair_reply(body)

        super().__init__(default=answer, **kwargs)


@pytest.fixture
def stub_server(settings):
    server = StubServer()
    settings.LLM_ALLOWED_BASE_URLS = [server.base_url]
    yield server
    server.close()


from tests.conftest import process_stop  # noqa: E402,F401 - re-exported for these tests


def require_local_model() -> str:
    """The GGUF path, or skip/fail (in CI) when llama-cpp-python or the file is absent."""
    from tests.conftest import require_service

    problem = local_model_problem()
    if problem:
        require_service(f"the local model ({problem})")
    return local_model_path()


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """llama-cpp-python's own OpenAI-compatible server, serving the SmolLM2 file."""
    import subprocess
    import sys
    import urllib.request

    path = require_local_model()
    # A file, not a pipe: the server logs a lot and would block on a full pipe.
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    log_file = open(log_path, "wb")  # closed in the finally below
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", path, "--port", str(LLAMA_SERVER_PORT),
         "--host", "127.0.0.1", "--n_ctx", "2048", "--n_threads", "2"],
        stdout=log_file, stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{LLAMA_SERVER_PORT}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama_cpp.server did not answer /v1/models within 120 s")
            time.sleep(0.5)
        yield base_url
    finally:
        process_stop(process)
        log_file.close()
