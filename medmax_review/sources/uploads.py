"""An upload over the size limit is refused while it streams in, not after it has all arrived."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB"


class SizeLimitedUpload(FileUploadHandler):
    """First in the handler chain: counts bytes as they arrive and stops the upload at the
    limit; the reason is left on the request for the form to show."""

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.MEDMAX_MAX_UPLOAD_BYTES
        self.received = 0

    def _refuse(self, size_text: str) -> None:
        self.request.upload_refused = (
            f"the upload is {size_text}; the limit is {_size(self.limit)} (MEDMAX_MAX_UPLOAD_BYTES)")

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # The declared length decides before a byte is read: nothing of the body is parsed.
        if content_length and content_length > self.limit:
            self._refuse(_size(content_length))
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self._refuse(f"over {_size(self.limit)}")
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None
