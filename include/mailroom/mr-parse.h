/* mr-parse.h - stage 2: raw bytes to a plain MrMessage (GMime).
 *
 * Parsing never fails on bytes: whatever cannot be understood degrades to
 * empty fields, and the message says so in @status and @problem.  The raw
 * bytes are the caller's; the parse keeps no reference to them. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
	MR_PARSE_OK,       /* parsed as a message */
	MR_PARSE_DEGRADED, /* parsed, but something was broken (see @problem) */
	MR_PARSE_FAILED,   /* not a message at all: only the raw bytes are useful */
} MrParseStatus;

typedef enum {
	MR_AUTO_NONE,   /* written by a person */
	MR_AUTO_REPLY,  /* RFC 3834 auto-reply, vacation, X-Autoreply, ... */
	MR_AUTO_BULK,   /* Precedence bulk/list/junk, List-Id, auto-generated */
	MR_AUTO_BOUNCE, /* delivery status report, empty Return-Path */
} MrAutoKind;

typedef struct {
	char *name;  /* (nullable): display name, decoded to UTF-8 */
	char *email; /* addr-spec, lower-cased, never NULL, may be "" */
} MrAddress;

typedef struct {
	char *filename;     /* (nullable): decoded file name */
	char *content_type; /* "type/subtype", lower-case */
	gsize size;         /* decoded size in bytes */
	char *sha256;       /* hex digest of the decoded bytes */
	GBytes *data;       /* the decoded bytes */
} MrAttachment;

/* A top-level header field of the message. */
typedef struct {
	char *name;  /* as written */
	char *value; /* unfolded, encoded-words decoded, valid UTF-8 ("" when
			empty) */
} MrHeader;

typedef struct {
	MrParseStatus status;
	char *problem;            /* (nullable): why DEGRADED or FAILED */
	char *subject;            /* decoded UTF-8, "" when absent */
	char *subject_normalised; /* @subject without Re:/Fwd:/... prefixes */
	MrAddress *from;          /* (nullable): first From: mailbox */
	MrAddress *sender;        /* (nullable) */
	MrAddress *reply_to;      /* (nullable): first Reply-To: mailbox */
	GPtrArray *to;            /* MrAddress*, all mailboxes (groups flattened) */
	GPtrArray *cc;            /* MrAddress* */
	char *message_id;         /* (nullable): without angle brackets */
	char *in_reply_to;        /* (nullable): without angle brackets */
	GPtrArray *references;    /* char*, without angle brackets, oldest first */
	GPtrArray *auth_results;  /* char*: Authentication-Results values
	                             (RFC 8601), unfolded, in header order;
	                             the first 32 (an MTA adds its own on top) */
	GPtrArray *headers;       /* MrHeader*: every top-level header field,
	                             in order (within parse.max_header_lines) */
	gint64 date;              /* Date: as Unix time, 0 when absent/invalid */
	char *body_text;          /* UTF-8 text body ("" when none); HTML
	                             reduced to text if no text/plain part */
	GPtrArray *attachments;   /* MrAttachment* */
	gboolean is_forward;      /* subject prefix, message/rfc822 part or an
	                             inline forwarded block was seen */
	MrAddress *original_from; /* (nullable): the forwarded mail's sender */
	char *original_subject;   /* (nullable): the forwarded mail's subject */
	MrAutoKind auto_kind;
	char *auto_reason;        /* (nullable): the header that decided it,
	                             e.g. "Auto-Submitted: auto-replied" */
} MrMessage;

/* The defaults of the MrParseOptions limits (parse.max_* in the
 * configuration).  They keep the memory GMime allocates per part, header
 * and address, and the work done later per part and address, far below
 * what the message's own size allows. */
#define MR_PARSE_DEFAULT_MAX_MIME_PARTS 10000
#define MR_PARSE_DEFAULT_MAX_HEADER_LINES 50000
#define MR_PARSE_DEFAULT_MAX_ADDRESSES 1000
#define MR_PARSE_DEFAULT_MAX_REFERENCES 100
#define MR_PARSE_DEFAULT_MAX_HEADER_SIZE 102400

