/* mr-dsn.h - delivery reports: what a bounce says about the mail it returns.
 *
 * Parse stage (GMime).  mailroom sends with a VERP envelope sender
 * (mr-verp.h); what comes back to it is read here: an RFC 3464 delivery
 * status notification (multipart/report; report-type=delivery-status), or
 * one of the plain-text bounces MTAs still send (qmail, Exim, Postfix and
 * sendmail's texts, with the SMTP reply in the prose).  Pure: the caller
 * decides what a report means (a report naming a mail nobody sent, or
 * with the wrong VERP token, is still parsed). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The most recipients an MrDsn holds; the groups after them are not
 * read. */
#define MR_DSN_MAX_RECIPIENTS 100
/* The most bytes of MrDsnRecipient.diagnostic. */
#define MR_DSN_DIAGNOSTIC_MAX 500

/* What a report says about one recipient (RFC 3464 section 2.3).  Text is
 * valid UTF-8 on one line; each member is NULL when the report does not
 * say it, or says it in a form not understood. */
typedef struct {
	char *final_recipient;    /* Final-Recipient: the addr-spec, its address
	                             type ("rfc822;", "utf-8;") stripped, in
	                             mailroom's normal form (mr-address.h) */
	char *original_recipient; /* Original-Recipient: likewise */
	char *action;             /* "failed", "delayed", "delivered", "relayed"
	                             or "expanded" */
	char *status;             /* "5.1.1": class 2, 4 or 5, then 1 to 3 and 1
	                             to 3 digits (RFC 3463) */
	char *diagnostic;         /* Diagnostic-Code without its type ("smtp;"),
	                             unfolded, white space runs made one space,
	                             control characters written as \xNN, at most
	                             MR_DSN_DIAGNOSTIC_MAX bytes; in a plain-text
	                             bounce the SMTP reply quoted for the
	                             recipient */
} MrDsnRecipient;

typedef struct {
	gboolean is_report;       /* a message/delivery-status part was found
	                             (else a plain-text bounce was recognised) */
	GPtrArray *recipients;    /* MrDsnRecipient*, in report order, at most
	                             MR_DSN_MAX_RECIPIENTS; may be empty */
	char *original_message_id; /* (nullable): the returned message's
	                             Message-ID, without angle brackets: from
	                             its text/rfc822-headers or message/rfc822
	                             part, else an Original-Message-ID field of
	                             the report, else a Message-ID: line of the
	                             headers a plain-text bounce quotes */
	char *reporting_mta;      /* (nullable): Reporting-MTA without its type
	                             ("dns;") */
} MrDsn;

/* Reads @raw (a whole message, as it arrived) as a delivery report.
 * A message with a message/delivery-status (or message/
 * global-delivery-status) part, outside any attached message, is a report;
 * without one, a message is a plain-text bounce when it has an
 * X-Failed-Recipients field, or when its text says what bounce texts say
 * ("This is the qmail-send program", "could not be delivered to one or
 * more recipients", ...) and it comes from a mail system (MAILER-DAEMON
 * or postmaster, a null Return-Path, Auto-Submitted, a bounce subject).
 * An auto-reply, a read receipt or a person's mail is none.
 * Never fails on bad input.  Time is linear in the size of @raw, and
 * memory bounded: only so many MIME parts, header lines and bytes of
 * each field are read (the parse stage's limits, tighter), the first
 * MR_DSN_MAX_RECIPIENTS recipient groups, and the first 256 KB of the
 * report and 64 KB of the text.
 * Returns: (transfer full) (nullable): the report, or NULL when @raw is
 * not a delivery report. */
MrDsn *mr_dsn_parse(GBytes *raw);

/* Frees @d and everything it owns; NULL-safe. */
void mr_dsn_free(MrDsn *d);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrDsn, mr_dsn_free)

/* Returns TRUE when @r says the mail will never reach that recipient:
 * Action failed with a 5.x.x status, or failed with no status and a 5xx
 * (or 5.x.x) reply in its diagnostic.  With @r NULL, whether any recipient
 * of @d does. */
gboolean mr_dsn_is_hard(const MrDsn *d, const MrDsnRecipient *r);

G_END_DECLS
