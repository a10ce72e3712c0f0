/* mr-address.h - the one normal form of an email address.
 *
 * Core.  Every place that stores, compares or looks up an address (the
 * config's mailroom addresses, SMTP envelopes, parsed headers, the CLI)
 * goes through mr_address_normalise(), so that the same address is the
 * same string everywhere, whatever the process's locale. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Returns: (transfer full): @address (nullable: "" for NULL) in mailroom's
 * normal form: surrounding white space removed, valid UTF-8 (bytes that
 * are not become U+FFFD), Unicode NFC, ASCII letters lower-cased by ASCII
 * rules and other letters by Unicode's locale-independent simple lower-case
 * mapping.  So "INFO@Acme.Test" is "info@acme.test" under any locale
 * (tr_TR included, where a locale-aware lower case gives a dotless ı), and
 * "JÖRG@x" and a decomposed "Jo\u0308rg@x" are both "jörg@x". */
char *mr_address_normalise(const char *address);

G_END_DECLS
