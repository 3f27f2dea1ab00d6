#!/usr/bin/env python3
"""Generates the extraction corpus in tests/corpus/ with real tools, and tests/corpus/expected.json.

Every file carries the pangram, a sentence with accents, dashes, curly quotes and markup characters,
and a sentence unique to its format; expected.json maps each file to the sentences that must come
out of it (compared after whitespace reduction), or to the error it must produce.

Requirements (the outputs are committed, so this only runs when the corpus changes):
  * a Python venv with: python-docx openpyxl python-pptx odfpy fpdf2 reportlab pypdf cryptography
    vsdx xlwt extract-msg
  * LibreOffice (Debian: libreoffice-core libreoffice-writer libreoffice-calc libreoffice-impress)
    for .rtf .doc .xlsm .potx and a LibreOffice-made PDF
  * cargo, for `cargo run --example make_msg` (Outlook .msg via the cfb crate)
  * DejaVu fonts (fonts-dejavu-core, pulled in by LibreOffice) for the Unicode PDF

Usage: python scripts/make-corpus.py [OUT_DIR]
"""

import email.message
import email.policy
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

FOX = "The quick brown fox jumps over the lazy dog"
UNI = "Café naïve — “quotes” & <angle>"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "corpus")
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

expected = {}


def marker(name):
    """The sentence unique to one corpus file."""
    return f"This sentence belongs to the {name} sample"


def path(name):
    return os.path.join(OUT, name)


def expect(name, *extra):
    expected[name] = {"sentences": [FOX, UNI, marker(name), *extra]}


def expect_error(name, error):
    expected[name] = {"error": error}


