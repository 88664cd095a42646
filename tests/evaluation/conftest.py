# The loopback OpenAI-compatible server of the generation tests.
from tests.generation.conftest import stub_server  # noqa: F401
