#!/usr/bin/env python3
"""pathological - messages made to be slow or large to parse (issue 12).

    tools/pathological.py --list
    tools/pathological.py KIND SIZE > message.eml     SIZE: 64K, 1M, 25M or bytes

Each KIND fills a message of about SIZE bytes with one thing mail parsers
find hard: brackets in the subject, unclosed HTML tags, addresses, MIME
parts, header lines, nesting, encoded-words, long lines, ...  "25M" is just
under the default limits.max_message_size (25 MiB), so the SMTP door takes
it too.  Standard library only; tests/integration/66-pathological.t runs
it and reads KINDS and SIZES.
"""
import sys

SIZES = {"64K": 64 * 1024, "1M": 1024 * 1024, "25M": 25 * 1024 * 1024 - 64 * 1024}

HEAD = (b"From: Patho Logical <patho@sender.test>\r\n"
        b"To: support@acme.test\r\n"
        b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <%s.%d@pathological.test>\r\n"
        b"MIME-Version: 1.0\r\n")


def _head(kind, size, subject=b"pathological"):
    return HEAD % (kind.encode(), size) + b"Subject: " + subject + b"\r\n"


def _fill(unit, n):
    """@unit repeated to about @n bytes."""
    return unit * max(1, n // len(unit))


def _folded(items, sep=b",", per_line=8):
    """A header value of @items, @per_line to a folded line."""
    lines = [sep.join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return (sep + b"\r\n ").join(lines)


def brackets(size):
    """A subject of '[' with one ']' at the end (mr_route_subject_id)."""
    return _head("brackets", size, b"[" * (size - 400) + b"]") + b"\r\nbody\r\n"


def brackets_folded(size):
    """The same, folded into 76-byte lines, with an id at the very end."""
    line = b"[" * 75
    subject = b"\r\n ".join([line] * ((size - 400) // 78)) + b" [TKT-1]"
    return _head("brackets-folded", size, subject) + b"\r\nbody\r\n"


def tags(size):
    """HTML with many <title> and no </title> (html_find_end_tag)."""
    return (_head("tags", size) + b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            + _fill(b"<title>x\r\n", size - 400) + b"end\r\n")


def tags_mixed(size):
    """Unclosed <script>, <style>, <pre>, comments and stray '<' and '&'."""
    unit = b"<title>t<style>s</title><pre><b a=\"x\">&amp;&#x41;&zz;< a <!- \r\n"
    return (_head("tags-mixed", size) + b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            + _fill(unit, size - 400) + b"<script>never closed\r\n")


def addresses(size):
    """To: and Cc: with as many distinct addresses as fit (add_party)."""
    n = (size - 400) // 35
    to = [b"u%07d@r%d.test" % (i, i % 97) for i in range(n)]
    cc = [b"\"C, %d\" <c%07d@c.test>" % (i, i) for i in range(n // 2)]
    head = _head("addresses", size).replace(b"To: support@acme.test\r\n", b"")
    return (head + b"To: support@acme.test," + _folded(to) + b"\r\n"
            + b"Cc: " + _folded(cc) + b"\r\n\r\nbody\r\n")


def addresses_same(size):
    """One address, repeated (the duplicate check of add_party)."""
    n = (size - 400) // 17
    return (_head("addresses-same", size) + b"Cc: " + _folded([b"same@other.test"] * n)
            + b"\r\n\r\nbody\r\n")


def parts(size):
    """A multipart of empty parts (GMime allocates per part)."""
    return (_head("parts", size) + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            + _fill(b"--b\r\n\r\n", size - 400) + b"--b--\r\n")


def header_lines(size):
    """Short header lines (GMime allocates per header)."""
    return _head("header-lines", size) + _fill(b"a:\r\n", size - 400) + b"\r\nbody\r\n"


def part_header_lines(size):
    """The same inside a MIME part and inside an attached message."""
    half = (size - 800) // 2
    return (_head("part-header-lines", size) + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            + b"--b\r\nContent-Type: text/plain\r\n" + _fill(b"a:\r\n", half) + b"\r\ntext\r\n"
            + b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n"
            + _fill(b"b:\r\n", half) + b"\r\ninner body\r\n--b--\r\n")


def nesting(size):
    """multipart in multipart in ... as deep as it fits."""
    unit = b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    return (_head("nesting", size) + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            + _fill(unit, size - 400) + b"--b\r\nContent-Type: text/plain\r\n\r\ncore\r\n--b--\r\n")


def nesting_distinct(size):
    """Nesting with a new boundary at each level (a stack of boundaries)."""
    out = [_head("nesting-distinct", size), b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"]
    n, i = 400, 0
    while n < size - 200:
        unit = b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (i, i + 1)
        out.append(unit)
        n += len(unit)
        i += 1
    out.append(b"--b%d\r\nContent-Type: text/plain\r\n\r\ncore\r\n" % i)
    return b"".join(out)


def encoded_words(size):
    """A subject of base64 words with padding (the RFC 2047 merge) and Q words."""
    words = [b"=?utf-8?B?w6Q=?=", b"=?utf-8?Q?=C3=B6?=", b"=?iso-8859-1?B?5A==?="]
    n = (size - 400) // 20
    subject = _folded([words[i % 3] for i in range(n)], sep=b" ")
    return (_head("encoded-words", size, subject)
            + b"Content-Type: text/plain; charset=utf-8\r\n\r\nbody\r\n")


def long_lines(size):
    """One header line and one body line, each half the message."""
    half = (size - 400) // 2
    return (_head("long-lines", size) + b"X-Long: " + b"x" * half + b"\r\n"
            + b"Content-Type: text/plain\r\n\r\n" + b"y" * half + b"\r\n")


def references(size):
    """A References: header of many ids (one store look-up each)."""
    n = (size - 400) // 18
    refs = [b"<r%d@t.test>" % i for i in range(n)]
    return (_head("references", size) + b"In-Reply-To: <none@t.test>\r\nReferences: "
            + _folded(refs, sep=b" ") + b"\r\n\r\nbody\r\n")


def nul_bytes(size):
    """Text with no charset that is not UTF-8 and has a NUL every 2 bytes."""
    return (_head("nul-bytes", size) + b"Content-Type: text/plain\r\n\r\n"
            + _fill(b"\xe4\x00", size - 400) + b"\r\n")


KINDS = {
    "brackets": brackets,
    "brackets-folded": brackets_folded,
    "tags": tags,
    "tags-mixed": tags_mixed,
    "addresses": addresses,
    "addresses-same": addresses_same,
    "parts": parts,
    "header-lines": header_lines,
    "part-header-lines": part_header_lines,
    "nesting": nesting,
    "nesting-distinct": nesting_distinct,
    "encoded-words": encoded_words,
    "long-lines": long_lines,
    "references": references,
    "nul-bytes": nul_bytes,
}


def generate(kind, size):
    """Returns: the message (bytes) of @kind, about @size bytes ("64K", "1M",
    "25M" or an int)."""
    n = SIZES[size] if isinstance(size, str) else int(size)
    return KINDS[kind](n)


def main(argv):
    if len(argv) == 2 and argv[1] == "--list":
        for name, fn in KINDS.items():
            print("%-18s %s" % (name, fn.__doc__.splitlines()[0]))
        return 0
    if len(argv) != 3 or argv[1] not in KINDS or not (argv[2] in SIZES or argv[2].isdigit()):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 64
    sys.stdout.buffer.write(generate(argv[1], argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
