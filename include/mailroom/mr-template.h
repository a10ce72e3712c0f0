/* mr-template.h - the texts of outgoing mail: a subject and a body with
 * placeholders such as {{record.id}}, checked when saved and rendered when
 * a mail is made.
 *
 * Act layer, pure: no I/O, no database.  A placeholder is "{{", a name of
 * mr_template_placeholders(), "}}", on one line, with spaces or tabs
 * allowed around the name ("{{ contact.name }}").  There is no escape: a template cannot
 * write "{{" itself. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define MR_TEMPLATE_ERROR (mr_template_error_quark())

typedef enum {
	MR_TEMPLATE_ERROR_UNKNOWN,  /* {{name}} with a name no placeholder has */
	MR_TEMPLATE_ERROR_UNCLOSED, /* "{{" without "}}" after it */
	MR_TEMPLATE_ERROR_EMPTY,    /* "{{}}" or "{{ }}" */
} MrTemplateError;

GQuark mr_template_error_quark(void);

/* The values a template can use; every member is nullable and renders as
 * "" when NULL.  Borrowed: the caller keeps them alive while rendering. */
typedef struct {
	const char *contact_name;    /* {{contact.name}} */
	const char *contact_email;   /* {{contact.email}} */
	const char *owner_name;      /* {{owner.name}} */
	const char *owner_email;     /* {{owner.email}} */
	const char *record_id;       /* {{record.id}}: the display id, "TKT-3" */
	const char *record_subject;  /* {{record.subject}} */
	const char *record_status;   /* {{record.status}} */
	const char *message_subject; /* {{message.subject}}: the subject of the
					mail answered, best without its Re: */
} MrTemplateValues;

/* The built-in ticket-ack template: the acknowledgement a customer gets
 * when a mail opens a ticket.  The record id in brackets in the subject
 * is what routing finds again when the customer answers.  mailroomctl
 * init makes it, by this name, when there is none. */
#define MR_TEMPLATE_TICKET_ACK_NAME "ticket-ack"
#define MR_TEMPLATE_TICKET_ACK_SUBJECT "[{{record.id}}] Re: {{message.subject}}"
#define MR_TEMPLATE_TICKET_ACK_BODY                                                \
	"Hello,\n"                                                                 \
	"\n"                                                                       \
	"thank you for your message. We have opened ticket {{record.id}} for\n"    \
	"your request, and an agent will answer you as soon as possible.\n"        \
	"\n"                                                                       \
	"When you write to us about it, please answer this mail or keep\n"         \
	"[{{record.id}}] in the subject.\n"                                        \
	"\n"                                                                       \
	"Kind regards,\n"                                                          \
	"The support team\n"

/* The templates of the built-in workflows (issue 24), made by mailroomctl
 * init when missing: the follow-up a contact gets when a mail of ours on
 * an opportunity got no answer (from the owner, threaded to the last mail
 * a person wrote); the reminder an owner gets (remind); the mail the new
 * owner of an escalated record gets (escalate). */
#define MR_TEMPLATE_FOLLOW_UP_NAME "follow-up"
#define MR_TEMPLATE_FOLLOW_UP_SUBJECT "Re: {{message.subject}}"
#define MR_TEMPLATE_FOLLOW_UP_BODY                                                 \
	"Hello {{contact.name}},\n"                                                \
	"\n"                                                                       \
	"I am following up on my last message about {{record.subject}}.\n"        \
	"Do you have any questions, or is there anything I can help with?\n"      \
	"\n"                                                                       \
	"Kind regards,\n"                                                          \
	"{{owner.name}}\n"
#define MR_TEMPLATE_REMINDER_NAME "reminder"
#define MR_TEMPLATE_REMINDER_SUBJECT "Reminder: {{record.subject}}"
#define MR_TEMPLATE_REMINDER_BODY                                                  \
	"{{record.id}} ({{record.subject}}) is waiting for you.\n"                 \
	"\n"                                                                       \
	"Contact: {{contact.name}} <{{contact.email}}>\n"                          \
	"Status: {{record.status}}\n"                                              \
	"\n"                                                                       \
	"-- mailroom\n"
#define MR_TEMPLATE_ESCALATION_NAME "escalation"
#define MR_TEMPLATE_ESCALATION_SUBJECT "Escalated: {{record.subject}}"
#define MR_TEMPLATE_ESCALATION_BODY                                                \
	"{{record.id}} ({{record.subject}}) got no answer in time and is\n"        \
	"escalated to you.\n"                                                      \
	"\n"                                                                       \
	"Contact: {{contact.name}} <{{contact.email}}>\n"                          \
	"Status: {{record.status}}\n"                                              \
	"\n"                                                                       \
	"-- mailroom\n"

/* Checks @text (a subject or a body): every "{{" opens a placeholder that
 * "}}" closes and that names one of mr_template_placeholders().  Returns
 * TRUE when it does; else FALSE with @error in MR_TEMPLATE_ERROR saying
 * which and where, the line counted from 1 within @text:
 * "unknown placeholder {{contact.phone}} at line 3" (the name shown
 * printable and cut after 60 bytes), "unclosed {{ at line 2", "empty
 * placeholder {{ }} at line 1".  Time is linear in the length of @text. */
gboolean mr_template_check(const char *text, GError **error);

/* Returns: (transfer full): @text with every placeholder replaced by its
 * value of @v (nullable: every value "").  What mr_template_check()
 * refuses (an unknown, empty or unclosed placeholder) is copied as it is
 * written.  The text and the values are made safe alike
 * (mr_template_clean()): with @for_header the result is one line for a
 * header field, so no value can start a header of its own; without it, a
 * body with LF line ends.  A value is inserted once: a "{{...}}" in it is
 * not expanded.  The result has at most @max_len bytes, cut at a
 * character boundary, and *@truncated (nullable) says whether it was cut;
 * time and memory are linear in the length of @text plus the result,
 * however many placeholders and however long the values. */
char *mr_template_render(const char *text, const MrTemplateValues *v, gboolean for_header,
			 gsize max_len, gboolean *truncated);

/* Returns: (transfer full): @text (nullable: "") made safe as a template's
 * text and values are.  Bytes that are not UTF-8 become U+FFFD.  With
 * @for_header: every control character (C0, DEL, C1: CR and LF
 * included) becomes a space, runs of white space are folded to one
 * space, and the result is trimmed.  Without: control characters other
 * than tab and LF are dropped, and CR LF and a lone CR become LF.
 * At most @max_len bytes, as mr_template_render(). */
char *mr_template_clean(const char *text, gboolean for_header, gsize max_len, gboolean *truncated);

/* Returns: (transfer none): the names of the placeholders, without braces,
 * in a NULL-terminated static array: "contact.name", "contact.email",
 * "owner.name", "owner.email", "record.id", "record.subject",
 * "record.status", "message.subject". */
const char *const *mr_template_placeholders(void);

G_END_DECLS