typedef struct {
	/* (nullable): charsets tried, in order, for raw 8-bit header and body
	 * text that is not valid UTF-8 and has no declared charset; NULL
	 * means { "utf-8", "windows-1252", NULL }.  Raw 8-bit headers try
	 * UTF-8 and the charset= of the first text part before this list. */
	const char *const *fallback_charsets;
	/* Limits, 0 for the MR_PARSE_DEFAULT_* value.  A linear scan of the
	 * bytes counts before GMime sees them: past @max_mime_parts lines that
	 * may begin a MIME part ("--...") or @max_header_lines header fields
	 * (the top level, parts and attached messages together), only the
	 * bytes before that line are parsed; the mailboxes of To, Cc and Bcc
	 * after the first @max_addresses are left out (and, counted apart,
	 * those of From, Sender and Reply-To), and so is what a header field has
	 * past @max_header_size bytes.  Each makes the message
	 * MR_PARSE_DEGRADED and says so in @problem.  References: keeps its
	 * first id and the last @max_references - 1 (not a problem: mail
	 * clients trim it the same way). */
	guint max_mime_parts;
	guint max_header_lines;
	guint max_addresses;
	guint max_references;
	guint max_header_size;
} MrParseOptions;

/* Initialises GMime once per process; safe to call more than once. */
void mr_parse_init(void);

/* Parses @raw (a whole RFC 5322 message; a leading mbox "From " line is
 * skipped, and so are blanks before the first header, which make the
 * message MR_PARSE_DEGRADED).  @opts may be NULL for defaults.  Never
 * fails: a message that is not one (no bytes at all included) comes back
 * with status MR_PARSE_FAILED and empty fields.  Time and memory are
 * linear in the size of @raw.
 * Returns: (transfer full): the message; free with mr_message_free(). */
MrMessage *mr_parse_message(GBytes *raw, const MrParseOptions *opts);

/* Frees @msg and everything it owns; NULL-safe. */
void mr_message_free(MrMessage *msg);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrMessage, mr_message_free)

/* Returns the offset of the first byte after a leading mbox "From " line of
 * @data, or 0 when there is none.  The content key and the parse both start
 * there, so a message piped with and without that line is one message. */
gsize mr_parse_skip_mbox_from(const guint8 *data, gsize len);

/* Strips reply and forward prefixes (Re, AW, Fwd, Fw, WG, SV, VS, TR, RV,
 * Antw, Re[2], Re(2), repeated, any case, with or without the space, also
 * full-width colon) and surrounding white space from @subject.
 * Sets *@was_forward (nullable) when one of the stripped prefixes is a
 * forward prefix.  Returns: (transfer full): the normalised subject. */
char *mr_subject_normalise(const char *subject, gboolean *was_forward);

/* Looks for an inline forwarded block in @body ("---------- Forwarded
 * message ---------", "-----Original Message-----", "Begin forwarded
 * message:", "-------- Weitergeleitete Nachricht --------", "-----Ursprüngliche
 * Nachricht-----", ...) followed by a From:/Von: line.  On success returns
 * TRUE and sets @from_out (transfer full) and @subject_out (transfer full,
 * nullable; from a Subject:/Betreff: line). */
gboolean mr_parse_find_inline_forward(const char *body, MrAddress **from_out,
				      char **subject_out);

/* Reduces an HTML document to plain text: drops tags, script and style,
 * turns block ends and <br> into new lines, decodes entities.
 * Returns: (transfer full): UTF-8 text. */
char *mr_parse_html_to_text(const char *html);

/* Frees an attachment and its data; NULL-safe. */
void mr_attachment_free(MrAttachment *att);

/* Frees an address; NULL-safe. */
void mr_address_free(MrAddress *addr);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrAddress, mr_address_free)

G_END_DECLS
