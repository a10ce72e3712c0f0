/* mr-compose.h - one outgoing mail made into bytes (GMime): the
 * acknowledgements, replies and reminders that the outbox sends.
 *
 * Act layer, pure: no I/O, no database, no clock of its own (the date
 * comes from the caller).  The result is what SMTP DATA carries: CRLF line
 * ends, no line over 998 octets, not dot-stuffed (the SMTP client's job). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MR_COMPOSE_ERROR (mr_compose_error_quark())

typedef enum {
	MR_COMPOSE_ERROR_ADDRESS, /* a From or To address missing or unusable */
	MR_COMPOSE_ERROR_FIELD,   /* another field missing or unusable */
	MR_COMPOSE_ERROR_HEADER,  /* an extra header refused */
} MrComposeError;

GQuark mr_compose_error_quark(void);

typedef enum {
	MR_COMPOSE_PERSON,         /* a person's mail: no Auto-Submitted */
	MR_COMPOSE_AUTO_REPLIED,   /* an answer to a mail (RFC 3834) */
	MR_COMPOSE_AUTO_GENERATED, /* mail of mailroom's own (a reminder) */
} MrComposeKind;

/* References keeps the first id and the last this many, as mail clients
 * trim it (the parse keeps as many). */
#define MR_COMPOSE_REFERENCES_TAIL 20

/* The longest message id taken (without <>): one id on a folded line stays
 * well within 998 octets. */
#define MR_COMPOSE_MAX_ID_LEN 900

/* One mail; everything borrowed.  Names, subject and body are UTF-8
 * (bytes that are not become U+FFFD). */
typedef struct {
	const char *from_name;  /* (nullable): From: display name */
	const char *from_email; /* From: addr-spec */
	const char *to_name;    /* (nullable): To: display name */
	const char *to_email;   /* To: addr-spec */
	const char *subject;    /* (nullable: ""): one line, already rendered */
	const char *body;       /* (nullable: ""): text, LF line ends */
	const char *in_reply_to;           /* (nullable): the Message-ID answered,
					      without <> */
	const char *const *references;     /* (nullable): NULL-terminated, oldest
					      first, without <> */
	const char *message_id;            /* (nullable): the Message-ID to use,
					      without <> (one made earlier by
					      mr_compose_message_id(), so that
					      composing again gives the same
					      mail); NULL makes a new one */
	const char *message_id_domain;     /* the right-hand side of a Message-ID
					      made here (needed when
					      @message_id is NULL) */
	gint64 date_us;                    /* Date: microseconds since the epoch
					      (mr_clock_now_us()) */
	MrComposeKind kind;
	const char *const *extra_headers;  /* (nullable): NULL-terminated
					      "Name: value" strings, e.g.
					      "X-Mailroom-Ticket: TKT-3" */
} MrComposeSpec;

typedef struct {
	GBytes *raw;      /* the message, CRLF line ends */
	char *message_id; /* its Message-ID, without <> */
} MrComposed;

/* Makes the mail @spec describes into @out (overwritten; free its members
 * with mr_composed_clear()).  Headers: Date (RFC 5322, UTC), From, To,
 * Subject, Message-Id, In-Reply-To and References when answering,
 * Auto-Submitted: auto-replied or auto-generated and
 * X-Auto-Response-Suppress: All for automatic mail (no Precedence:
 * RFC 3834 advises against it), the extra headers, MIME-Version: 1.0,
 * Content-Type: text/plain; charset=utf-8 and the Content-Transfer-Encoding
 * GMime finds best under a 7-bit constraint (7bit for short ASCII lines,
 * else quoted-printable or base64).  Names and subject are made one line
 * (mr_template_clean()) and encoded by GMime (RFC 2047 when not ASCII);
 * long headers are folded; the body's line ends become LF before CRLF is
 * written.  References is @references then @in_reply_to (unless it is
 * already the last), trimmed to the first and the last
 * MR_COMPOSE_REFERENCES_TAIL; ids there and in @in_reply_to that are
 * unusable (empty, over MR_COMPOSE_MAX_ID_LEN, a byte outside printable
 * ASCII, or '<' '>') are left out, so that a bad id in someone's mail costs
 * only the threading.
 * Returns TRUE, or FALSE with @error in MR_COMPOSE_ERROR: _ADDRESS for a
 * From or To address that is missing, not ASCII, holds white space,
 * control characters, '<', '>', '(', ')', ',', ';' or '"', or is not
 * exactly one mailbox "local@domain" to GMime; _FIELD for an unusable
 * @message_id or @message_id_domain, or a date GDateTime cannot hold;
 * _HEADER for an extra header whose name is not of RFC 7230 token
 * characters, is one that mr_compose() writes itself (From, To, Cc, Bcc,
 * Subject, Date, Message-Id, In-Reply-To, References, MIME-Version,
 * Content-*, Auto-Submitted, X-Auto-Response-Suppress, Sender,
 * Return-Path), or whose value is not one line of UTF-8 (no control
 * character but tab). */
gboolean mr_compose(const MrComposeSpec *spec, MrComposed *out, GError **error);

/* Frees the members of @c and sets them to NULL; NULL-safe, and safe to
 * call twice. */
void mr_composed_clear(MrComposed *c);

/* Returns: (transfer full) (nullable): a new Message-ID for @domain,
 * without <>: the time (mr_clock_now_us() in base 32), a dot, 128 random
 * bits from the system (getrandom(2)) in hex, "@", @domain:
 * "1j21kihcjj6.560558bb334d8c7bf575882ce843b735@acme.test"; NULL when
 * @domain is not a host name (letters, digits, '-' and '.', no empty
 * label, at most 253 bytes).  Make it once, when the mail is queued, and
 * keep it: it is how answers find the ticket again. */
char *mr_compose_message_id(const char *domain);

G_END_DECLS
