"""The larger files for `ftest/bench_extract.py --corpus`: issue 10's extraction ratio measured on
files of 60–340 KB, where per-file costs weigh less than on tests/corpus.

    python3 ftest/large_corpus.py OUT_DIR [--seed N]

Writes report.pdf (60 pages, Flate streams, Helvetica/WinAnsi), page.html, notes.txt, data.csv,
records.json and mail.eml, all of generated English-like prose and deterministic for a given seed,
then copies a few office files from tests/corpus. Prints each file's name and size in bytes.
"""

import argparse
import csv
import datetime
import email.message
import email.utils
import io
import json
import os
import random
import shutil
import textwrap
import zlib

WORDS = """the a of and to in for on with by from as that this these which while when where after before
system service file files object bucket index document documents text page report data record value
sync extraction worker process queue request response server client network storage cluster node
throughput latency budget memory limit core thread batch stream buffer parser format content field
quarterly annual revenue market customer product team project meeting review plan result analysis
growth region office policy change update release version test measure figure table section summary
is are was were has have will can may should must often rarely always usually never quickly slowly
large small new old fast slow simple careful complete partial final early late clear steady many
each every most some several few other same different important useful reliable expected measured
reads writes sends keeps holds checks counts builds returns moves grows drops finds shows explains""".split()
ACCENTED = ["naïve", "Zürich", "café", "façade", "résumé", "Ångström", "São Paulo", "coöperate"]
CITIES = ["London", "Paris", "Berlin", "Madrid", "Rome", "Oslo", "Vienna", "Lisbon", "Dublin", "Prague"]
NAMES = ["Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory"]
SURNAMES = ["Smith", "Jones", "Brown", "Taylor", "Wilson", "Evans", "Thomas", "Moore", "Clark", "Hall"]


def sentence(rng, extra=()):
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 16))]
    if extra and rng.random() < 0.15:
        words[rng.randrange(len(words))] = rng.choice(extra)
    if len(words) > 8 and rng.random() < 0.4:
        words[rng.randint(3, len(words) - 3)] += ","
    s = " ".join(words)
    if rng.random() < 0.1:
        s += f" (see section {rng.randint(1, 60)})"
    return s[0].upper() + s[1:] + rng.choice(".....?!")


def paragraph(rng, n=None, extra=()):
    return " ".join(sentence(rng, extra) for _ in range(n or rng.randint(3, 8)))


def pdf_escape(s):
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def write_pdf(path, rng, pages=60, lines=40):
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
            3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"}
    kids = []
    for p in range(pages):
        page_id, content_id = 4 + 2 * p, 5 + 2 * p
        text, out = "", [f"BT /F1 10 Tf 50 780 Td 12 TL (Page {p + 1}) Tj".encode()]
        for _ in range(lines):
            while len(text) < 95:
                text += " " + sentence(rng)
            cut = text[:95].rsplit(" ", 1)[0]
            text = text[len(cut):]
            out.append(f"({pdf_escape(cut.strip())}) '".encode("cp1252"))
        out.append(b"ET")
        stream = zlib.compress(b"\n".join(out) + b"\n", 9)
        objs[content_id] = (f"<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode()
                            + stream + b"\nendstream")
        objs[page_id] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R"
                         " /Resources << /Font << /F1 3 0 R >> >> >>").encode()
        kids.append(f"{page_id} 0 R")
    objs[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>".encode()
    buf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for n in sorted(objs):
        offsets[n] = len(buf)
        buf += f"{n} 0 obj\n".encode() + objs[n] + b"\nendobj\n"
    xref = len(buf)
    size = max(objs) + 1
    buf += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    buf += b"".join(f"{offsets[n]:010d} 00000 n \n".encode() for n in range(1, size))
    buf += f"trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    with open(path, "wb") as f:
        f.write(buf)


def write_html(path, rng, target=330_000):
    parts = ["<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             "<title>Quarterly operations review</title>\n<style>\nbody { font-family: sans-serif; margin: 2em; }\n"
             "table { border-collapse: collapse; }\ntd, th { border: 1px solid #ccc; padding: 4px; }\n</style>\n"
             "<script>\ndocument.addEventListener('DOMContentLoaded', function () {\n"
             "  document.querySelectorAll('h2').forEach(function (h) { h.title = h.textContent; });\n});\n"
             "</script>\n</head>\n<body>\n<header><h1>Quarterly operations review</h1>\n<nav><ul>\n"]
    size, s = len(parts[0]), 0
    while size < target:
        s += 1
        sec = [f"<section id=\"s{s}\">\n<h2>{sentence(rng)[:-1]}</h2>\n"]
        for sub in range(rng.randint(2, 4)):
            sec.append(f"<article>\n<h3>{s}.{sub + 1} {sentence(rng)[:-1]}</h3>\n")
            sec += [f"<p>{paragraph(rng)} <a href=\"#s{rng.randint(1, s)}\">{rng.choice(WORDS)}</a>.</p>\n"
                    for _ in range(rng.randint(2, 4))]
            sec.append("<ul>\n" + "".join(f"<li>{sentence(rng)}</li>\n" for _ in range(rng.randint(3, 6))) + "</ul>\n</article>\n")
        if s % 3 == 0:
            sec.append("<table>\n<tr><th>Region</th><th>Value</th><th>Note</th></tr>\n" + "".join(
                f"<tr><td>{rng.choice(CITIES)}</td><td>{rng.randint(100, 99999)}</td><td>{sentence(rng)}</td></tr>\n"
                for _ in range(rng.randint(4, 10))) + "</table>\n")
        sec.append("</section>\n")
        parts.append("".join(sec))
        size += len(parts[-1])
    parts[0] += "".join(f"<li><a href=\"#s{i}\">Section {i}</a></li>\n" for i in range(1, s + 1)) + "</ul></nav></header>\n<main>\n"
    parts.append("</main>\n<footer><p>Generated corpus file.</p></footer>\n</body>\n</html>\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(parts))


def write_notes(path, rng, target=280_000):
    paras, size = [], 0
    while size < target:
        paras.append(textwrap.fill(paragraph(rng, extra=ACCENTED), 78))
        size += len(paras[-1].encode()) + 2
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n\n".join(paras) + "\n")


def write_csv(path, rng, target=220_000):
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["id", "name", "city", "amount", "date", "comment"])
    i, day0 = 0, datetime.date(2023, 1, 1)
    while out.tell() < target:
        i += 1
        w.writerow([i, f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}", rng.choice(CITIES),
                    f"{rng.uniform(1, 10000):.2f}", (day0 + datetime.timedelta(days=rng.randrange(730))).isoformat(),
                    " ".join(sentence(rng) for _ in range(rng.randint(1, 2)))])
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(out.getvalue())


