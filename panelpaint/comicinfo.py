"""`ComicInfo.xml`, the metadata comic readers (Komga, Kavita, YACReader, CDisplayEx, Tachiyomi)
read from a CBZ's root: series, title, number, page count, each page in order, and which way the
pages turn (`Manga=YesAndRightToLeft` for right-to-left books). Written to the Anansi Project's
ComicInfo schema v2.0, whose `xs:sequence` fixes the order of the elements.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from panelpaint.panels.model import Direction

COMICINFO_NAME = "ComicInfo.xml"


@dataclass(frozen=True)
class ComicPage:
    """One image of the archive, in reading order: its size in bytes and pixels (None: unknown)."""

    size_bytes: int
    width: int | None = None
    height: int | None = None


@dataclass
class ComicInfo:
    """A book's metadata. `number` is the issue or chapter number as the studio writes it ("3", "12.5")."""

    series: str
    title: str
    direction: Direction = Direction.ltr
    number: str | None = None
    notes: str = ""
    pages: list[ComicPage] = field(default_factory=list)

    @property
    def manga(self) -> str:
        # "YesAndRightToLeft" tells a reader to turn pages right to left; "No" keeps western order.
        return "YesAndRightToLeft" if self.direction == Direction.rtl else "No"

    def to_xml(self) -> bytes:
        """The document, UTF-8 with its declaration, elements in the schema's order."""
        root = ET.Element("ComicInfo")

        def add(name: str, value: object) -> None:
            if value not in (None, ""):
                ET.SubElement(root, name).text = str(value)

        add("Title", self.title)
        add("Series", self.series)
        add("Number", self.number)
        add("Notes", self.notes)
        add("PageCount", len(self.pages))
        add("BlackAndWhite", "No")  # the pages are coloured
        add("Manga", self.manga)
        pages = ET.SubElement(root, "Pages")
        for index, page in enumerate(self.pages):
            attrs = {"Image": str(index), "ImageSize": str(page.size_bytes)}
            if page.width and page.height:
                attrs["ImageWidth"], attrs["ImageHeight"] = str(page.width), str(page.height)
            ET.SubElement(pages, "Page", attrs)
        ET.indent(root)
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)