def xml_escape(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def soffice(src, fmt, outdir):
    """Converts src with LibreOffice headless; returns the output path."""
    subprocess.run(
        ["soffice", "--headless", "--norestore", "--convert-to", fmt, "--outdir", outdir, src],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = os.path.splitext(os.path.basename(src))[0]
    ext = fmt.split(":")[0]
    return os.path.join(outdir, f"{base}.{ext}")


def plain_text():
    body = f"{FOX}.\n{UNI}\n"
    for ext in ["txt", "md", "markdown", "rst", "py", "rb", "sh", "paper"]:
        name = f"sample.{ext}"
        comment = "# " if ext in ("py", "rb", "sh") else ""
        with open(path(name), "w", encoding="utf-8") as f:
            f.write(f"{comment}{body}{comment}{marker(name)}\n")
        expect(name)
    with open(path("sample.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(f'id,text\n1,"{FOX}"\n2,"{UNI}"\n3,{marker("sample.csv")}\n')
    expect("sample.csv")
    with open(path("sample.tsv"), "w", encoding="utf-8") as f:
        f.write(f"id\ttext\n1\t{FOX}\n2\t{UNI}\n3\t{marker('sample.tsv')}\n")
    expect("sample.tsv")
    with open(path("sample.json"), "w", encoding="utf-8") as f:
        json.dump({"title": FOX, "body": UNI, "marker": marker("sample.json")}, f, ensure_ascii=False)
    expect("sample.json")
    # UTF-16 with BOM and windows-1252 without: charset detection.
    name = "sample-utf16.txt"
    with open(path(name), "w", encoding="utf-16") as f:
        f.write(f"{body}{marker(name)}\n")
    expect(name)
    name = "sample-cp1252.txt"
    with open(path(name), "w", encoding="cp1252") as f:
        f.write(f"{body}{marker(name)}\n")
    expect(name)


def xml_files():
    name = "sample.xml"
    with open(path(name), "w", encoding="utf-8") as f:
        f.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<doc><title>'
            + xml_escape(FOX)
            + "</title><p>Caf&#233; na&#xEF;ve — “quotes” &amp; &lt;angle&gt;</p>"
            + f"<![CDATA[{marker(name)}]]></doc>\n"
        )
    expect(name)
    name = "sample.svg"
    with open(path(name), "w", encoding="utf-8") as f:
        f.write(
            '<svg xmlns="http://www.w3.org/2000/svg" width="400" height="100">'
            "<style>text { font: 12px sans-serif; }</style>"
            f'<text x="0" y="20">{xml_escape(FOX)}</text><text x="0" y="40">{xml_escape(UNI)}</text>'
            f'<text x="0" y="60">{marker(name)}</text></svg>\n'
        )
    expect(name)


def html_files():
    for name, charset in [("sample.html", "utf-8"), ("sample.aspx", "utf-8"), ("sample.htm", "windows-1252")]:
        doc = (
            f'<!DOCTYPE html><html><head><meta charset="{charset}"><title>Title must not leak</title>'
            "<style>body { color: red }</style><script>var leak = '<p>script must not leak</p>';</script>"
            f"</head><body><h1>{FOX}</h1><p>Caf&eacute; na&iuml;ve &mdash; &ldquo;quotes&rdquo; &amp; &lt;angle&gt;</p>"
            f"<table><tr><td>{marker(name)}</td></tr></table></body></html>\n"
        )
        with open(path(name), "w", encoding=charset) as f:
            f.write(doc)
        expect(name)
        expected[name]["absent"] = ["must not leak", "color: red"]


def pdf_files(tmp):
    from fpdf import FPDF
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    # reportlab, base-14 Helvetica (WinAnsi), three pages in order.
    name = "sample.pdf"
    c = canvas.Canvas(path(name), pagesize=A4)
    for i, line in enumerate([FOX, UNI, marker(name)], 1):
        c.setFont("Helvetica", 12)
        c.drawString(72, 760, line)
        c.drawString(72, 740, f"Page number {i} of three")
        c.showPage()
    c.save()
    expect(name, "Page number 1 of three", "Page number 3 of three")

    # fpdf2 with an embedded TrueType font (Identity-H, ToUnicode): Greek and Cyrillic too.
    name = "sample-ttf.pdf"
    pdf = FPDF()
    pdf.add_page()
    pdf.add_font("DejaVu", fname=DEJAVU)
    pdf.set_font("DejaVu", size=12)
    for line in [FOX, UNI, marker(name), "Ελληνικά και кириллица"]:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(path(name))
    expect(name, "Ελληνικά και кириллица")

    # Encrypted with a user password (pypdf, AES-128): must be reported as encrypted.
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(path("sample.pdf")))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    with open(path("encrypted.pdf"), "wb") as f:
        writer.write(f)
    expect_error("encrypted.pdf", "Encrypted")


def office_files(tmp):
    import docx
    import openpyxl
    import pptx
    import xlwt

    # Word: body paragraph split in runs, a table, a header.
    name = "sample.docx"
    d = docx.Document()
    d.sections[0].header.paragraphs[0].text = "Header text of the docx sample"
    d.add_heading(FOX, level=1)
    p = d.add_paragraph()
    for part in ["Caf", "é naïve — ", "“quotes” ", "& <angle>"]:
        p.add_run(part)
    table = d.add_table(rows=1, cols=2)
    table.cell(0, 0).text = marker(name)
    table.cell(0, 1).text = "Second cell"
    d.save(path(name))
    expect(name, "Header text of the docx sample", "Second cell")

    # Excel: strings (shared and inline), numbers, two sheets.
    name = "sample.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "First sheet"
    ws.append([FOX, 42])
    ws.append([UNI, 3.5])
    ws2 = wb.create_sheet("Second sheet")
    ws2["C7"] = marker(name)
    wb.save(path(name))
    expect(name, "First sheet", "Second sheet", "42", "3.5")

    name = "sample.xls"
    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Legacy sheet")
    for i, line in enumerate([FOX, UNI, marker(name)]):
        ws.write(i, 0, line)
    ws.write(3, 1, 1234)
    wb.save(path(name))
    expect(name, "Legacy sheet", "1234")

    # PowerPoint: 11 slides so numeric order (slide2 < slide10) matters, plus notes.
    name = "sample.pptx"
    prs = pptx.Presentation()
    layout = prs.slide_layouts[1]
    for i in range(1, 12):
        s = prs.slides.add_slide(layout)
        s.shapes.title.text = f"Slide number {i}"
        body = {1: FOX, 2: UNI, 11: marker(name)}.get(i, f"Filler text {i}")
        s.placeholders[1].text = body
    prs.slides[0].notes_slide.notes_text_frame.text = "Speaker notes of the first slide"
    prs.save(path(name))
    expect(name, "Speaker notes of the first slide")
    expected[name]["ordered"] = ["Slide number 1", "Slide number 2", "Slide number 10", "Slide number 11"]

    # Visio: the vsdx package edits its bundled drawing.
    import vsdx

    name = "sample.vsdx"
    template = os.path.join(os.path.dirname(vsdx.__file__), "media", "media.vsdx")
    with vsdx.VisioFile(template) as vis:
        shapes = [s for s in vis.pages[0].all_shapes if s.text.strip()]
        for shape, line in zip(shapes, [FOX, UNI, marker(name)]):
            shape.text = line
        vis.save_vsdx(path(name))
    expect(name)


def odf_files(tmp):
    from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet, OpenDocumentText
    from odf.draw import Frame, Page, TextBox
    from odf.style import MasterPage, PageLayout
    from odf.table import Table, TableCell, TableRow
    from odf.text import H, P, S, Span

    name = "sample.odt"
    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text=FOX))
    p = P(text="Café")
    p.addElement(S(c=1))
    p.addElement(Span(text="naïve — “quotes” & <angle>"))
    doc.text.addElement(p)
    doc.text.addElement(P(text=marker(name)))
    doc.save(path(name))
    expect(name)

    name = "sample.ods"
    doc = OpenDocumentSpreadsheet()
    table = Table(name="Sheet A")
    for line in [FOX, UNI, marker(name)]:
        row = TableRow()
        cell = TableCell(valuetype="string")
        cell.addElement(P(text=line))
        row.addElement(cell)
        table.addElement(row)
    doc.spreadsheet.addElement(table)
    doc.save(path(name))
    expect(name)

    name = "sample.odp"
    doc = OpenDocumentPresentation()
    layout = PageLayout(name="PL")
    doc.automaticstyles.addElement(layout)
    master = MasterPage(name="Default", pagelayoutname=layout)
    doc.masterstyles.addElement(master)
    for line in [FOX, UNI, marker(name)]:
        page = Page(masterpagename=master)
        frame = Frame(width="20cm", height="3cm", x="1cm", y="1cm")
        box = TextBox()
        box.addElement(P(text=line))
        frame.addElement(box)
        page.addElement(frame)
        doc.presentation.addElement(page)
    doc.save(path(name))
    expect(name)


