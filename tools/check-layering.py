#!/usr/bin/env python3
"""check-layering.py - the direction between mailroom's folders, checked.

Each folder of src/ uses only the folders listed before it in LAYERS (the
sketch in docs/architecture.md), never one listed after it, so there are no
circles.  A public header include/mailroom/mr-X.h belongs to the folder
that holds mr-X.c or mr-X-*.c (or to the folder OWNER names); a private
header src/F/*.h belongs to F and is included only from F (and from F's
own unit test).  The database engines' headers and JSON keep to their
places.  Unit tests and fuzz targets sit above everything: they include
any public header, but private headers and engine headers only in the test
of the folder that owns them.

Run by `make check-layering` (part of `make check`); prints one line per
violation and exits 1, or prints nothing and exits 0.
"""
import os
import re
import sys

LAYERS = ["core", "model", "parse", "store", "route", "crm", "net", "ingest", "act",
          "daemon", "ctl"]

# Public headers with no mr-X.c of their own: the folder they belong to.
OWNER = {
    "mr-autocleanups.h": "core",  # cleanups of foreign types only
    "mr-service.h": "ingest",     # the services' interface (takes a writer)
    # the store's aggregates (their code is in mr-store*.c)
    "mr-store-event.h": "store", "mr-store-mailbox.h": "store",
    "mr-store-message.h": "store", "mr-store-party.h": "store",
    "mr-store-record.h": "store", "mr-store-rule.h": "store",
    "mr-store-team.h": "store",
}

# Foreign headers that only some files may include: the header, the files
# (as regular expressions on the path) allowed, and why.
FOREIGN = [
    ("sqlite3.h", r"^src/store/mr-sql-sqlite\.c$|^tests/unit/test-store\.c$",
     "SQLite lives in src/store/mr-sql-sqlite.c"),
    ("libpq-fe.h", r"^src/store/mr-sql-pgsql\.c$",
     "libpq lives in src/store/mr-sql-pgsql.c"),
    ("json-glib", r"^(?!src/store/|include/mailroom/mr-store[-.]|include/mailroom/mr-row\.h)",
     "JSON in the store: it answers with structs, src/ctl/ makes JSON"),
    ("libetpan", r"^src/(net|ingest)/|^tests/",
     "libetpan is for the network layer and the doors"),
    ("hs/hs.h", r"^src/model/mr-rule-prefilter\.c$",
     "Hyperscan lives in src/model/mr-rule-prefilter.c"),
]

# The unit test of a folder may reach into that folder's private headers.
TEST_FOLDER = {
    "test-store.c": "store", "test-parse.c": "parse", "test-imap.c": "ingest",
    "test-writer.c": "ingest", "test-spool.c": "ingest", "test-token.c": "net",
    "test-rule-set.c": "model",
}

INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def files(top, exts):
    for root, _, names in os.walk(top):
        for n in sorted(names):
            if n.endswith(exts):
                yield os.path.join(root, n)


def public_owner(header, sources):
    """The folder a public header belongs to, or None."""
    if header in OWNER:
        return OWNER[header]
    base = header[:-2]
    for path in sources:
        name = os.path.basename(path)
        if name == base + ".c" or (name.startswith(base + "-") and name.endswith(".c")):
            return path.split("/")[1]
    return None


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    errors = []
    sources = sorted(files("src", (".c",)))
    owners = {}
    for h in sorted(os.listdir("include/mailroom")):
        if not h.endswith(".h"):
            continue
        folder = public_owner(h, sources)
        if folder is None:
            errors.append("include/mailroom/%s: no folder holds mr-*.c for it; say which "
                          "in OWNER (tools/check-layering.py)" % h)
        elif folder not in LAYERS:
            errors.append("include/mailroom/%s: folder %s is not in LAYERS" % (h, folder))
        else:
            owners[h] = folder
    for folder in os.listdir("src"):
        if folder not in LAYERS:
            errors.append("src/%s: not in LAYERS (tools/check-layering.py)" % folder)

    def check(path, folder, test_of=None):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            for name, allowed, why in FOREIGN:
                if name in inc and not re.search(allowed, path):
                    errors.append("%s: includes %s: %s" % (path, inc, why))
            if inc.startswith("mailroom/"):
                h = inc[len("mailroom/"):]
                other = owners.get(h)
                if other is None:
                    continue
                if folder is not None and LAYERS.index(other) > LAYERS.index(folder):
                    errors.append("%s: includes %s of %s, a folder above %s" %
                                  (path, inc, other, folder))
            elif inc.endswith("-private.h") or (inc.startswith("mr-") and inc.endswith(".h")):
                # a private header: next to the includer, or ../../src/F/...
                where = os.path.normpath(os.path.join(os.path.dirname(path), inc))
                if not os.path.exists(where):
                    found = [p for p in files("src", (".h",)) if os.path.basename(p) == inc]
                    if not found:
                        continue
                    where = found[0]
                if not where.startswith("src/"):
                    continue
                other = where.split("/")[1]
                if folder is not None and other != folder:
                    errors.append("%s: includes %s, private to src/%s" % (path, inc, other))
                if folder is None and other != test_of:
                    errors.append("%s: includes %s, private to src/%s (only its own "
                                  "unit test may)" % (path, inc, other))

    for path in sorted(files("src", (".c", ".h"))):
        check(path, path.split("/")[1])
    for h, folder in sorted(owners.items()):
        check("include/mailroom/" + h, folder)
    for path in sorted(files("tests/unit", (".c", ".h"))) + sorted(files("tests/fuzz", (".c",))):
        check(path, None, TEST_FOLDER.get(os.path.basename(path)))
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
