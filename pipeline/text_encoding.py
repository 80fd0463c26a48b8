"""Reading the text tables users make in Excel: UTF-8, UTF-8 with BOM, or GB18030.

Excel on Chinese Windows saves "CSV" in the ANSI code page (GBK, a subset of GB18030);
"CSV UTF-8" adds a BOM. The encoding is detected, never guessed silently: UTF-8 is
tried first (strict), then GB18030 (strict), and a file that is neither is refused. A
file read as GB18030 is said in the log.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lucr.errors import LucrError

log = logging.getLogger("lucr")

#: Encodings tried in order (both strict): what Excel saves on Chinese and other Windows.
ENCODINGS = ("utf-8-sig", "gb18030")


def read_text(path: Path, *, error: type[LucrError], what: str = "table") -> tuple[str, str]:
    """The file's text and the encoding it was read with (``utf-8``, ``utf-8-sig``, ``gb18030``)."""
    raw = Path(path).read_bytes()
    for encoding in ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as exc:
            if encoding == ENCODINGS[0]:
                first_error = exc
            continue
        if encoding == "utf-8-sig":
            return text, "utf-8-sig" if raw.startswith(b"\xef\xbb\xbf") else "utf-8"
        log.info("%s: read as GB18030 (not UTF-8); save it as 'CSV UTF-8' to avoid any doubt", path)
        return text, encoding
    raise error(
        f"the {what}'s text encoding is neither UTF-8 nor GB18030 (byte 0x{raw[first_error.start]:02x} at offset {first_error.start})", path=path,
        fix="save it from Excel as 'CSV UTF-8 (comma delimited)', or convert it, e.g. `iconv -f LATIN1 -t UTF-8 IN > OUT`",
    )
