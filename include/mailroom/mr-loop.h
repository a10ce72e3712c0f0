/* mr-loop.h - may mailroom answer this message automatically?
 *
 * Route stage; a pure decision over a parsed message, its envelope sender
 * and the configuration.  RFC 3834 section 2 and experience: never answer
 * automatically what was itself automatic (an auto-reply, a delivery
 * report, bulk or list mail), what comes from an address nobody reads
 * (noreply, mailer-daemon, postmaster, bounces, a null envelope sender),
 * from the organisation itself, or from mailroom. */
#pragma once

#include <glib.h>

#include "mailroom/mr-config.h"
#include "mailroom/mr-parse.h"

G_BEGIN_DECLS

/* The header field mailroom puts on every mail it sends, its value the
 * config's hostname.  A message that carries it, naming any host, is
 * never answered: it is mailroom's own mail come back (another mailroom's
 * too, which would answer in turn). */
#define MR_LOOP_HEADER "X-Mailroom-Loop"

/* Decides whether an automatic answer (an acknowledgement, a workflow's
 * mail) to @msg, received with envelope sender @envelope_from, may go out.
 * @envelope_from is the SMTP MAIL FROM, with or without angle brackets;
 * "" or "<>" is the null reverse-path; NULL means not known (the IMAP
 * door), and then only the headers count.
 *
 * Refused, in this order, with the reason:
 * - MR_LOOP_HEADER present: "sent by mailroom (X-Mailroom-Loop: HOST)";
 * - a null envelope sender: "null envelope sender";
 * - the header fields of automatic mail (names in any case):
 *   Auto-Submitted other than "no" ("auto-reply (Auto-Submitted:
 *   auto-replied)", "automatic mail (Auto-Submitted: auto-generated)"),
 *   X-Autoreply and X-Autorespond other than "no"/"false" ("auto-reply"),
 *   X-Auto-Response-Suppress naming All, AutoReply, OOF, DR, NDR, RN or NRN
 *   ("auto-answers suppressed"), Precedence bulk, junk, list or auto_reply
 *   ("bulk mail", "list mail", "auto-reply"), List-Id and
 *   List-Unsubscribe ("list mail (List-Id)"),
 *   X-MS-Exchange-Generated-Message-Source ("automatic mail"), each with
 *   the field and its value (at most 64 bytes; List-* without it);
 * - what the parser classified (MrMessage.auto_kind, e.g. a delivery
 *   report by its MIME structure, a "Return-Path: <>"): "delivery report
 *   (Content-Type: multipart/report)" and the like;
 * - an address nobody reads as the envelope sender, the From: or the
 *   Reply-To: ("envelope sender mailer-daemon@x.test", "sender
 *   noreply@x.test", "reply-to no-reply@x.test"): a local part holding one
 *   of the words noreply, donotreply, mailer-daemon, postmaster, bounce,
 *   bounces as a whole, separator-delimited piece.  Inside a word one of
 *   '-', '_' or '.' may stand between its parts (no-reply, no_reply,
 *   do-not-reply, mailer_daemon); the word begins the local part or
 *   follows one of '-', '_', '.', '+', '=' and ends it or is followed by
 *   one of them (noreply-abc, shop.noreply, prvs=1234=bounces-7).  So
 *   "noreplyfan@x.test" and "bouncer@x.test" are answered: a word glued to
 *   other letters is a name, not a role;
 * - a mailroom address (mr_config_find_address(), any +detail) as the
 *   envelope sender or the From: ("mailroom address support@acme.test");
 * - an own domain (mr_config_is_own_domain()) in the From: or, when the
 *   message has none, the envelope sender ("own domain acme.test").  The
 *   envelope sender alone does not count here: an alias that forwards
 *   with SRS writes the own domain into every customer's mail.
 * Addresses and values quoted are made one line of printable text.
 *
 * Returns: (transfer full) (nullable): NULL when an automatic answer is
 * allowed, else the reason, for the event and the log. */
char *mr_loop_refusal(const MrConfig *cfg, const MrMessage *msg, const char *envelope_from);

G_END_DECLS