def libreoffice_files(tmp):
    """Formats only LibreOffice writes here: RTF, xlsm, potx, a Writer PDF, and a legacy .doc."""
    if not shutil.which("soffice"):
        print("soffice not found: skipping the LibreOffice conversions", file=sys.stderr)
        return
    conversions = [
        ("sample.docx", "rtf", "sample.rtf", None),
        ("sample.docx", "pdf:writer_pdf_Export", "sample-writer.pdf", None),
        ("sample.xlsx", "xlsm:Calc MS Excel 2007 VBA XML", "sample.xlsm", None),
        ("sample.pptx", "potx:Impress Office Open XML Template", "sample.potx", None),
        ("sample.docx", "doc:MS Word 97", "sample.doc", "Unsupported"),
    ]
    # No .ppt sample: LibreOffice's smallest one is 600 kB, and unsupported is decided by the name.
    for src_name, fmt, out_name, error in conversions:
        src = os.path.join(tmp, os.path.splitext(out_name)[0] + os.path.splitext(src_name)[1])
        shutil.copy(path(src_name), src)
        produced = soffice(src, fmt, tmp)
        shutil.move(produced, path(out_name))
        if error:
            expect_error(out_name, error)
        else:
            expected[out_name] = {"sentences": [FOX, UNI, marker(src_name)]}


def mail_files(tmp):
    name = "sample.eml"
    msg = email.message.EmailMessage(policy=email.policy.SMTP)
    msg["From"] = "Corpus <corpus@example.org>"
    msg["To"] = "reader@example.org"
    msg["Subject"] = f"Subject: {UNI}"
    msg.set_content(f"{FOX}.\n{marker(name)}\n")
    msg.add_alternative(f"<p>{xml_escape(FOX)}</p><p>{xml_escape(marker(name))}</p>", subtype="html")
    msg.add_attachment(b"\x00\x01binary", maintype="application", subtype="octet-stream", filename="a.bin")
    with open(path(name), "wb") as f:
        f.write(msg.as_bytes())
    expect(name, f"Subject: {UNI}")

    name = "sample.msg"
    subprocess.run(
        ["cargo", "run", "--quiet", "--example", "make_msg", "--", path(name), UNI, f"{FOX}.\r\n{marker(name)}"],
        check=True,
        cwd=ROOT,
    )
    import extract_msg  # an independent reader validates the file

    with extract_msg.openMsg(path(name)) as m:
        assert m.subject == UNI, m.subject
        assert marker(name) in m.body, m.body
    expect(name)


def gzip_files():
    for inner in ["sample.txt", "sample.html"]:
        with open(path(inner), "rb") as f, gzip.open(path(inner + ".gz"), "wb") as g:
            g.write(f.read())
        expected[inner + ".gz"] = {"sentences": expected[inner]["sentences"]}


def main():
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        plain_text()
        xml_files()
        html_files()
        pdf_files(tmp)
        office_files(tmp)
        odf_files(tmp)
        libreoffice_files(tmp)
        mail_files(tmp)
        gzip_files()
    with open(path("expected.json"), "w", encoding="utf-8") as f:
        json.dump(dict(sorted(expected.items())), f, ensure_ascii=False, indent=1)
        f.write("\n")
    total = sum(os.path.getsize(path(n)) for n in expected)
    print(f"{len(expected)} files, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
