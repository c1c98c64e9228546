"""What an uploaded or corpus file is, judged by its bytes, and the text inside it.

    kind = sniff(data, "notes.md")          # FileKind("text/markdown", ...) or UnsupportedFile
    text = extract_text(data, kind)         # str, or None for images

The declared name only has to agree with the content: a PNG called `report.pdf`, a binary
called `notes.txt`, a PDF that pypdf cannot read are all refused. DOCX files are ZIP
archives: their members are checked (count, sizes, compression ratio, names) before
python-docx opens them, so a crafted archive cannot exhaust memory.
"""

from __future__ import annotations

import io
import logging
import posixpath
import zipfile
from dataclasses import dataclass

import filetype

log = logging.getLogger("relais.retrieval")

# Longest text kept from one file (characters): beyond it the file is refused, since every
# character is embedded and stored.
MAX_TEXT_CHARS = 5_000_000
# DOCX (ZIP) limits: members, total inflated bytes, inflated/compressed ratio of a member.
MAX_ZIP_MEMBERS = 2_000
MAX_ZIP_INFLATED_BYTES = 200 * 1024 * 1024
MAX_ZIP_RATIO = 200

DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class UnsupportedFile(ValueError):
    """The file is not one Relais accepts, or its content is not what it claims."""


@dataclass(frozen=True, slots=True)
class FileKind:
    mime_type: str
    # "pdf", "docx", "text" or "image".
    family: str

    @property
    def has_text(self) -> bool:
        return self.family != "image"


_TEXT_EXTENSIONS = {
    "txt": "text/plain",
    "text": "text/plain",
    "log": "text/plain",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "rst": "text/x-rst",
    "csv": "text/csv",
    "py": "text/x-python",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "ts": "text/x-typescript",
    "tsx": "text/x-typescript",
    "jsx": "text/javascript",
    "json": "application/json",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "html": "text/html",
    "css": "text/css",
    "sh": "text/x-shellscript",
    "sql": "application/sql",
    "go": "text/x-go",
    "rs": "text/x-rust",
    "java": "text/x-java",
    "c": "text/x-c",
    "h": "text/x-c",
    "cpp": "text/x-c++",
    "xml": "application/xml",
}
_BINARY_EXTENSIONS = {
    "pdf": "pdf",
    "docx": "docx",
    "png": "image",
    "jpg": "image",
    "jpeg": "image",
    "gif": "image",
    "webp": "image",
}
_IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
SUPPORTED_EXTENSIONS = frozenset(_TEXT_EXTENSIONS) | frozenset(_BINARY_EXTENSIONS)


def extension_of(filename: str) -> str:
    base = posixpath.basename(filename.replace("\\", "/"))
    return base.rpartition(".")[2].lower() if "." in base else ""


def sniff(data: bytes, filename: str) -> FileKind:
    """The file's kind, from its content, checked against its name's extension."""
    if not data:
        raise UnsupportedFile("The file is empty")
    extension = extension_of(filename)
    if extension and extension not in SUPPORTED_EXTENSIONS:
        raise UnsupportedFile(f"Files of type .{extension} are not accepted")
    kind = _content_kind(data, extension)
    expected = _BINARY_EXTENSIONS.get(extension, "text" if extension else kind.family)
    if kind.family != expected:
        raise UnsupportedFile(f"The content is {_describe(kind)}, not what .{extension} promises")
    return kind


def _content_kind(data: bytes, extension: str) -> FileKind:
    if data.startswith(b"%PDF-"):
        return FileKind("application/pdf", "pdf")
    guessed = filetype.guess(data)
    if guessed is not None:
        if guessed.mime in _IMAGE_TYPES:
            return FileKind(guessed.mime, "image")
        if (guessed.mime == "application/zip" or guessed.extension in ("zip", "docx")) and _is_docx(data):
            return FileKind(DOCX_MIME, "docx")
        raise UnsupportedFile(f"Files of type {guessed.mime} are not accepted")
    if _is_docx(data):
        return FileKind(DOCX_MIME, "docx")
    if _is_text(data):
        return FileKind(_TEXT_EXTENSIONS.get(extension, "text/plain"), "text")
    raise UnsupportedFile("The content is not a supported document, image or UTF-8 text")


def _describe(kind: FileKind) -> str:
    return {"pdf": "a PDF", "docx": "a Word document", "image": f"an image ({kind.mime_type})"}.get(kind.family, "text")


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    # Control characters other than tab, newline, carriage return, form feed mark binary data.
    controls = sum(1 for char in text[:65536] if ord(char) < 32 and char not in "\t\n\r\f")
    return "\x00" not in text and controls <= len(text[:65536]) // 1000


def _is_docx(data: bytes) -> bool:
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def extract_text(data: bytes, kind: FileKind) -> str | None:
    """The file's text; None for images. UnsupportedFile when it cannot be read."""
    if kind.family == "image":
        return None
    if kind.family == "pdf":
        text = _pdf_text(data)
    elif kind.family == "docx":
        text = _docx_text(data)
    else:
        text = data.decode("utf-8-sig")
    # One newline convention, so offsets mean the same whatever wrote the file.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > MAX_TEXT_CHARS:
        raise UnsupportedFile(f"The file holds more than {MAX_TEXT_CHARS} characters of text")
    return text


def _pdf_text(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsupportedFile("The PDF is encrypted")
        pages = []
        total = 0
        for page in reader.pages:
            text = page.extract_text() or ""
            total += len(text)
            if total > MAX_TEXT_CHARS:
                raise UnsupportedFile(f"The file holds more than {MAX_TEXT_CHARS} characters of text")
            pages.append(text)
    except UnsupportedFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as error:
        log.info("unreadable PDF: %s", error)
        raise UnsupportedFile("The PDF is corrupt or unreadable") from None
    return "\n\n".join(page.strip() for page in pages if page.strip())


def _docx_text(data: bytes) -> str:
    import docx

    _check_archive(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as error:  # python-docx raises many types for malformed packages
        log.info("unreadable DOCX: %s", error)
        raise UnsupportedFile("The Word document is corrupt or unreadable") from None
    blocks = [paragraph.text for paragraph in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append("\t".join(cell.text for cell in row.cells))
    return "\n".join(blocks).strip()


def _check_archive(data: bytes) -> None:
    """Refuse ZIP bombs and odd member names before any member is inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise UnsupportedFile("The Word document is corrupt or unreadable") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise UnsupportedFile("The Word document has too many parts")
    inflated = 0
    for member in members:
        name = member.filename
        if name.startswith(("/", "\\")) or ".." in name.replace("\\", "/").split("/"):
            raise UnsupportedFile("The Word document has a part with an unsafe name")
        inflated += member.file_size
        if member.file_size > MAX_ZIP_RATIO * max(member.compress_size, 1) and member.file_size > 1024 * 1024:
            raise UnsupportedFile("The Word document inflates suspiciously (compression bomb)")
    if inflated > MAX_ZIP_INFLATED_BYTES:
        raise UnsupportedFile("The Word document inflates beyond the size limit")
