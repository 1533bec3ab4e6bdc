"""Escaping for every output format a report writes: names are untrusted input.

Run ids, system names and metric display names come from configs and from ``results.json``
files people share, so each renderer passes them through the function for its format:

* :func:`csv_text`: a cell that a spreadsheet would read as a formula (first character ``=``,
  ``+``, ``-``, ``@``, tab or carriage return; OWASP's list; also after leading spaces) gets a
  leading ``'`` so it stays text. Only text cells go through it; numbers are written as numbers.
* :func:`md_text`: one line (line breaks and other control characters become spaces), ``|`` and
  ``\\`` backslash-escaped so a name cannot add a table column, and ``& < >`` as HTML entities so
  raw HTML (``<script>``) never reaches a Markdown viewer that renders it.
* :func:`one_line` (LaTeX, before its own escaping): a blank line would end a table row's paragraph.
* :func:`xml_text`: characters XML 1.0 forbids (C0 controls other than tab, LF and CR;
  U+FFFE, U+FFFF; lone surrogates) removed, so a strict parser accepts the document.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Line and paragraph breaks a Markdown or terminal reader would honour, and the other C0/C1 controls.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_MD_SPECIAL = {"\\": "\\\\", "|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;"}
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def csv_text(text: str) -> str:
    """``text`` as a CSV cell no spreadsheet evaluates, on one line: a formula trigger first (after
    any leading spaces) gets a leading ``'``. Line breaks become spaces: the writer would leave a
    lone CR unquoted, and a reader would split the row there."""
    flat = one_line(text)
    return "'" + flat if flat.lstrip().startswith(FORMULA_TRIGGERS) else flat


def one_line(text: str) -> str:
    """``text`` with every run of line breaks and other control characters replaced by one space."""
    return _LINE_BREAKS.sub(" ", str(text))


def md_text(text: str) -> str:
    """``text`` as inline Markdown on one line, inside or outside a table, showing as written."""
    return "".join(_MD_SPECIAL.get(ch, ch) for ch in one_line(text))


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 does not allow."""
    return _XML_FORBIDDEN.sub("", str(text))


def clean_xml_tree(root: ET.Element) -> ET.Element:
    """Apply :func:`xml_text` to every tag text, tail and attribute value under ``root`` (in place)."""
    for element in root.iter():
        if element.text is not None:
            element.text = xml_text(element.text)
        if element.tail is not None:
            element.tail = xml_text(element.tail)
        for key, value in element.attrib.items():
            element.attrib[key] = xml_text(value)
    return root
