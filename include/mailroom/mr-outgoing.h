/* mr-outgoing.h - queueing one outgoing mail about a record (issue 23):
 * the acknowledgement of a ticket, an agent's reply.
 *
 * Act stage.  Inside the caller's transaction (a unit of the writer, or
 * mailroomctl's own): the mail is rendered from a template or given
 * text, composed with GMime (mr-compose.h), stored as a message with
 * direction "out" linked to its record and contact, and queued in the
 * outbox with a VERP secret of its own.  What it may not send -- an
 * automatic mail to an address marked undeliverable, or past the daily
 * limit per recipient -- is held back with the event mail.held, never
 * dropped in silence.  Sending is the outbox's (mr-outbox.h). */
#pragma once

#include <glib.h>

#include "mailroom/mr-compose.h"
#include "mailroom/mr-config.h"
#include "mailroom/mr-record.h"
#include "mailroom/mr-store.h"

G_BEGIN_DECLS

/* What to send. */
typedef struct {
	MrRecordRef record;        /* the record it is about: to its contact */
	gint64 answers;            /* the message it answers (0: none): its
	                              Message-ID threads the mail, its subject
	                              is {{message.subject}} */
	const char *template_name; /* (nullable) the template to render */
	const char *subject;       /* without a template: the subject ... */
	const char *body;          /* ... and the body (UTF-8) */
	MrComposeKind kind;        /* a person's mail, or an automatic one */
	const char *from;          /* (nullable) "Name <address>"; default
	                              relay.from */
	gint64 actor;              /* the user who sends it (0: none) */
	gboolean from_owner;       /* from the record's owner when it has one
				      (else @from, else relay.from) */
	gint64 to_user;            /* a user of ours to write to instead of
				      the record's contact (a reminder, an
				      escalation; 0: the contact) ... */
	const char *to_email;      /* ... at this address */
	const char *to_name;       /* (nullable) @to_email's name */
	int depth;                 /* the workflows that acted before it: the
				      depth of the event mail.held (0: none) */
	gboolean need_outbox_id;   /* the caller wants the outbox entry's id
	                              (else the insert may go without waiting
	                              for it: a round trip less) */
} MrOutgoingRequest;

/* What became of it. */
typedef struct {
	gboolean queued;    /* FALSE when held back */
	gint64 outbox;      /* the outbox entry (need_outbox_id), 0 when held
	                       back */
	char *message_id;   /* (transfer full) its Message-ID, without <> */
	char *held;         /* (transfer full) (nullable): why it was held back */
} MrOutgoingResult;

void mr_outgoing_result_clear(MrOutgoingResult *r);

/* Queues the mail @req asks for, at @now, inside the open transaction of
 * @store.  Fills @out.  Returns FALSE with @error: MR_STORE_ERROR (a
 * record or template that is not there: MR_STORE_ERROR_NOT_FOUND), or
 * MR_OUTGOING_ERROR for a record without a contact to write to or a mail
 * that cannot be composed. */
gboolean mr_outgoing_queue(MrStore *store, const MrConfig *cfg, const MrOutgoingRequest *req,
			   const char *now, MrOutgoingResult *out, GError **error);

/* A mail on its way: what it needs from the database, then its bytes.
 * mr_outgoing_queue() is the three steps below in one go; the scheduler
 * takes them apart so that the composing runs on a thread of its own,
 * beside the writer. */
typedef struct _MrOutgoingDraft MrOutgoingDraft;

void mr_outgoing_draft_free(MrOutgoingDraft *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrOutgoingDraft, mr_outgoing_draft_free)

/* Step 1, inside a transaction of @store: reads what the mail @req asks
 * for needs (the record, its contact and owner, the answered message, the
 * template); writes nothing.  Returns: (transfer full): the draft (it
 * holds a reference to @cfg), or NULL with @error as mr_outgoing_queue(). */
MrOutgoingDraft *mr_outgoing_prepare(MrStore *store, const MrConfig *cfg,
				     const MrOutgoingRequest *req, GError **error);

/* Step 2, on any thread, without the database: renders and composes the
 * mail, and parses it as it will be stored.  Returns FALSE with @error
 * (MR_OUTGOING_ERROR_COMPOSE, MR_COMPOSE_ERROR). */
gboolean mr_outgoing_compose(MrOutgoingDraft *d, GError **error);

/* Step 3, inside a transaction of @store: holds an automatic mail back
 * (mail.held) when its address is marked undeliverable now or the daily
 * limit is reached; else stores it and queues it in the outbox.  Fills
 * @out.  Returns FALSE with @error. */
gboolean mr_outgoing_write(MrStore *store, MrOutgoingDraft *d, const char *now,
			   MrOutgoingResult *out, GError **error);

/* Step 3 for the @n drafts @drafts, in order, as mr_outgoing_write() for
 * each, with one look-up for the daily limits and undeliverable marks of
 * the automatic ones (the mails queued before one in @drafts count
 * toward its limit).  Fills @outs[i].  Returns FALSE with @error: the
 * inserts travel to the database together, so which mail failed is not
 * known; undo the transaction. */
gboolean mr_outgoing_write_all(MrStore *store, MrOutgoingDraft *const *drafts, guint n,
			       const char *now, MrOutgoingResult *outs, GError **error);

/* An agent's answer on ticket @ticket (`mailroomctl ticket reply`), in
 * one transaction of @store: @body to the ticket's contact, from the user
 * known by @from (nullable: relay.from), threaded to the last mail the
 * ticket received, subject "[TKT-n] Re: SUBJECT"; with @status
 * (nullable) the ticket's new status, set in the same transaction
 * (mr_crm_ticket_set_status()).  A person's mail: no daily limit, no
 * undeliverable mark.  Fills @out.  Returns FALSE with @error
 * (MR_OUTGOING_ERROR, MR_CRM_ERROR for a bad status or an unknown user,
 * MR_STORE_ERROR). */
gboolean mr_outgoing_ticket_reply(MrStore *store, const MrConfig *cfg, gint64 ticket,
				  const char *body, const char *status, const char *from,
				  MrOutgoingResult *out, GError **error);

/* Checks what of @cfg only GMime can read: relay.from must be one
 * mailbox ("Name <address>" or an address).  Returns FALSE with @error
 * (MR_CONFIG_ERROR_INVALID, "PATH: relay.from: ..."). */
gboolean mr_outgoing_check_config(const MrConfig *cfg, GError **error);

/* The envelope sender of outbox entry @id with secret @token under @cfg:
 * bounces+ID-TOKEN@domain (VERP on outgoing.bounce_address).  Returns:
 * (transfer full). */
char *mr_outgoing_envelope_from(const MrConfig *cfg, gint64 id, const char *token);

#define MR_OUTGOING_ERROR (mr_outgoing_error_quark())
GQuark mr_outgoing_error_quark(void);

typedef enum {
	MR_OUTGOING_ERROR_NO_CONTACT, /* the record has no contact with an address */
	MR_OUTGOING_ERROR_COMPOSE,    /* the mail cannot be made (a bad address) */
} MrOutgoingError;

G_END_DECLS