def write_json(path, rng, target=150_000):
    recs, size = [], 0
    while size < target:
        r = {"id": len(recs) + 1, "title": sentence(rng)[:-1],
             "author": {"name": f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}", "city": rng.choice(CITIES)},
             "tags": rng.sample(WORDS, 3), "metrics": {"views": rng.randint(0, 10**5), "score": round(rng.random(), 3)},
             "body": paragraph(rng), "comments": [{"by": rng.choice(NAMES), "text": sentence(rng)}
                                                  for _ in range(rng.randint(0, 3))]}
        recs.append(r)
        size += len(json.dumps(r, indent=2, ensure_ascii=False)) + 4
    with open(path, "w", encoding="utf-8") as f:
        json.dump(recs, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_eml(path, rng, seed, target=60_000):
    paras, size = [], 0
    while size < target / 2.05:
        paras.append(paragraph(rng))
        size += len(paras[-1])
    msg = email.message.EmailMessage()
    msg["From"] = "Alice Smith <alice@example.com>"
    msg["To"] = "Bob Jones <bob@example.org>, Carol Brown <carol@example.org>"
    msg["Subject"] = "Quarterly operations review: " + sentence(rng)[:-1]
    msg["Date"] = email.utils.format_datetime(datetime.datetime(2024, 3, 14, 9, 26, 53, tzinfo=datetime.timezone.utc))
    msg["Message-ID"] = f"<review-{seed}@example.com>"
    msg["MIME-Version"] = "1.0"
    msg.set_content("\n\n".join(textwrap.fill(p, 72) for p in paras) + "\n")
    msg.add_alternative("<!DOCTYPE html>\n<html><body>\n" + "".join(
        f"<p>\n{textwrap.fill(p, 72)}\n</p>\n" for p in paras) + "</body></html>\n", subtype="html")
    msg.set_boundary(f"=_review_{seed}_alternative")  # the default one is random
    with open(path, "wb") as f:
        f.write(bytes(msg))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    rng = random.Random(args.seed)
    out = lambda name: os.path.join(args.out_dir, name)
    write_pdf(out("report.pdf"), rng)
    write_html(out("page.html"), rng)
    write_notes(out("notes.txt"), rng)
    write_csv(out("data.csv"), rng)
    write_json(out("records.json"), rng)
    write_eml(out("mail.eml"), rng, args.seed)
    names = ["report.pdf", "page.html", "notes.txt", "data.csv", "records.json", "mail.eml"]
    corpus = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "corpus")
    for name in ["sample.docx", "sample.pptx", "sample.xlsx", "sample.odp", "sample-writer.pdf"]:
        if os.path.exists(os.path.join(corpus, name)):
            shutil.copyfile(os.path.join(corpus, name), out(name))
            names.append(name)
    for name in names:
        print(f"{name} {os.path.getsize(out(name))}")


if __name__ == "__main__":
    main()
