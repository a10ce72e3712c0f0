/* mr-store-sql.c - every SQL statement of mailroom, and the schema history.
 *
 * Store stage.  Statements are prepared once per connection (mr-store.c)
 * and bound with ?N parameters only.  Times are UTC ISO-8601 text.
 *
 * Schema history (SQLite: PRAGMA user_version):
 *   1  users, accounts, contacts, inbox leads, opportunities, tickets,
 *      messages (+ raw bytes), addresses, content-addressed attachments,
 *      deliveries, links, events.
 *   2  the table "user" is "app_user" (a reserved word in PostgreSQL);
 *      message addresses and attachments have an id that keeps their
 *      order (no rowid in PostgreSQL); at most one open lead per contact,
 *      by a partial unique index.
 *   3  typed events: the table event_type names every event type, and
 *      event.type refers to it; an event's record is a lead, an
 *      opportunity or a ticket, with both its kind and its id or neither.
 *      A new event type comes with a migration that adds its name (the
 *      unit test test-store checks that every MrEventType has one).
 *   4  IMAP mailboxes: mailbox_state, what mailroomd knows of each
 *      mailbox it watches (UIDVALIDITY, the last UID handled, the
 *      connection's state for the CLI).
 *   5  mailbox_state remembers the batch in flight (inflight_to, the last
 *      UID of the batch being stored, and inflight_tries): a message that
 *      makes mailroomd die is found and quarantined after a restart
 *      instead of killing every run.
 *   6  events say what happened in typed columns, not in a sentence: the
 *      acting user (actor_id), old_status and new_status, address and
 *      detail (include/mailroom/mr-event.h says which type uses which);
 *      summary is gone, and whoever shows an event makes its sentence
 *      (mr_event_describe()), with the record prefixes of the day.  Rows
 *      of schema 5 get their fields by parsing their sentences; ids and
 *      every other column stay.
 *   7  rules (issue 22): rule, one row per rule with its unique name, its
 *      position (1 to n, unique), enabled, match_any, stop, and its
 *      conditions and actions as canonical texts, one per line; and
 *      rule_version, one row whose counter every change of the rules
 *      bumps in its transaction, for the daemons to poll.
 *   8  rules at work, teams (issue 22): delivery.rules, the names of the
 *      rules that fired for the delivery, one per line (NULL: none);
 *      record_tag, the tags of tickets, leads and opportunities;
 *      app_user.away; team (unique name, lead, turn: the position of the
 *      member the last record went to) and team_member (each user once
 *      per team, at a unique position); the event type team.unassigned.
 *   9  outgoing mail (issue 23): message.direction ('in' or 'out');
 *      contact.undeliverable, why automatic mail no longer goes to the
 *      contact (a hard bounce; NULL: deliverable); job, the stored work
 *      of the scheduler with its state and lease; template; outbox, one
 *      row per outgoing mail with its state, lease, attempts and the
 *      secret of its VERP envelope sender; the event types mail.bounced,
 *      mail.held and mail.failed.
 *  10  business hours (issue 24): calendar (unique name, zone, working
 *      hours), calendar_holiday, team.calendar_id (NULL: "default").
 *  11  workflows (issue 24): workflow (unique name, enabled, trigger,
 *      the event it waits for, conditions, actions, the firings so far)
 *      and workflow_unless (the events that cancel its timers); job's
 *      workflow_id, started, round and depth (a workflow's timer); task
 *      (title, owner, record, due, open or done); the event types
 *      response.sent, ticket.escalated, task.created and task.done. */
#include "mr-store-private.h"

/* 0 -> 1: the first schema (SQLite). */
static const char mr_sql_schema_v1[] =
	"CREATE TABLE user ("
	"  id INTEGER PRIMARY KEY,"
	"  email TEXT NOT NULL UNIQUE,"
	"  name TEXT,"
	"  created TEXT NOT NULL);"
	"CREATE TABLE user_address ("
	"  address TEXT PRIMARY KEY,"
	"  user_id INTEGER NOT NULL REFERENCES user(id)) WITHOUT ROWID;"
	"CREATE TABLE account ("
	"  id INTEGER PRIMARY KEY,"
	"  domain TEXT NOT NULL UNIQUE,"
	"  name TEXT NOT NULL,"
	"  created TEXT NOT NULL);"
	"CREATE TABLE contact ("
	"  id INTEGER PRIMARY KEY,"
	"  email TEXT NOT NULL UNIQUE,"
	"  name TEXT,"
	"  account_id INTEGER REFERENCES account(id),"
	"  owner_id INTEGER REFERENCES user(id),"
	"  created TEXT NOT NULL,"
	"  last_seen TEXT);"
	"CREATE INDEX contact_account ON contact(account_id);"
	"CREATE TABLE lead ("
	"  id INTEGER PRIMARY KEY,"
	"  title TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'new',"
	"  priority TEXT NOT NULL DEFAULT 'normal',"
	"  contact_id INTEGER REFERENCES contact(id),"
	"  owner_id INTEGER REFERENCES user(id),"
	"  opportunity_id INTEGER REFERENCES opportunity(id),"
	"  created TEXT NOT NULL,"
	"  qualified TEXT,"
	"  updated TEXT NOT NULL);"
	"CREATE INDEX lead_contact ON lead(contact_id, status);"
	"CREATE TABLE opportunity ("
	"  id INTEGER PRIMARY KEY,"
	"  title TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'open',"
	"  stage TEXT NOT NULL DEFAULT 'qualification',"
	"  probability INTEGER NOT NULL DEFAULT 10,"
	"  value INTEGER,"
	"  contact_id INTEGER REFERENCES contact(id),"
	"  account_id INTEGER REFERENCES account(id),"
	"  owner_id INTEGER REFERENCES user(id),"
	"  lost_reason TEXT,"
	"  created TEXT NOT NULL,"
	"  updated TEXT NOT NULL,"
	"  closed TEXT);"
	"CREATE TABLE ticket ("
	"  id INTEGER PRIMARY KEY,"
	"  subject TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'new',"
	"  type TEXT NOT NULL DEFAULT 'question',"
	"  priority TEXT NOT NULL DEFAULT 'normal',"
	"  contact_id INTEGER REFERENCES contact(id),"
	"  owner_id INTEGER REFERENCES user(id),"
	"  created TEXT NOT NULL,"
	"  updated TEXT NOT NULL);"
	"CREATE INDEX ticket_contact ON ticket(contact_id);"
	"CREATE TABLE message ("
	"  id INTEGER PRIMARY KEY,"
	"  content_key TEXT NOT NULL UNIQUE,"
	"  message_id TEXT,"
	"  in_reply_to TEXT,"
	"  subject TEXT NOT NULL,"
	"  subject_norm TEXT NOT NULL,"
	"  from_email TEXT,"
	"  from_name TEXT,"
	"  date TEXT,"
	"  received TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  parse_status TEXT NOT NULL,"
	"  parse_problem TEXT,"
	"  auto_kind TEXT,"
	"  auto_reason TEXT,"
	"  is_forward INTEGER NOT NULL DEFAULT 0,"
	"  original_from TEXT,"
	"  snippet TEXT NOT NULL);"
	"CREATE INDEX message_mid ON message(message_id);"
	"CREATE TABLE message_raw ("
	"  message_id INTEGER PRIMARY KEY REFERENCES message(id),"
	"  raw BLOB NOT NULL);"
	"CREATE TABLE message_address ("
	"  message_id INTEGER NOT NULL REFERENCES message(id),"
	"  kind TEXT NOT NULL,"
	"  email TEXT NOT NULL,"
	"  name TEXT);"
	"CREATE INDEX message_address_msg ON message_address(message_id);"
	"CREATE TABLE blob ("
	"  sha256 TEXT PRIMARY KEY,"
	"  size INTEGER NOT NULL,"
	"  data BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE attachment ("
	"  message_id INTEGER NOT NULL REFERENCES message(id),"
	"  sha256 TEXT NOT NULL REFERENCES blob(sha256),"
	"  filename TEXT,"
	"  content_type TEXT NOT NULL,"
	"  size INTEGER NOT NULL);"
	"CREATE INDEX attachment_msg ON attachment(message_id);"
	"CREATE TABLE delivery ("
	"  message_id INTEGER NOT NULL REFERENCES message(id),"
	"  recipient TEXT NOT NULL,"
	"  role TEXT NOT NULL,"
	"  envelope_from TEXT,"
	"  received TEXT NOT NULL,"
	"  PRIMARY KEY (message_id, recipient)) WITHOUT ROWID;"
	"CREATE TABLE link ("
	"  message_id INTEGER NOT NULL REFERENCES message(id),"
	"  kind TEXT NOT NULL,"
	"  record_id INTEGER NOT NULL,"
	"  PRIMARY KEY (message_id, kind, record_id)) WITHOUT ROWID;"
	"CREATE INDEX link_record ON link(kind, record_id);"
	"CREATE TABLE event ("
	"  id INTEGER PRIMARY KEY,"
	"  created TEXT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  record_kind TEXT,"
	"  record_id INTEGER,"
	"  message_id INTEGER REFERENCES message(id),"
	"  summary TEXT);"
	"CREATE INDEX event_record ON event(record_kind, record_id);"
	"CREATE INDEX event_message ON event(message_id);";

/* 1 -> 2 (SQLite).  Tables that gain an id are copied, with their rows
 * in rowid order; everything else keeps its rows in place. */
static const char mr_sql_migrate_v2[] =
	"ALTER TABLE user RENAME TO app_user;"
	"CREATE TABLE message_address_v2 ("
	"  id INTEGER PRIMARY KEY,"
	"  message_id INTEGER NOT NULL REFERENCES message(id),"
	"  kind TEXT NOT NULL,"
	"  email TEXT NOT NULL,"
	"  name TEXT);"
	"INSERT INTO message_address_v2 (id, message_id, kind, email, name)"
	"  SELECT rowid, message_id, kind, email, name FROM message_address ORDER BY rowid;"
	"DROP TABLE message_address;"
	"ALTER TABLE message_address_v2 RENAME TO message_address;"
	"CREATE INDEX message_address_msg ON message_address(message_id);"
	"CREATE TABLE attachment_v2 ("
	"  id INTEGER PRIMARY KEY,"
	"  message_id INTEGER NOT NULL REFERENCES message(id),"
	"  sha256 TEXT NOT NULL REFERENCES blob(sha256),"
	"  filename TEXT,"
	"  content_type TEXT NOT NULL,"
	"  size INTEGER NOT NULL);"
	"INSERT INTO attachment_v2 (id, message_id, sha256, filename, content_type, size)"
	"  SELECT rowid, message_id, sha256, filename, content_type, size FROM attachment"
	"  ORDER BY rowid;"
	"DROP TABLE attachment;"
	"ALTER TABLE attachment_v2 RENAME TO attachment;"
	"CREATE INDEX attachment_msg ON attachment(message_id);"
	"CREATE UNIQUE INDEX lead_open_contact ON lead(contact_id)"
	"  WHERE status IN ('new', 'in_progress');";

/* The event types of schema 3, both engines. */
#define EVENT_TYPES_V3                                                              \
	"CREATE TABLE event_type (name TEXT PRIMARY KEY);"                        \
	"INSERT INTO event_type (name) VALUES ('ticket.created'), ('ticket.reopened'),"\
	" ('ticket.status'), ('lead.created'), ('lead.converted'), ('lead.archived'),"\
	" ('opportunity.created'), ('opportunity.won'), ('opportunity.lost'),"       \
	" ('message.linked'), ('reply.received'), ('link.refused'),"                \
	" ('sender.untrusted');"                                                    \
	/* Rows of another type (none known) keep it: every row is kept. */         \
	"INSERT INTO event_type (name) SELECT DISTINCT type FROM event WHERE true"  \
	" ON CONFLICT DO NOTHING;"

#define RECORD_KIND_CHECK "CHECK (record_kind IN ('lead', 'opportunity', 'ticket'))"
#define EVENT_KIND_CHECK RECORD_KIND_CHECK
#define EVENT_RECORD_CHECK "CHECK ((record_kind IS NULL) = (record_id IS NULL))"

/* 2 -> 3 (SQLite, which adds constraints by copying the table; the ids
 * stay, so a consumer's last id still means the same event). */
static const char mr_sql_migrate_v3[] =
	EVENT_TYPES_V3
	"CREATE TABLE event_v3 ("
	"  id INTEGER PRIMARY KEY,"
	"  created TEXT NOT NULL,"
	"  type TEXT NOT NULL REFERENCES event_type(name),"
	"  record_kind TEXT,"
	"  record_id INTEGER,"
	"  message_id INTEGER REFERENCES message(id),"
	"  summary TEXT, " EVENT_KIND_CHECK ", " EVENT_RECORD_CHECK ");"
	"INSERT INTO event_v3 (id, created, type, record_kind, record_id, message_id, summary)"
	"  SELECT id, created, type, record_kind, record_id, message_id, summary FROM event"
	"  ORDER BY id;"
	"DROP TABLE event;"
	"ALTER TABLE event_v3 RENAME TO event;"
	"CREATE INDEX event_record ON event(record_kind, record_id);"
	"CREATE INDEX event_message ON event(message_id);";

/* 3 -> 4: the state of IMAP mailboxes, by the name of their imap entry
 * (last_uid: every message up to it is stored, or quarantined, and had
 * its after action), and the quarantine: messages of a mailbox that could
 * not be stored, with their bytes, until a retry stores them. */
#define QUARANTINE_V4(ID, BYTES)                                                    \
	"CREATE TABLE quarantine (" ID                                              \
	"  mailbox TEXT NOT NULL,"                                                  \
	"  uidvalidity BIGINT NOT NULL,"                                            \
	"  uid BIGINT NOT NULL,"                                                    \
	"  reason TEXT NOT NULL,"                                                   \
	"  size BIGINT NOT NULL,"                                                   \
	"  raw " BYTES " NOT NULL,"                                                 \
	"  created TEXT NOT NULL,"                                                  \
	"  UNIQUE (mailbox, uidvalidity, uid));"

#define MAILBOX_STATE_V4                                                            \
	"CREATE TABLE mailbox_state ("                                              \
	"  name TEXT PRIMARY KEY,"                                                  \
	"  uidvalidity BIGINT,"                                                     \
	"  last_uid BIGINT NOT NULL DEFAULT 0,"                                     \
	"  state TEXT NOT NULL CHECK (state IN ('connecting', 'connected', 'idle',"\
	"    'polling', 'backoff', 'auth_failed', 'stopped')),"                     \
	"  backlog BIGINT NOT NULL DEFAULT 0,"                                      \
	"  last_error TEXT,"                                                        \
	"  updated TEXT NOT NULL);"

static const char mr_sql_migrate_v4[] =
	QUARANTINE_V4("id INTEGER PRIMARY KEY,", "BLOB") MAILBOX_STATE_V4;

/* 4 -> 5 (both engines). */
static const char mr_sql_migrate_v5[] =
	"ALTER TABLE mailbox_state ADD COLUMN inflight_to BIGINT NOT NULL DEFAULT 0;"
	"ALTER TABLE mailbox_state ADD COLUMN inflight_tries BIGINT NOT NULL DEFAULT 0;";

/* 5 -> 6 (both engines, @POS: SQLite's instr or PostgreSQL's strpos, the
 * one dialect difference): the typed columns, filled from the sentences
 * of schema 5 as mr_event_describe() made them ("TKT-1 status new ->
 * pending"; a display id has no spaces, nor has a status, an address or
 * an authserv-id), then summary goes.  The new status of a closed lead or
 * opportunity and of a reopened ticket is its type's.  A row of a type
 * this mailroom does not know keeps its sentence in detail.  SQLite has
 * had ALTER TABLE DROP COLUMN since 3.35, and the constraints of schema 3
 * stay as they are: no copy of the table. */
/* The text of column @s after the first @sep in it, and before it; NULL
 * when @sep is not there (an event that lacks the fact). */
#define AFTER_V6(POS, s, sep)                                                       \
	"(CASE WHEN " POS "(" s ", '" sep "') > 0 THEN substr(" s ", " POS "(" s    \
	", '" sep "') + length('" sep "')) END)"
#define BEFORE_V6(POS, s, sep)                                                      \
	"(CASE WHEN " POS "(" s ", '" sep "') > 0 THEN substr(" s ", 1, " POS "("   \
	s ", '" sep "') - 1) END)"
#define EVENT_FACTS_V6(POS)                                                         \
	"ALTER TABLE event ADD COLUMN actor_id BIGINT REFERENCES app_user(id);"    \
	"ALTER TABLE event ADD COLUMN old_status TEXT;"                             \
	"ALTER TABLE event ADD COLUMN new_status TEXT;"                             \
	"ALTER TABLE event ADD COLUMN address TEXT;"                                \
	"ALTER TABLE event ADD COLUMN detail TEXT;"                                 \
	"UPDATE event SET"                                                          \
	" old_status = CASE type WHEN 'ticket.status' THEN "                        \
	BEFORE_V6(POS, AFTER_V6(POS, "summary", " status "), " -> ") " END,"        \
	" new_status = CASE type"                                                   \
	"  WHEN 'ticket.status' THEN " AFTER_V6(POS, "summary", " -> ")             \
	"  WHEN 'ticket.reopened' THEN 'open'"                                      \
	"  WHEN 'lead.converted' THEN 'converted' WHEN 'lead.archived' THEN 'archived'"\
	"  WHEN 'opportunity.won' THEN 'won' WHEN 'opportunity.lost' THEN 'lost' END,"\
	" address = CASE type WHEN 'sender.untrusted' THEN "                        \
	BEFORE_V6(POS, AFTER_V6(POS, "summary", "From "), " not authenticated (") " END,"\
	" detail = CASE"                                                            \
	"  WHEN type IN ('ticket.created', 'lead.created', 'opportunity.created') THEN "\
	AFTER_V6(POS, "summary", " created: ")                                      \
	"  WHEN type = 'opportunity.lost' THEN " AFTER_V6(POS, "summary", " lost: ")\
	"  WHEN type = 'link.refused' THEN "                                        \
	BEFORE_V6(POS, "summary", " named in the subject, not attached")            \
	"  WHEN type = 'sender.untrusted' THEN "                                    \
	BEFORE_V6(POS, AFTER_V6(POS, "summary", "(Authentication-Results of "),     \
		  "): not taken")                                                    \
	"  WHEN type IN ('ticket.reopened', 'ticket.status', 'lead.converted',"     \
	"   'lead.archived', 'opportunity.won', 'message.linked', 'reply.received')"\
	"   THEN NULL"                                                              \
	"  ELSE summary END;"                                                       \
	"ALTER TABLE event DROP COLUMN summary;"

static const char mr_sql_migrate_v6[] = EVENT_FACTS_V6("instr");

/* 6 -> 7 (both engines, @ID: the id column in the engine's words): the
 * rules and their change counter.  Positions are unique as well as at
 * least 1: a change that renumbers moves the rows it touches past
 * MR_SQL_RULE_PARK first, then back (mr_store_rules_rotate()), since
 * both engines check a unique constraint row by row, not at the end of
 * the statement.  Dense positions (1 to n, no gap) are the CRM layer's
 * to keep: no constraint says "no gap". */
#define RULES_V7(ID)                                                                \
	"CREATE TABLE rule (" ID                                                    \
	"  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"                           \
	"  position INTEGER NOT NULL UNIQUE CHECK (position >= 1),"                \
	"  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"          \
	"  match_any INTEGER NOT NULL DEFAULT 0 CHECK (match_any IN (0, 1)),"      \
	"  stop INTEGER NOT NULL DEFAULT 0 CHECK (stop IN (0, 1)),"                \
	"  conditions TEXT NOT NULL CHECK (conditions <> ''),"                     \
	"  actions TEXT NOT NULL,"                                                  \
	"  created TEXT NOT NULL,"                                                  \
	"  updated TEXT NOT NULL);"                                                 \
	"CREATE TABLE rule_version ("                                               \
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"                                  \
	"  version BIGINT NOT NULL CHECK (version >= 0));"                          \
	"INSERT INTO rule_version (id, version) VALUES (1, 0);"

static const char mr_sql_migrate_v7[] = RULES_V7("id INTEGER PRIMARY KEY,");

/* 7 -> 8 (both engines, @ID: the id column in the engine's words).  A
 * team's turn is the position of the member who was given the last
 * record (0: none yet); the next is the first member after it who is not
 * away, wrapping round.  A member's position stays when others leave: a
 * gap is harmless, and the turn keeps its meaning. */
#define TEAMS_V8(ID)                                                                \
	"ALTER TABLE delivery ADD COLUMN rules TEXT;"                               \
	"ALTER TABLE app_user ADD COLUMN away INTEGER NOT NULL DEFAULT 0"           \
	"  CHECK (away IN (0, 1));"                                                 \
	"CREATE TABLE record_tag ("                                                 \
	"  record_kind TEXT NOT NULL " RECORD_KIND_CHECK ","                        \
	"  record_id BIGINT NOT NULL,"                                              \
	"  tag TEXT NOT NULL CHECK (tag <> ''),"                                    \
	"  PRIMARY KEY (record_kind, record_id, tag));"                             \
	"CREATE TABLE team (" ID                                                    \
	"  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"                           \
	"  lead_id BIGINT REFERENCES app_user(id),"                                 \
	"  turn BIGINT NOT NULL DEFAULT 0 CHECK (turn >= 0),"                       \
	"  created TEXT NOT NULL);"                                                 \
	"CREATE TABLE team_member ("                                                \
	"  team_id BIGINT NOT NULL REFERENCES team(id),"                            \
	"  user_id BIGINT NOT NULL REFERENCES app_user(id),"                        \
	"  position BIGINT NOT NULL CHECK (position >= 1),"                         \
	"  PRIMARY KEY (team_id, user_id),"                                         \
	"  UNIQUE (team_id, position));"                                            \
	"CREATE INDEX team_member_user ON team_member(user_id);"                   \
	"INSERT INTO event_type (name) VALUES ('team.unassigned');"

static const char mr_sql_migrate_v8[] = TEAMS_V8("id INTEGER PRIMARY KEY,");

/* 8 -> 9 (both engines, @ID: the id column in the engine's words).  A
 * job or an outgoing mail being worked on carries a lease (claimed_until)
 * and the claim that took it; one whose lease ran out is due again.  The
 * outbox's recipient and created serve the daily limit of automatic mail
 * per recipient. */
#define OUTGOING_V9(ID)                                                             \
	"ALTER TABLE message ADD COLUMN direction TEXT NOT NULL DEFAULT 'in'"       \
	"  CHECK (direction IN ('in', 'out'));"                                     \
	"ALTER TABLE contact ADD COLUMN undeliverable TEXT;"                        \
	"CREATE TABLE job (" ID                                                     \
	"  kind TEXT NOT NULL CHECK (kind <> ''),"                                  \
	"  due TEXT NOT NULL,"                                                      \
	"  payload TEXT,"                                                           \
	"  status TEXT NOT NULL DEFAULT 'due' CHECK (status IN"                     \
	"    ('due', 'running', 'done', 'failed', 'cancelled')),"                   \
	"  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"              \
	"  last_error TEXT,"                                                        \
	"  record_kind TEXT " RECORD_KIND_CHECK ","                                 \
	"  record_id BIGINT,"                                                       \
	"  message_id BIGINT REFERENCES message(id),"                               \
	"  claimed_until TEXT,"                                                     \
	"  claim TEXT,"                                                             \
	"  created TEXT NOT NULL,"                                                  \
	"  updated TEXT NOT NULL,"                                                  \
	"  CHECK ((record_kind IS NULL) = (record_id IS NULL)));"                   \
	"CREATE INDEX job_due ON job(status, due);"                                 \
	"CREATE TABLE template (" ID                                                \
	"  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"                           \
	"  subject TEXT NOT NULL,"                                                  \
	"  body TEXT NOT NULL,"                                                     \
	"  created TEXT NOT NULL,"                                                  \
	"  updated TEXT NOT NULL);"                                                 \
	"CREATE TABLE outbox (" ID                                                  \
	"  message_id BIGINT NOT NULL UNIQUE REFERENCES message(id),"               \
	"  token TEXT NOT NULL CHECK (token <> ''),"                                \
	"  recipient TEXT NOT NULL CHECK (recipient <> ''),"                        \
	"  contact_id BIGINT REFERENCES contact(id),"                               \
	"  record_kind TEXT " RECORD_KIND_CHECK ","                                 \
	"  record_id BIGINT,"                                                       \
	"  auto INTEGER NOT NULL CHECK (auto IN (0, 1)),"                           \
	"  status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN"                  \
	"    ('queued', 'sending', 'sent', 'failed', 'cancelled', 'bounced')),"     \
	"  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"              \
	"  next_attempt TEXT NOT NULL,"                                             \
	"  claimed_until TEXT,"                                                     \
	"  claim TEXT,"                                                             \
	"  last_error TEXT,"                                                        \
	"  bounce_status TEXT,"                                                     \
	"  created TEXT NOT NULL,"                                                  \
	"  sent TEXT,"                                                              \
	"  updated TEXT NOT NULL,"                                                  \
	"  CHECK ((record_kind IS NULL) = (record_id IS NULL)));"                   \
	"CREATE INDEX outbox_due ON outbox(status, next_attempt);"                  \
	"CREATE INDEX outbox_recipient ON outbox(recipient, created);"              \
	"INSERT INTO event_type (name) VALUES ('mail.bounced'), ('mail.held'),"     \
	"  ('mail.failed');"

static const char mr_sql_migrate_v9[] = OUTGOING_V9("id INTEGER PRIMARY KEY,");

/* 9 -> 10 (both engines, @ID: the id column in the engine's words).
 * Business hours: a calendar is working hours (mr-calendar.h's words) in
 * a time zone, and its holidays; a team's records count their time in the
 * team's calendar, others in the calendar "default" (mailroomctl init
 * makes it). */
#define CALENDARS_V10(ID)                                                           \
	"CREATE TABLE calendar (" ID                                                \
	"  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"                           \
	"  zone TEXT NOT NULL CHECK (zone <> ''),"                                  \
	"  hours TEXT NOT NULL CHECK (hours <> ''),"                                \
	"  created TEXT NOT NULL,"                                                  \
	"  updated TEXT NOT NULL);"                                                 \
	"CREATE TABLE calendar_holiday ("                                           \
	"  calendar_id BIGINT NOT NULL REFERENCES calendar(id) ON DELETE CASCADE,"  \
	"  day TEXT NOT NULL CHECK (length(day) = 10),"                             \
	"  PRIMARY KEY (calendar_id, day));"                                        \
	"ALTER TABLE team ADD COLUMN calendar_id BIGINT REFERENCES calendar(id);"

static const char mr_sql_migrate_v10[] = CALENDARS_V10("id INTEGER PRIMARY KEY,");

/* 10 -> 11 (both engines, @ID: the id column in the engine's words).
 * Workflows (issue 24): a workflow is its trigger and conditions and
 * actions in canonical text (mr-workflow.h), with the event it waits for
 * and the events that cancel its timers in columns of their own, for the
 * statements that start and cancel timers.  A timer is a job of kind
 * "workflow": started when its event happened, due when its duration has
 * passed (counted again when it falls due, in the calendar of that
 * moment), round the firings before it (--repeat), depth how many
 * workflows acted before the event that started it.  Deleting a workflow
 * cancels its timers first; the jobs and tasks keep their history.  The
 * built-in workflows come with the tables (BUILTIN_WORKFLOWS). */
#define WORKFLOWS_V11(ID, NOW)                                                      \
	"INSERT INTO event_type (name) VALUES ('response.sent'),"                   \
	"  ('ticket.escalated'), ('task.created'), ('task.done');"                  \
	"CREATE TABLE workflow (" ID                                                \
	"  name TEXT NOT NULL UNIQUE CHECK (name <> ''),"                           \
	"  enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),"          \
	"  trigger_text TEXT NOT NULL CHECK (trigger_text <> ''),"                  \
	"  event TEXT NOT NULL REFERENCES event_type(name),"                        \
	"  timer INTEGER NOT NULL CHECK (timer IN (0, 1)),"                         \
	"  conditions TEXT NOT NULL,"                                               \
	"  actions TEXT NOT NULL CHECK (actions <> ''),"                            \
	"  fired BIGINT NOT NULL DEFAULT 0 CHECK (fired >= 0),"                     \
	"  created TEXT NOT NULL,"                                                  \
	"  updated TEXT NOT NULL);"                                                 \
	"CREATE TABLE workflow_unless ("                                            \
	"  workflow_id BIGINT NOT NULL REFERENCES workflow(id) ON DELETE CASCADE,"  \
	"  event TEXT NOT NULL REFERENCES event_type(name),"                        \
	"  PRIMARY KEY (event, workflow_id));"                                      \
	"ALTER TABLE job ADD COLUMN workflow_id BIGINT"                             \
	"  REFERENCES workflow(id) ON DELETE SET NULL;"                             \
	"ALTER TABLE job ADD COLUMN started TEXT;"                                  \
	"ALTER TABLE job ADD COLUMN round INTEGER NOT NULL DEFAULT 0"               \
	"  CHECK (round >= 0);"                                                     \
	"ALTER TABLE job ADD COLUMN depth INTEGER NOT NULL DEFAULT 0"               \
	"  CHECK (depth >= 0);"                                                     \
	"CREATE INDEX job_record ON job(record_kind, record_id, status);"           \
	"CREATE INDEX job_workflow ON job(workflow_id, status);"                    \
	"CREATE TABLE task (" ID                                                    \
	"  title TEXT NOT NULL CHECK (title <> ''),"                                \
	"  owner_id BIGINT NOT NULL REFERENCES app_user(id),"                       \
	"  record_kind TEXT " RECORD_KIND_CHECK ","                                 \
	"  record_id BIGINT,"                                                       \
	"  due TEXT,"                                                               \
	"  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),"\
	"  workflow_id BIGINT REFERENCES workflow(id) ON DELETE SET NULL,"          \
	"  created TEXT NOT NULL,"                                                  \
	"  done TEXT,"                                                              \
	"  updated TEXT NOT NULL,"                                                  \
	"  CHECK ((record_kind IS NULL) = (record_id IS NULL)),"                    \
	"  CHECK ((status = 'done') = (done IS NOT NULL)));"                        \
	"CREATE INDEX task_owner ON task(owner_id, status, due);"                   \
	"CREATE INDEX task_record ON task(record_kind, record_id);"                 \
	BUILTIN_WORKFLOWS(NOW)

/* The built-in workflows (issue 24), in the canonical texts of
 * mr-workflow.h (test-crm-workflow reads them back): made with the table,
 * so that every database has them, one that is deleted stays deleted.
 * @NOW: the engine's words for the time, as the store writes it. */
#define BUILTIN_WORKFLOWS(NOW)                                                      \
	"INSERT INTO workflow (name, enabled, trigger_text, event, timer, conditions,"\
	"  actions, created, updated) VALUES"                                        \
	" ('ticket-ack', 1, '--on ticket.created', 'ticket.created', 0, '',"         \
	"  'send ticket-ack', " NOW ", " NOW "),"                                     \
	" ('follow-up', 1, '--after 3d --business --since response.sent"             \
	" --unless reply.received --unless mail.bounced --repeat 2', 'response.sent',"\
	"  1, 'record = opportunity\nstatus = open', 'send follow-up', " NOW ", "      \
	NOW "),"                                                                      \
	" ('lead-reminder', 1, '--after 1d --business --since lead.created',"        \
	"  'lead.created', 1, 'status = new', 'remind', " NOW ", " NOW "),"          \
	" ('first-response-sla', 1, '--after 4h --business --since ticket.created"   \
	" --unless response.sent', 'ticket.created', 1, '', 'escalate', " NOW ", "   \
	NOW ");"                                                                      \
	"INSERT INTO workflow_unless (workflow_id, event)"                           \
	" SELECT id, 'reply.received' FROM workflow WHERE name = 'follow-up'"        \
	" UNION ALL SELECT id, 'mail.bounced' FROM workflow WHERE name = 'follow-up'"\
	" UNION ALL SELECT id, 'response.sent' FROM workflow"                        \
	"  WHERE name = 'first-response-sla';"

static const char mr_sql_migrate_v11[] =
	WORKFLOWS_V11("id INTEGER PRIMARY KEY,", "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')");

const MrSqlMigration mr_sql_migrations_sqlite[] = {
	{ 0, 1, mr_sql_schema_v1 },
	{ 1, 2, mr_sql_migrate_v2 },
	{ 2, 3, mr_sql_migrate_v3 },
	{ 3, 4, mr_sql_migrate_v4 },
	{ 4, 5, mr_sql_migrate_v5 },
	{ 5, 6, mr_sql_migrate_v6 },
	{ 6, 7, mr_sql_migrate_v7 },
	{ 7, 8, mr_sql_migrate_v8 },
	{ 8, 9, mr_sql_migrate_v9 },
	{ 9, 10, mr_sql_migrate_v10 },
	{ 10, 11, mr_sql_migrate_v11 },
	{ 0, 0, NULL },
};

/* PostgreSQL starts at version 2: the same tables, in its types (ids are
 * identity columns, bytes are bytea), created in the order their foreign
 * keys need. */
#define PG_ID "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"

static const char mr_sql_pgsql_schema_v2[] =
	"CREATE TABLE app_user (" PG_ID
	"  email TEXT NOT NULL UNIQUE,"
	"  name TEXT,"
	"  created TEXT NOT NULL);"
	"CREATE TABLE user_address ("
	"  address TEXT PRIMARY KEY,"
	"  user_id BIGINT NOT NULL REFERENCES app_user(id));"
	"CREATE TABLE account (" PG_ID
	"  domain TEXT NOT NULL UNIQUE,"
	"  name TEXT NOT NULL,"
	"  created TEXT NOT NULL);"
	"CREATE TABLE contact (" PG_ID
	"  email TEXT NOT NULL UNIQUE,"
	"  name TEXT,"
	"  account_id BIGINT REFERENCES account(id),"
	"  owner_id BIGINT REFERENCES app_user(id),"
	"  created TEXT NOT NULL,"
	"  last_seen TEXT);"
	"CREATE INDEX contact_account ON contact(account_id);"
	"CREATE TABLE opportunity (" PG_ID
	"  title TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'open',"
	"  stage TEXT NOT NULL DEFAULT 'qualification',"
	"  probability INTEGER NOT NULL DEFAULT 10,"
	"  value BIGINT,"
	"  contact_id BIGINT REFERENCES contact(id),"
	"  account_id BIGINT REFERENCES account(id),"
	"  owner_id BIGINT REFERENCES app_user(id),"
	"  lost_reason TEXT,"
	"  created TEXT NOT NULL,"
	"  updated TEXT NOT NULL,"
	"  closed TEXT);"
	"CREATE TABLE lead (" PG_ID
	"  title TEXT NOT NULL,"
	"  source TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'new',"
	"  priority TEXT NOT NULL DEFAULT 'normal',"
	"  contact_id BIGINT REFERENCES contact(id),"
	"  owner_id BIGINT REFERENCES app_user(id),"
	"  opportunity_id BIGINT REFERENCES opportunity(id),"
	"  created TEXT NOT NULL,"
	"  qualified TEXT,"
	"  updated TEXT NOT NULL);"
	"CREATE INDEX lead_contact ON lead(contact_id, status);"
	"CREATE UNIQUE INDEX lead_open_contact ON lead(contact_id)"
	"  WHERE status IN ('new', 'in_progress');"
	"CREATE TABLE ticket (" PG_ID
	"  subject TEXT NOT NULL,"
	"  status TEXT NOT NULL DEFAULT 'new',"
	"  type TEXT NOT NULL DEFAULT 'question',"
	"  priority TEXT NOT NULL DEFAULT 'normal',"
	"  contact_id BIGINT REFERENCES contact(id),"
	"  owner_id BIGINT REFERENCES app_user(id),"
	"  created TEXT NOT NULL,"
	"  updated TEXT NOT NULL);"
	"CREATE INDEX ticket_contact ON ticket(contact_id);"
	"CREATE TABLE message (" PG_ID
	"  content_key TEXT NOT NULL UNIQUE,"
	"  message_id TEXT,"
	"  in_reply_to TEXT,"
	"  subject TEXT NOT NULL,"
	"  subject_norm TEXT NOT NULL,"
	"  from_email TEXT,"
	"  from_name TEXT,"
	"  date TEXT,"
	"  received TEXT NOT NULL,"
	"  size BIGINT NOT NULL,"
	"  parse_status TEXT NOT NULL,"
	"  parse_problem TEXT,"
	"  auto_kind TEXT,"
	"  auto_reason TEXT,"
	"  is_forward INTEGER NOT NULL DEFAULT 0,"
	"  original_from TEXT,"
	"  snippet TEXT NOT NULL);"
	"CREATE INDEX message_mid ON message(message_id);"
	"CREATE TABLE message_raw ("
	"  message_id BIGINT PRIMARY KEY REFERENCES message(id),"
	"  raw BYTEA NOT NULL);"
	"CREATE TABLE message_address (" PG_ID
	"  message_id BIGINT NOT NULL REFERENCES message(id),"
	"  kind TEXT NOT NULL,"
	"  email TEXT NOT NULL,"
	"  name TEXT);"
	"CREATE INDEX message_address_msg ON message_address(message_id);"
	"CREATE TABLE blob ("
	"  sha256 TEXT PRIMARY KEY,"
	"  size BIGINT NOT NULL,"
	"  data BYTEA NOT NULL);"
	"CREATE TABLE attachment (" PG_ID
	"  message_id BIGINT NOT NULL REFERENCES message(id),"
	"  sha256 TEXT NOT NULL REFERENCES blob(sha256),"
	"  filename TEXT,"
	"  content_type TEXT NOT NULL,"
	"  size BIGINT NOT NULL);"
	"CREATE INDEX attachment_msg ON attachment(message_id);"
	"CREATE TABLE delivery ("
	"  message_id BIGINT NOT NULL REFERENCES message(id),"
	"  recipient TEXT NOT NULL,"
	"  role TEXT NOT NULL,"
	"  envelope_from TEXT,"
	"  received TEXT NOT NULL,"
	"  PRIMARY KEY (message_id, recipient));"
	"CREATE TABLE link ("
	"  message_id BIGINT NOT NULL REFERENCES message(id),"
	"  kind TEXT NOT NULL,"
	"  record_id BIGINT NOT NULL,"
	"  PRIMARY KEY (message_id, kind, record_id));"
	"CREATE INDEX link_record ON link(kind, record_id);"
	"CREATE TABLE event (" PG_ID
	"  created TEXT NOT NULL,"
	"  type TEXT NOT NULL,"
	"  record_kind TEXT,"
	"  record_id BIGINT,"
	"  message_id BIGINT REFERENCES message(id),"
	"  summary TEXT);"
	"CREATE INDEX event_record ON event(record_kind, record_id);"
	"CREATE INDEX event_message ON event(message_id);";

/* 2 -> 3 (PostgreSQL). */
static const char mr_sql_pgsql_migrate_v3[] =
	EVENT_TYPES_V3
	"ALTER TABLE event ADD FOREIGN KEY (type) REFERENCES event_type(name),"
	" ADD " EVENT_KIND_CHECK ", ADD " EVENT_RECORD_CHECK ";";

/* 3 -> 4 (PostgreSQL): as mr_sql_migrate_v4, in its types. */
static const char mr_sql_pgsql_migrate_v4[] =
	QUARANTINE_V4(PG_ID, "BYTEA") MAILBOX_STATE_V4;

/* 5 -> 6 (PostgreSQL): as mr_sql_migrate_v6, with strpos. */
static const char mr_sql_pgsql_migrate_v6[] = EVENT_FACTS_V6("strpos");

/* 6 -> 7 (PostgreSQL): as mr_sql_migrate_v7, in its types. */
static const char mr_sql_pgsql_migrate_v7[] = RULES_V7(PG_ID);

/* 7 -> 8 (PostgreSQL): as mr_sql_migrate_v8, in its types. */
static const char mr_sql_pgsql_migrate_v8[] = TEAMS_V8(PG_ID);

/* 8 -> 9 (PostgreSQL): as mr_sql_migrate_v9, in its types. */
static const char mr_sql_pgsql_migrate_v9[] = OUTGOING_V9(PG_ID);

/* 9 -> 10 (PostgreSQL): as mr_sql_migrate_v10, in its types. */
static const char mr_sql_pgsql_migrate_v10[] = CALENDARS_V10(PG_ID);

/* 10 -> 11 (PostgreSQL): as mr_sql_migrate_v11, in its types. */
static const char mr_sql_pgsql_migrate_v11[] =
	WORKFLOWS_V11(PG_ID, "to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");

const MrSqlMigration mr_sql_migrations_pgsql[] = {
	{ 0, 2, mr_sql_pgsql_schema_v2 },
	{ 2, 3, mr_sql_pgsql_migrate_v3 },
	{ 3, 4, mr_sql_pgsql_migrate_v4 },
	{ 4, 5, mr_sql_migrate_v5 },
	{ 5, 6, mr_sql_pgsql_migrate_v6 },
	{ 6, 7, mr_sql_pgsql_migrate_v7 },
	{ 7, 8, mr_sql_pgsql_migrate_v8 },
	{ 8, 9, mr_sql_pgsql_migrate_v9 },
	{ 9, 10, mr_sql_pgsql_migrate_v10 },
	{ 10, 11, mr_sql_pgsql_migrate_v11 },
	{ 0, 0, NULL },
};

const int mr_sql_schema_version = 11;

/* The record's contact, anybody at the domain of its contact's account
 * (?3), or its owner: the parties allowed to attach mail to a record by
 * naming its id. */
#define RELATED(table)                                                              \
	"SELECT 1 FROM " table " r LEFT JOIN contact c ON c.id = r.contact_id"   \
	" WHERE r.id = ?1 AND (EXISTS (SELECT 1 FROM contact x WHERE x.email = ?2" \
	"   AND x.id = r.contact_id)"                                               \
	" OR (c.account_id IS NOT NULL AND c.account_id ="                          \
	"   (SELECT a.id FROM account a WHERE a.domain = ?3))"                      \
	" OR EXISTS (SELECT 1 FROM user_address ua WHERE ua.address = ?2"          \
	"   AND ua.user_id = r.owner_id))"

/* The columns of an event as MrEvent reads them (mr-store-rows.c): the
 * summary is made where the event is shown, not here. */
#define EVENT_COLUMNS                                                               \
	"id, created, type, record_kind, record_id, message_id, NULL, actor_id,"    \
	" old_status, new_status, address, detail"

#define MESSAGE_COUNT(kind) \
	"(SELECT count(*) FROM link l WHERE l.kind = '" kind "' AND l.record_id = r.id)"

/* Column lists of the CLI's rows, in the order of the fields of their
 * declarations (mr-store-rows.c). */
#define LEAD_COLUMNS                                                               \
	"r.id, r.title, r.source, r.status, r.priority, c.email, u.email,"        \
	" r.created, r.qualified, r.updated, r.opportunity_id,"                   \
	" " MESSAGE_COUNT("lead")                                                 \
	" FROM lead r LEFT JOIN contact c ON c.id = r.contact_id"                 \
	" LEFT JOIN app_user u ON u.id = r.owner_id"

#define OPP_COLUMNS                                                                \
	"r.id, r.title, r.status, r.stage, r.probability, r.value, c.email,"      \
	" a.name, u.email, r.lost_reason, r.created, r.updated, r.closed,"        \
	" " MESSAGE_COUNT("opportunity")                                          \
	" FROM opportunity r LEFT JOIN contact c ON c.id = r.contact_id"          \
	" LEFT JOIN account a ON a.id = r.account_id"                             \
	" LEFT JOIN app_user u ON u.id = r.owner_id"

#define TICKET_COLUMNS                                                             \
	"r.id, r.subject, r.status, r.type, r.priority, c.email, u.email,"        \
	" r.created, r.updated, " MESSAGE_COUNT("ticket")                         \
	" FROM ticket r LEFT JOIN contact c ON c.id = r.contact_id"               \
	" LEFT JOIN app_user u ON u.id = r.owner_id"

/* The position of the member of team @team whose turn is next after
 * turn @turn: the first by position after it who is not away, else --
 * wrapping round -- the first from the lowest position; NULL when every
 * member is away.  (Written with WHERE alone: SQLite does not let a
 * subquery's ORDER BY name the outer query's columns.) */
#define TEAM_PRESENT(team)                                                         \
	"SELECT min(x.position) FROM team_member x JOIN app_user y ON y.id = x.user_id"\
	" WHERE x.team_id = " team " AND y.away = 0"
#define TEAM_NEXT_POSITION(team, turn)                                             \
	"coalesce((" TEAM_PRESENT(team) " AND x.position > " turn "),"            \
	" (" TEAM_PRESENT(team) "))"

/* The columns of MrTeamRow, in its order (mr-store-rows.c); its members
 * and those away come from MR_STMT_TEAM_MEMBERS, in position order (the
 * engines concatenate in any order). */
#define TEAM_COLUMNS                                                               \
	"t.id, t.name, NULL, l.email, NULL,"                                      \
	" (SELECT u.email FROM team_member m JOIN app_user u ON u.id = m.user_id"\
	"  WHERE m.team_id = t.id"                                                \
	"  AND m.position = " TEAM_NEXT_POSITION("t.id", "t.turn") "),"           \
	" coalesce((SELECT c.name FROM calendar c WHERE c.id = t.calendar_id),"   \
	"  'default'), t.created"                                                 \
	" FROM team t LEFT JOIN app_user l ON l.id = t.lead_id"

/* The columns of MrCalendarRow, in its order (mr-store-rows.c); its
 * holidays and teams come from MR_STMT_CALENDAR_DAYS and _TEAMS, in
 * order. */
#define CALENDAR_COLUMNS                                                           \
	"c.id, c.name, c.zone, c.hours, NULL, NULL, c.created, c.updated FROM calendar c"

/* The columns of MrJobRow, in its order (mr-store-rows.c). */
#define JOB_COLUMNS                                                                \
	"j.id, j.kind, j.due, j.status, j.attempts, j.record_kind, j.record_id,"    \
	" j.last_error, w.name FROM job j LEFT JOIN workflow w ON w.id = j.workflow_id"

/* The columns of MrWorkflowRow, in its order (mr-store-rows.c): pending
 * counts the timers that wait (the index job_workflow). */
#define WORKFLOW_COLUMNS                                                           \
	"w.id, w.name, w.trigger_text, w.enabled, w.fired,"                        \
	" (SELECT count(*) FROM job j WHERE j.workflow_id = w.id"                  \
	"  AND j.status IN ('due', 'running')),"                                   \
	" w.conditions, w.actions, w.created, w.updated FROM workflow w"

/* The last message a person wrote on record r of @kind: no automatic one. */
#define LAST_PERSON(kind)                                                          \
	"(SELECT max(m.id) FROM link l JOIN message m ON m.id = l.message_id"      \
	" WHERE l.kind = '" kind "' AND l.record_id = r.id AND m.auto_kind IS NULL)"

/* The columns of MrTaskRow, in its order (mr-store-rows.c). */
#define TASK_COLUMNS                                                               \
	"t.id, t.title, u.email, t.record_kind, t.record_id, t.due, t.status,"     \
	" t.created, t.done FROM task t JOIN app_user u ON u.id = t.owner_id"

/* The columns of MrRuleRow, in its order (mr-store-rows.c). */
#define RULE_COLUMNS                                                               \
	"id, name, position, enabled, conditions, actions, match_any, stop, created,"\
	" updated FROM rule"

#define CONTACT_COLUMNS                                                            \
	"r.id, r.email, r.name, a.name, u.email, r.created, r.last_seen,"         \
	" " MESSAGE_COUNT("contact") ", r.undeliverable"                          \
	" FROM contact r LEFT JOIN account a ON a.id = r.account_id"              \
	" LEFT JOIN app_user u ON u.id = r.owner_id"

/* The links come as words "kind:id". */
#define MESSAGE_COLUMNS                                                            \
	"r.id, r.message_id, r.subject, r.from_email, r.received, r.date, r.size,"\
	" r.parse_status, r.parse_problem, r.auto_kind,"                          \
	" (SELECT group_concat(d.recipient, ' ') FROM delivery d"                 \
	"   WHERE d.message_id = r.id),"                                          \
	" (SELECT group_concat(l.kind || ':' || l.record_id, ' ') FROM link l"    \
	"   WHERE l.message_id = r.id AND l.kind IN ('ticket', 'opportunity', 'lead')),"\
	" r.direction"

/* The columns of MrOutboxRow, in its order (mr-store-rows.c). */
#define OUTBOX_COLUMNS                                                             \
	"o.id, o.recipient, m.subject, o.status, o.attempts,"                     \
	" CASE WHEN o.status = 'queued' THEN o.next_attempt END, o.last_error,"   \
	" o.record_kind, o.record_id, m.message_id, o.created, o.sent, o.auto,"   \
	" o.bounce_status FROM outbox o JOIN message m ON m.id = o.message_id"

/* A record of @table (whose title is @title) with its contact and owner:
 * MrRecordMail. */
#define RECORD_MAIL(table, title)                                                  \
	"SELECT r." title ", r.status, c.id, c.email, c.name, c.undeliverable,"   \
	" u.email, u.name FROM " table " r LEFT JOIN contact c ON c.id = r.contact_id"\
	" LEFT JOIN app_user u ON u.id = r.owner_id WHERE r.id = ?1"

/* The message of a row: by its id (?ID), or by its content key (?KEY)
 * when the insert of the message was not waited for (an outgoing mail). */
#define MESSAGE_BY_KEY(key) "(SELECT id FROM message WHERE content_key = ?" #key ")"
#define MESSAGE_OF(id, key) "coalesce(?" #id ", " MESSAGE_BY_KEY(key) ")"
#define MESSAGE_INSERT                                                           \
	"INSERT INTO message (content_key, message_id, in_reply_to, subject,"    \
	" subject_norm, from_email, from_name, date, received, size,"            \
	" parse_status, parse_problem, auto_kind, auto_reason, is_forward,"      \
	" original_from, snippet, direction) VALUES (?1, ?2, ?3, ?4, ?5, ?6,"    \
	" ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
#define OUTBOX_INSERT                                                            \
	"INSERT INTO outbox (message_id, token, recipient, contact_id,"          \
	" record_kind, record_id, auto, next_attempt, created, updated)"         \
	" VALUES (" MESSAGE_BY_KEY(1) ", ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?8)"
/* MR_STORE_SLOTS rows (slot, recipient, contact) of parameters ?2..?101:
 * the mails of a batch, each looked up on its own through an index. */
#define SLOTS_RECIPIENT_CONTACT \
	"(0, ?2, ?3), (1, ?4, ?5), (2, ?6, ?7), (3, ?8, ?9), (4, ?10, ?11), " \
	"(5, ?12, ?13), (6, ?14, ?15), (7, ?16, ?17), (8, ?18, ?19), (9, ?20, ?21), " \
	"(10, ?22, ?23), (11, ?24, ?25), (12, ?26, ?27), (13, ?28, ?29), (14, ?30, ?31), " \
	"(15, ?32, ?33), (16, ?34, ?35), (17, ?36, ?37), (18, ?38, ?39), (19, ?40, ?41), " \
	"(20, ?42, ?43), (21, ?44, ?45), (22, ?46, ?47), (23, ?48, ?49), (24, ?50, ?51), " \
	"(25, ?52, ?53), (26, ?54, ?55), (27, ?56, ?57), (28, ?58, ?59), (29, ?60, ?61), " \
	"(30, ?62, ?63), (31, ?64, ?65), (32, ?66, ?67), (33, ?68, ?69), (34, ?70, ?71), " \
	"(35, ?72, ?73), (36, ?74, ?75), (37, ?76, ?77), (38, ?78, ?79), (39, ?80, ?81), " \
	"(40, ?82, ?83), (41, ?84, ?85), (42, ?86, ?87), (43, ?88, ?89), (44, ?90, ?91), " \
	"(45, ?92, ?93), (46, ?94, ?95), (47, ?96, ?97), (48, ?98, ?99), (49, ?100, ?101)"

const char *const mr_sql_text[MR_STMT_N_STATEMENTS] = {
	[MR_STMT_USER_BY_ADDRESS] = "SELECT user_id FROM user_address WHERE address = ?1",
	[MR_STMT_USER_INSERT] = "INSERT INTO app_user (email, name, created) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (email) DO NOTHING RETURNING id",
	[MR_STMT_USER_ADDRESS_INSERT] =
		"INSERT INTO user_address (address, user_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
	[MR_STMT_USER_SET_NAME] = "UPDATE app_user SET name = ?2 WHERE id = ?1",
	[MR_STMT_CONTACT_BY_EMAIL] = "SELECT id FROM contact WHERE email = ?1",
	/* Both look-ups of a party in one statement: one round trip. */
	[MR_STMT_PARTY_BY_EMAIL] =
		"SELECT u.user_id, c.id, c.account_id FROM (SELECT CAST(?1 AS TEXT) AS email) k"
		" LEFT JOIN user_address u ON u.address = k.email"
		" LEFT JOIN contact c ON c.email = k.email",
	[MR_STMT_CONTACT_INSERT] =
		"INSERT INTO contact (email, name, account_id, owner_id, created, last_seen)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (email) DO NOTHING RETURNING id",
	/* Only when it changes something: a burst of mail from one sender
	 * touches its contact once a second, not once a message (on
	 * PostgreSQL each update writes a row version, its WAL and a check
	 * of the account's foreign key).  (coalesce() types ?2 and ?3 for
	 * PostgreSQL, which reads WHERE before SET.) */
	[MR_STMT_CONTACT_TOUCH] =
		"UPDATE contact SET name = coalesce(name, ?2), owner_id = coalesce(owner_id, ?3),"
		" last_seen = ?4 WHERE id = ?1 AND (coalesce(last_seen, '') <> ?4"
		" OR (name IS NULL AND coalesce(name, ?2) IS NOT NULL)"
		" OR (owner_id IS NULL AND coalesce(owner_id, ?3) IS NOT NULL))",
	[MR_STMT_CONTACT_GET] = "SELECT account_id, owner_id FROM contact WHERE id = ?1",
	[MR_STMT_ACCOUNT_BY_DOMAIN] = "SELECT id FROM account WHERE domain = ?1",
	[MR_STMT_ACCOUNT_INSERT] = "INSERT INTO account (domain, name, created) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (domain) DO NOTHING RETURNING id",
	[MR_STMT_LEAD_STATUS] = "SELECT status, owner_id FROM lead WHERE id = ?1",
	[MR_STMT_OPP_STATUS] = "SELECT status, owner_id FROM opportunity WHERE id = ?1",
	[MR_STMT_TICKET_STATUS] = "SELECT status, owner_id FROM ticket WHERE id = ?1",
	[MR_STMT_LEAD_RELATED] = RELATED("lead"),
	[MR_STMT_OPP_RELATED] = RELATED("opportunity"),
	[MR_STMT_TICKET_RELATED] = RELATED("ticket"),
	[MR_STMT_THREAD_RECORD] =
		"SELECT l.record_id FROM message m JOIN link l ON l.message_id = m.id"
		" WHERE m.message_id = ?1 AND l.kind = ?2 ORDER BY l.record_id DESC LIMIT 1",
	[MR_STMT_THREAD_ADDRESS] =
		"SELECT 1 FROM message m JOIN message_address a ON a.message_id = m.id"
		" WHERE m.message_id = ?1 AND a.email = ?2 LIMIT 1",
	[MR_STMT_OPEN_LEAD] =
		"SELECT l.id FROM lead l JOIN contact c ON c.id = l.contact_id"
		" WHERE c.email = ?1 AND l.status IN (?2, ?3)"
		" ORDER BY l.id DESC LIMIT 1",
	[MR_STMT_MESSAGE_BY_KEY] = "SELECT id FROM message WHERE content_key = ?1",
	[MR_STMT_DELIVERY_EXISTS] =
		"SELECT 1 FROM delivery WHERE message_id = ?1 AND recipient = ?2",
	[MR_STMT_MESSAGE_INSERT] = MESSAGE_INSERT " ON CONFLICT (content_key) DO NOTHING RETURNING id",
	/* An outgoing mail: new bytes, nothing to wait for (a conflict is
	 * an error) */
	[MR_STMT_MESSAGE_INSERT_OUT] = MESSAGE_INSERT,
	/* The rows of a message name it by its id, or (an insert that was
	 * not waited for: an outgoing mail) by its content key. */
	[MR_STMT_MESSAGE_RAW_INSERT] =
		"INSERT INTO message_raw (message_id, raw) VALUES (" MESSAGE_OF(1, 3) ", ?2)",
	[MR_STMT_ADDRESS_INSERT] =
		"INSERT INTO message_address (message_id, kind, email, name)"
		" VALUES (" MESSAGE_OF(1, 5) ", ?2, ?3, ?4)",
	/* Two rows in one statement: a statement less per message */
	[MR_STMT_ADDRESS_INSERT2] =
		"INSERT INTO message_address (message_id, kind, email, name)"
		" VALUES (" MESSAGE_OF(1, 8) ", ?2, ?3, ?4), (" MESSAGE_OF(1, 8) ", ?5, ?6, ?7)",
	[MR_STMT_BLOB_INSERT] =
		"INSERT INTO blob (sha256, size, data) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
	[MR_STMT_ATTACHMENT_INSERT] =
		"INSERT INTO attachment (message_id, sha256, filename, content_type, size)"
		" VALUES (" MESSAGE_OF(1, 6) ", ?2, ?3, ?4, ?5)",
	[MR_STMT_DELIVERY_INSERT] =
		"INSERT INTO delivery (message_id, recipient, role, envelope_from, received, rules)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[MR_STMT_LINK_INSERT] =
		"INSERT INTO link (message_id, kind, record_id) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
	/* A new outgoing mail's record and contact */
	[MR_STMT_LINK_INSERT2] =
		"INSERT INTO link (message_id, kind, record_id)"
		" VALUES (" MESSAGE_BY_KEY(1) ", ?2, ?3), (" MESSAGE_BY_KEY(1) ", ?4, ?5)",
	[MR_STMT_EVENT_INSERT] =
		"INSERT INTO event (created, type, record_kind, record_id, message_id, actor_id,"
		" old_status, new_status, address, detail)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[MR_STMT_TICKET_INSERT] =
		"INSERT INTO ticket (subject, contact_id, owner_id, created, updated)"
		" VALUES (?1, ?2, ?3, ?4, ?4) RETURNING id",
	[MR_STMT_TICKET_TOUCH] =
		"UPDATE ticket SET updated = ?2, status = coalesce(?3, status),"
		" owner_id = coalesce(owner_id, ?4) WHERE id = ?1",
	[MR_STMT_LEAD_INSERT] =
		"INSERT INTO lead (title, source, contact_id, owner_id, created, updated)"
		" VALUES (?1, 'email', ?2, ?3, ?4, ?4) RETURNING id",
	[MR_STMT_LEAD_TOUCH] = "UPDATE lead SET updated = ?2 WHERE id = ?1",
	[MR_STMT_OPP_TOUCH] = "UPDATE opportunity SET updated = ?2 WHERE id = ?1",
	[MR_STMT_OPP_INSERT] =
		"INSERT INTO opportunity (title, value, contact_id, account_id, owner_id,"
		" created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) RETURNING id",
	[MR_STMT_OPP_CLOSE] =
		"UPDATE opportunity SET status = ?2, stage = ?3, probability = ?4,"
		" lost_reason = ?5, closed = ?6, updated = ?6 WHERE id = ?1 AND status = ?7",
	[MR_STMT_TICKET_SET_STATUS] = "UPDATE ticket SET status = ?2, updated = ?3 WHERE id = ?1",
	[MR_STMT_LEAD_SET_STATUS] =
		"UPDATE lead SET status = ?2, updated = ?3, opportunity_id = coalesce(?4, opportunity_id),"
		" qualified = coalesce(qualified, ?5)"
		" WHERE id = ?1",
	[MR_STMT_LEAD_OPPORTUNITY] = "SELECT opportunity_id FROM lead WHERE id = ?1",
	[MR_STMT_LINKS_COPY] =
		"INSERT INTO link (message_id, kind, record_id)"
		" SELECT message_id, ?3, ?4 FROM link WHERE kind = ?1 AND record_id = ?2"
		" ON CONFLICT DO NOTHING",
	[MR_STMT_LIST_USERS] =
		"SELECT u.id, u.email, u.name,"
		" (SELECT group_concat(address, ' ') FROM user_address a WHERE a.user_id = u.id),"
		" u.created,"
		" (SELECT count(*) FROM link l WHERE l.kind = 'user' AND l.record_id = u.id),"
		" u.away FROM app_user u ORDER BY u.id LIMIT ?1",
	[MR_STMT_LIST_CONTACTS] = "SELECT " CONTACT_COLUMNS " ORDER BY r.id LIMIT ?1",
	[MR_STMT_LIST_ACCOUNTS] =
		"SELECT r.id, r.name, r.domain, r.created,"
		" (SELECT count(*) FROM contact c WHERE c.account_id = r.id),"
		" " MESSAGE_COUNT("account")
		" FROM account r ORDER BY r.id LIMIT ?1",
	[MR_STMT_LIST_LEADS] = "SELECT " LEAD_COLUMNS " ORDER BY r.id LIMIT ?1",
	[MR_STMT_LIST_OPPS] = "SELECT " OPP_COLUMNS " ORDER BY r.id LIMIT ?1",
	[MR_STMT_LIST_TICKETS] = "SELECT " TICKET_COLUMNS " ORDER BY r.id LIMIT ?1",
	[MR_STMT_LIST_MESSAGES] = "SELECT " MESSAGE_COLUMNS " FROM message r ORDER BY r.id LIMIT ?1",
	[MR_STMT_SHOW_CONTACT] = "SELECT " CONTACT_COLUMNS " WHERE r.email = ?1",
	[MR_STMT_SHOW_LEAD] = "SELECT " LEAD_COLUMNS " WHERE r.id = ?1",
	[MR_STMT_SHOW_OPP] = "SELECT " OPP_COLUMNS " WHERE r.id = ?1",
	[MR_STMT_SHOW_TICKET] = "SELECT " TICKET_COLUMNS " WHERE r.id = ?1",
	[MR_STMT_SHOW_MESSAGE] =
		"SELECT " MESSAGE_COLUMNS ", r.in_reply_to, r.auto_reason, r.is_forward,"
		" r.original_from, r.from_name, r.content_key, r.snippet"
		" FROM message r WHERE r.id = ?1",
	[MR_STMT_RECORD_MESSAGES] =
		"SELECT m.id, m.message_id, m.subject, m.from_email, m.received, m.date"
		" FROM link l JOIN message m ON m.id = l.message_id"
		" WHERE l.kind = ?1 AND l.record_id = ?2"
		" ORDER BY m.received, m.id",
	[MR_STMT_MESSAGE_LINKS] =
		"SELECT l.kind,"
		" CASE l.kind WHEN 'contact' THEN (SELECT email FROM contact WHERE id = l.record_id)"
		"  WHEN 'account' THEN (SELECT domain FROM account WHERE id = l.record_id)"
		"  WHEN 'user' THEN (SELECT email FROM app_user WHERE id = l.record_id) END"
		" FROM link l WHERE l.message_id = ?1 AND l.kind IN ('contact', 'account', 'user')"
		" ORDER BY l.kind, l.record_id",
	[MR_STMT_MESSAGE_ADDRESSES] =
		"SELECT kind, email, name FROM message_address WHERE message_id = ?1 ORDER BY id",
	[MR_STMT_MESSAGE_ATTACHMENTS] =
		"SELECT filename, content_type, size, sha256 FROM attachment"
		" WHERE message_id = ?1 ORDER BY id",
	[MR_STMT_MESSAGE_DELIVERIES] =
		"SELECT recipient, role, envelope_from, received, rules FROM delivery"
		" WHERE message_id = ?1 ORDER BY received, recipient",
	[MR_STMT_MESSAGE_REFUSED] =
		"SELECT " EVENT_COLUMNS " FROM event WHERE message_id = ?1"
		" AND type IN (?2, ?3) ORDER BY id",
	[MR_STMT_MESSAGE_RAW] = "SELECT raw FROM message_raw WHERE message_id = ?1",
	[MR_STMT_ACCOUNT_ID] = "SELECT id FROM account WHERE domain = ?1",
	[MR_STMT_ACCOUNT_NAME] = "SELECT name FROM account WHERE id = ?1",
	[MR_STMT_TICKET_SET_FIELDS] =
		"UPDATE ticket SET priority = coalesce(?2, priority), type = coalesce(?3, type)"
		" WHERE id = ?1",
	[MR_STMT_LEAD_SET_SOURCE] = "UPDATE lead SET source = ?2 WHERE id = ?1",
	[MR_STMT_LEAD_SET_OWNER] = "UPDATE lead SET owner_id = ?2 WHERE id = ?1",
	[MR_STMT_OPP_SET_OWNER] = "UPDATE opportunity SET owner_id = ?2 WHERE id = ?1",
	[MR_STMT_TICKET_SET_OWNER] = "UPDATE ticket SET owner_id = ?2 WHERE id = ?1",
	[MR_STMT_TAG_INSERT] =
		"INSERT INTO record_tag (record_kind, record_id, tag) VALUES (?1, ?2, ?3)"
		" ON CONFLICT DO NOTHING",
	[MR_STMT_RECORD_TAGS] =
		"SELECT tag FROM record_tag WHERE record_kind = ?1 AND record_id = ?2 ORDER BY tag",
	[MR_STMT_TIMELINE] =
		"SELECT m.received, NULL,"
		" CASE WHEN m.direction = 'out' THEN 'message.out' ELSE 'message' END,"
		" m.subject, m.message_id, m.date,"
		" m.received, NULL, NULL, NULL, NULL, NULL, NULL, NULL, m.id"
		" FROM link l JOIN message m ON m.id = l.message_id"
		" WHERE l.kind = ?1 AND l.record_id = ?2"
		" UNION ALL"
		" SELECT NULL, e.created, e.type, NULL, m.message_id, NULL, e.created,"
		" e.record_kind, e.record_id, e.actor_id, e.old_status, e.new_status, e.address,"
		" e.detail, 1000000000000 + e.id"
		" FROM event e LEFT JOIN message m ON m.id = e.message_id"
		" WHERE e.record_kind = ?1 AND e.record_id = ?2"
		" ORDER BY 7, 15",
	[MR_STMT_COUNT_MESSAGES] = "SELECT count(*) FROM message",
	[MR_STMT_EVENTS_AFTER] =
		"SELECT " EVENT_COLUMNS " FROM event WHERE id > ?1 AND id <= ?3 ORDER BY id LIMIT ?2",
	[MR_STMT_MAILBOX_GET] =
		"SELECT name, state, uidvalidity, last_uid, backlog, last_error, updated,"
		" inflight_to, inflight_tries FROM mailbox_state WHERE name = ?1",
	[MR_STMT_MAILBOX_SAVE] =
		"INSERT INTO mailbox_state (name, uidvalidity, last_uid, state, backlog,"
		" last_error, updated, inflight_to, inflight_tries)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
		" ON CONFLICT (name) DO UPDATE SET uidvalidity = excluded.uidvalidity,"
		" last_uid = excluded.last_uid, state = excluded.state,"
		" backlog = excluded.backlog, last_error = excluded.last_error,"
		" updated = excluded.updated, inflight_to = excluded.inflight_to,"
		" inflight_tries = excluded.inflight_tries",
	[MR_STMT_MAILBOX_LIST] =
		"SELECT name, state, uidvalidity, last_uid, backlog, last_error, updated,"
		" inflight_to, inflight_tries FROM mailbox_state ORDER BY name",
	[MR_STMT_QUARANTINE_INSERT] =
		"INSERT INTO quarantine (mailbox, uidvalidity, uid, reason, size, raw, created)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
		" ON CONFLICT (mailbox, uidvalidity, uid) DO NOTHING",
	[MR_STMT_QUARANTINE_LIST] =
		"SELECT id, mailbox, uid, uidvalidity, reason, size, created FROM quarantine"
		" ORDER BY id LIMIT ?1",
	[MR_STMT_QUARANTINE_GET] =
		"SELECT id, mailbox, uid, uidvalidity, reason, size, created, raw FROM quarantine"
		" WHERE id = ?1",
	[MR_STMT_QUARANTINE_DELETE] = "DELETE FROM quarantine WHERE id = ?1",
	[MR_STMT_TEAM_ID] = "SELECT id FROM team WHERE name = ?1",
	[MR_STMT_TEAM_MEMBER_POSITION] =
		"SELECT position FROM team_member WHERE team_id = ?1 AND user_id = ?2",
	[MR_STMT_TEAM_MEMBER_COUNT] = "SELECT count(*) FROM team_member WHERE team_id = ?1",
	[MR_STMT_TEAM_INSERT] =
		"INSERT INTO team (name, lead_id, created) VALUES (?1, ?2, ?3)"
		" ON CONFLICT (name) DO NOTHING RETURNING id",
	[MR_STMT_TEAM_MEMBERS_DELETE] = "DELETE FROM team_member WHERE team_id = ?1",
	[MR_STMT_TEAM_DELETE] = "DELETE FROM team WHERE id = ?1",
	/* After the last; two of these for one team do not interleave, as
	 * every change of a team bumps the rules' counter first. */
	[MR_STMT_TEAM_MEMBER_INSERT] =
		"INSERT INTO team_member (team_id, user_id, position) VALUES (?1, ?2,"
		" (SELECT coalesce(max(position), 0) + 1 FROM team_member WHERE team_id = ?1))"
		" ON CONFLICT (team_id, user_id) DO NOTHING RETURNING position",
	[MR_STMT_TEAM_MEMBER_DELETE] =
		"DELETE FROM team_member WHERE team_id = ?1 AND user_id = ?2",
	[MR_STMT_USER_SET_AWAY] = "UPDATE app_user SET away = ?2 WHERE id = ?1",
	/* Changes nothing but takes the row's lock (PostgreSQL), and reads
	 * the turn as the last one to hold it left it. */
	[MR_STMT_TEAM_LOCK] = "UPDATE team SET turn = turn WHERE name = ?1 RETURNING id, turn",
	[MR_STMT_TEAM_NEXT] =
		"SELECT user_id, position FROM team_member WHERE team_id = ?1"
		" AND position = " TEAM_NEXT_POSITION("?1", "?2"),
	[MR_STMT_TEAM_SET_TURN] = "UPDATE team SET turn = ?2 WHERE id = ?1",
	[MR_STMT_LIST_TEAMS] = "SELECT " TEAM_COLUMNS " ORDER BY t.name",
	[MR_STMT_SHOW_TEAM] = "SELECT " TEAM_COLUMNS " WHERE t.name = ?1",
	/* Every team's members (?1 NULL) or team ?1's. */
	[MR_STMT_TEAM_MEMBERS] =
		"SELECT m.team_id, u.email, u.away FROM team_member m"
		" JOIN team t ON t.id = m.team_id JOIN app_user u ON u.id = m.user_id"
		" WHERE CAST(?1 AS TEXT) IS NULL OR t.name = ?1 ORDER BY m.team_id, m.position",
	[MR_STMT_CALENDAR_ID] = "SELECT id FROM calendar WHERE name = ?1",
	[MR_STMT_CALENDAR_INSERT] =
		"INSERT INTO calendar (name, zone, hours, created, updated)"
		" VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (name) DO NOTHING RETURNING id",
	[MR_STMT_CALENDAR_UPDATE] =
		"UPDATE calendar SET zone = ?2, hours = ?3, updated = ?4 WHERE name = ?1 RETURNING id",
	[MR_STMT_CALENDAR_HOLIDAYS_CLEAR] = "DELETE FROM calendar_holiday WHERE calendar_id = ?1",
	[MR_STMT_CALENDAR_HOLIDAY_INSERT] =
		"INSERT INTO calendar_holiday (calendar_id, day) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
	[MR_STMT_CALENDAR_DELETE] = "DELETE FROM calendar WHERE id = ?1",
	[MR_STMT_TEAM_SET_CALENDAR] = "UPDATE team SET calendar_id = ?2 WHERE id = ?1 RETURNING id",
	/* Every calendar's holidays (?1 NULL) or calendar ?1's, in order */
	[MR_STMT_CALENDAR_DAYS] =
		"SELECT h.calendar_id, h.day FROM calendar_holiday h JOIN calendar c"
		" ON c.id = h.calendar_id WHERE CAST(?1 AS TEXT) IS NULL OR c.name = ?1"
		" ORDER BY h.calendar_id, h.day",
	/* The teams and the calendar each counts in ("default" when none) */
	[MR_STMT_CALENDAR_TEAMS] =
		"SELECT c.id, t.name FROM team t JOIN calendar c ON c.id = t.calendar_id"
		" OR (t.calendar_id IS NULL AND c.name = 'default') ORDER BY c.id, t.name",
	[MR_STMT_LIST_CALENDARS] = "SELECT " CALENDAR_COLUMNS " ORDER BY c.name",
	[MR_STMT_SHOW_CALENDAR] = "SELECT " CALENDAR_COLUMNS " WHERE c.name = ?1",
	[MR_STMT_RULES_BUMP] =
		"UPDATE rule_version SET version = version + 1 WHERE id = 1 RETURNING version",
	[MR_STMT_RULES_VERSION] = "SELECT version FROM rule_version WHERE id = 1",
	[MR_STMT_RULES_COUNT] = "SELECT count(*) FROM rule",
	[MR_STMT_RULE_POSITION] = "SELECT position FROM rule WHERE name = ?1",
	[MR_STMT_RULE_INSERT] =
		"INSERT INTO rule (name, position, enabled, match_any, stop, conditions, actions,"
		" created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING id",
	/* The rule at ?1 goes to ?2, those from ?4 to ?5 (the others between
	 * them) move by ?3, parked past MR_SQL_RULE_PARK (see RULES_V7); the
	 * next statement brings them back. */
	[MR_STMT_RULES_ROTATE] =
		"UPDATE rule SET position = " MR_SQL_RULE_PARK " + CASE WHEN position = ?1"
		" THEN ?2 ELSE position + ?3 END WHERE position BETWEEN ?4 AND ?5",
	[MR_STMT_RULES_UNPARK] =
		"UPDATE rule SET position = position - " MR_SQL_RULE_PARK
		" WHERE position > " MR_SQL_RULE_PARK,
	[MR_STMT_RULE_SET_ENABLED] =
		"UPDATE rule SET enabled = ?2, updated = ?3 WHERE name = ?1",
	[MR_STMT_RULE_DELETE] = "DELETE FROM rule WHERE name = ?1",
	[MR_STMT_RULES_DELETE_ALL] = "DELETE FROM rule",
	[MR_STMT_LIST_RULES] = "SELECT " RULE_COLUMNS " ORDER BY position",
	[MR_STMT_SHOW_RULE] = "SELECT " RULE_COLUMNS " WHERE name = ?1",
	/* Outgoing mail (mr-store-outgoing.h).  pg_notify is a no-op function
	 * on SQLite (mr-sql-sqlite.c); SKIP LOCKED is written as a comment
	 * that the PostgreSQL driver turns into FOR UPDATE SKIP LOCKED.
	 * Every look-up of the queues starts with the status, so that the
	 * indexes job_due and outbox_due find the few rows that wait among
	 * all those ever done (no scan of the table, no sort of what waits):
	 * a claim is two such look-ups, what is due and what a dead claim
	 * left, at most @limit rows each. */
	[MR_STMT_NOTIFY_WORK] = "SELECT pg_notify('mailroom_work', '')",
	[MR_STMT_JOB_INSERT] =
		"INSERT INTO job (kind, due, payload, record_kind, record_id, message_id, created,"
		" updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
	[MR_STMT_JOBS_CLAIM] =
		"UPDATE job SET status = 'running', claimed_until = ?2, claim = ?3,"
		" attempts = attempts + 1, updated = ?1"
		" WHERE id IN (SELECT id FROM (SELECT id FROM job WHERE status = 'due'"
		"  AND due <= ?1 ORDER BY due LIMIT ?4 /*SKIP LOCKED*/) d"
		"  UNION ALL SELECT id FROM (SELECT id FROM job WHERE status = 'running'"
		"  AND claimed_until < ?1 LIMIT ?4 /*SKIP LOCKED*/) r)"
		" RETURNING id, kind, payload, record_kind, record_id, message_id, attempts,"
		" workflow_id, started, round, depth",
	[MR_STMT_JOB_FINISH] =
		"UPDATE job SET status = ?3, last_error = ?4, due = coalesce(?5, due),"
		" claimed_until = NULL, claim = NULL, updated = ?6"
		" WHERE id = ?1 AND claim = ?2 RETURNING id",
	/* status = 'running' first: the index job_due finds the claim's rows */
	[MR_STMT_JOBS_FINISH_CLAIM] =
		"UPDATE job SET status = ?3, last_error = NULL, claimed_until = NULL, claim = NULL,"
		" updated = ?2 WHERE status = 'running' AND claim = ?1 RETURNING id",
	/* two look-ups in the index job_due, not a scan of what waits (a
	 * hundred thousand timers) */
	[MR_STMT_JOBS_NEXT_DUE] =
		"SELECT min(t) FROM (SELECT min(due) AS t FROM job WHERE status = 'due'"
		" UNION ALL SELECT min(claimed_until) FROM job WHERE status = 'running') n",
	[MR_STMT_LIST_JOBS] =
		"SELECT " JOB_COLUMNS " WHERE ?1 = 0 OR j.status IN ('due', 'running')"
		" ORDER BY j.due, j.id"
		" LIMIT ?2",
	[MR_STMT_SHOW_JOB] = "SELECT " JOB_COLUMNS " WHERE j.id = ?1",
	/* Not a running one: its daemon ends it (a claim that no longer
	 * held would undo its batch) */
	[MR_STMT_JOB_CANCEL] =
		"UPDATE job SET status = 'cancelled', updated = ?2"
		" WHERE id = ?1 AND status IN ('due', 'failed') RETURNING id",
	[MR_STMT_WORKFLOW_ID] = "SELECT id FROM workflow WHERE name = ?1",
	[MR_STMT_WORKFLOW_INSERT] =
		"INSERT INTO workflow (name, enabled, trigger_text, event, timer, conditions,"
		" actions, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)"
		" ON CONFLICT (name) DO NOTHING RETURNING id",
	/* enabled stays as it is (?2 only as the insert binds it) */
	[MR_STMT_WORKFLOW_UPDATE] =
		"UPDATE workflow SET trigger_text = ?3, event = ?4, timer = ?5,"
		" conditions = ?6, actions = ?7, updated = ?8 WHERE name = ?1"
		" AND CAST(?2 AS INTEGER) IN (0, 1) RETURNING id",
	[MR_STMT_WORKFLOW_UNLESS_CLEAR] = "DELETE FROM workflow_unless WHERE workflow_id = ?1",
	[MR_STMT_WORKFLOW_UNLESS_INSERT] =
		"INSERT INTO workflow_unless (workflow_id, event) VALUES (?1, ?2)",
	[MR_STMT_WORKFLOW_SET_ENABLED] =
		"UPDATE workflow SET enabled = ?2, updated = ?3 WHERE id = ?1",
	[MR_STMT_WORKFLOW_CANCEL_TIMERS] =
		"UPDATE job SET status = 'cancelled', updated = ?2"
		" WHERE workflow_id = ?1 AND status = 'due' RETURNING id",
	[MR_STMT_WORKFLOW_DELETE] = "DELETE FROM workflow WHERE id = ?1",
	[MR_STMT_WORKFLOW_FIRED] = "UPDATE workflow SET fired = fired + ?2 WHERE id = ?1",
	[MR_STMT_LIST_WORKFLOWS] = "SELECT " WORKFLOW_COLUMNS " ORDER BY w.name",
	[MR_STMT_SHOW_WORKFLOW] = "SELECT " WORKFLOW_COLUMNS " WHERE w.name = ?1",
	[MR_STMT_WORKFLOW_DEFS] =
		"SELECT id, name, enabled, trigger_text, conditions, actions FROM workflow"
		" ORDER BY id",
	/* a timer starts again: the one of that workflow on that record ends */
	[MR_STMT_TIMERS_RESTART] =
		"UPDATE job SET status = 'cancelled', updated = ?4"
		" WHERE record_kind = ?2 AND record_id = ?3 AND status = 'due' AND workflow_id = ?1",
	[MR_STMT_TIMER_INSERT] =
		"INSERT INTO job (kind, due, record_kind, record_id, message_id, workflow_id,"
		" started, round, depth, created, updated)"
		" VALUES ('workflow', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
	/* the timers on record (?2, ?3) of the workflows that --unless ?1 */
	[MR_STMT_TIMERS_CANCEL] =
		"UPDATE job SET status = 'cancelled', updated = ?4"
		" WHERE record_kind = ?2 AND record_id = ?3 AND status = 'due'"
		" AND workflow_id IN (SELECT workflow_id FROM workflow_unless WHERE event = ?1)",
	[MR_STMT_JOB_POSTPONE] =
		"UPDATE job SET status = 'due', due = ?3, attempts = attempts - 1,"
		" claimed_until = NULL, claim = NULL, updated = ?4"
		" WHERE id = ?1 AND claim = ?2 RETURNING id",
	[MR_STMT_RECORD_TIMER] =
		"SELECT started, status FROM job WHERE record_kind = ?2 AND record_id = ?3"
		" AND workflow_id = ?1 ORDER BY id DESC LIMIT 1",
	[MR_STMT_LEAD_SET_PRIORITY] = "UPDATE lead SET priority = ?2 WHERE id = ?1",
	[MR_STMT_OPP_SET_STAGE] = "UPDATE opportunity SET stage = ?2 WHERE id = ?1",
	[MR_STMT_OPP_SET_VALUE] = "UPDATE opportunity SET value = ?2 WHERE id = ?1",
	[MR_STMT_USER_MAILBOX_BY_ID] = "SELECT email, name FROM app_user WHERE id = ?1",
	[MR_STMT_TEAM_LEAD] = "SELECT lead_id FROM team WHERE name = ?1",
	[MR_STMT_USER_TEAM_LEAD] =
		"SELECT t.lead_id FROM team_member m JOIN team t ON t.id = m.team_id"
		" WHERE m.user_id = ?1 AND t.lead_id IS NOT NULL AND t.lead_id <> ?1"
		" ORDER BY t.id LIMIT 1",
	[MR_STMT_USER_CALENDAR] =
		"SELECT t.calendar_id FROM team_member m JOIN team t ON t.id = m.team_id"
		" WHERE m.user_id = ?1 AND t.calendar_id IS NOT NULL ORDER BY t.id LIMIT 1",
	/* with the last mail a person wrote on it (no Auto-Submitted kind) */
	[MR_STMT_TICKET_FIELDS] =
		"SELECT r.status, r.priority, r.type, NULL, NULL, r.owner_id, u.email, r.subject,"
		" " LAST_PERSON("ticket") " FROM ticket r"
		" LEFT JOIN app_user u ON u.id = r.owner_id WHERE r.id = ?1",
	[MR_STMT_LEAD_FIELDS] =
		"SELECT r.status, r.priority, NULL, NULL, NULL, r.owner_id, u.email, r.title,"
		" " LAST_PERSON("lead") " FROM lead r"
		" LEFT JOIN app_user u ON u.id = r.owner_id WHERE r.id = ?1",
	[MR_STMT_OPP_FIELDS] =
		"SELECT r.status, NULL, NULL, r.stage, r.value, r.owner_id, u.email, r.title,"
		" " LAST_PERSON("opportunity") " FROM opportunity r"
		" LEFT JOIN app_user u ON u.id = r.owner_id WHERE r.id = ?1",
	/* Up to MR_STORE_SLOTS records at once (slot, kind, id; NULL in the
	 * slots not used): what mr_store_record_fields() reads of one, the
	 * last mail a person wrote before ?1 (now) with it */
	[MR_STMT_RECORDS_FIELDS] =
		"SELECT v.column1, coalesce(t.status, l.status, o.status),"
		" coalesce(t.priority, l.priority), t.type, o.stage, o.value,"
		" coalesce(t.owner_id, l.owner_id, o.owner_id), u.email,"
		" coalesce(t.subject, l.title, o.title),"
		" (SELECT max(m.id) FROM link k JOIN message m ON m.id = k.message_id"
		"  WHERE k.kind = v.column2 AND k.record_id = CAST(v.column3 AS BIGINT)"
		"  AND m.auto_kind IS NULL AND m.received <= ?1)"
		" FROM (VALUES " SLOTS_RECIPIENT_CONTACT ") v"
		" LEFT JOIN ticket t ON v.column2 = 'ticket' AND t.id = CAST(v.column3 AS BIGINT)"
		" LEFT JOIN lead l ON v.column2 = 'lead' AND l.id = CAST(v.column3 AS BIGINT)"
		" LEFT JOIN opportunity o ON v.column2 = 'opportunity'"
		"  AND o.id = CAST(v.column3 AS BIGINT)"
		" LEFT JOIN app_user u ON u.id = coalesce(t.owner_id, l.owner_id, o.owner_id)"
		" WHERE v.column2 IS NOT NULL"
		" AND coalesce(t.status, l.status, o.status) IS NOT NULL",
	[MR_STMT_MESSAGE_IS_AUTO] =
		"SELECT 1 FROM message WHERE id = ?1 AND auto_kind IS NOT NULL",
	[MR_STMT_RECORD_FIRST_EVENT] =
		"SELECT min(created) FROM event WHERE record_kind = ?1 AND record_id = ?2"
		" AND type = ?3 AND created >= ?4",
	[MR_STMT_TASK_INSERT] =
		"INSERT INTO task (title, owner_id, record_kind, record_id, due, workflow_id,"
		" created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
	[MR_STMT_TASK_DONE] =
		"UPDATE task SET status = 'done', done = ?2, updated = ?2"
		" WHERE id = ?1 AND status = 'open' RETURNING id",
	[MR_STMT_LIST_TASKS] =
		"SELECT " TASK_COLUMNS " WHERE (CAST(?1 AS TEXT) IS NULL OR u.email = ?1)"
		" AND (?2 = 0 OR t.status = 'open')"
		" AND (CAST(?3 AS TEXT) IS NULL OR (t.status = 'open' AND t.due < ?3))"
		" ORDER BY t.due IS NULL, t.due, t.id",
	[MR_STMT_SHOW_TASK] = "SELECT " TASK_COLUMNS " WHERE t.id = ?1",
	[MR_STMT_OUTBOX_INSERT] = OUTBOX_INSERT " RETURNING id",
	[MR_STMT_OUTBOX_INSERT_LATER] = OUTBOX_INSERT,
	[MR_STMT_OUTBOX_CLAIM] =
		"UPDATE outbox SET status = 'sending', claimed_until = ?2, claim = ?3,"
		" attempts = attempts + 1, updated = ?1"
		" WHERE id IN (SELECT id FROM (SELECT id FROM outbox WHERE status = 'queued'"
		"  AND next_attempt <= ?1 ORDER BY next_attempt LIMIT ?4 /*SKIP LOCKED*/) q"
		"  UNION ALL SELECT id FROM (SELECT id FROM outbox WHERE status = 'sending'"
		"  AND claimed_until < ?1 LIMIT ?4 /*SKIP LOCKED*/) s)"
		" RETURNING id",
	[MR_STMT_OUTBOX_CLAIMED_RAW] =
		"SELECT o.id, o.message_id, o.token, o.recipient, o.attempts, r.raw, o.record_kind,"
		" o.record_id FROM outbox o"
		" JOIN message_raw r ON r.message_id = o.message_id"
		" WHERE o.status = 'sending' AND o.claim = ?1 ORDER BY o.id",
	[MR_STMT_OUTBOX_RESULT] =
		/* unsent (?8 = 1): not tried, the error of the try before stays */
		"UPDATE outbox SET status = ?3,"
		" last_error = CASE WHEN ?8 = 1 THEN last_error ELSE ?4 END,"
		" next_attempt = coalesce(?5, next_attempt),"
		" sent = coalesce(?6, sent), claimed_until = NULL, claim = NULL, updated = ?7,"
		" attempts = attempts - ?8 WHERE id = ?1 AND claim = ?2 RETURNING id",
	[MR_STMT_OUTBOX_SENT_CLAIM] =
		"UPDATE outbox SET status = ?3, last_error = NULL, sent = ?2, claimed_until = NULL,"
		" claim = NULL, updated = ?2 WHERE status = 'sending' AND claim = ?1 RETURNING id",
	[MR_STMT_OUTBOX_NEXT_DUE] =
		"SELECT min(CASE WHEN status = 'queued' THEN next_attempt ELSE claimed_until END)"
		" FROM outbox WHERE status IN ('queued', 'sending')",
	/* Up to MR_STORE_SLOTS recipients at once, NULL in the slots not
	 * used: for each (by slot) the automatic mails of a day and the
	 * contact's mark.  One look-up per recipient (not an IN list: a plan
	 * made while the outbox was small could scan it for every batch). */
	[MR_STMT_OUTBOX_AUTO_COUNTS] =
		"SELECT v.column1, (SELECT count(*) FROM outbox WHERE recipient = v.column2"
		"  AND created >= ?1 AND auto = 1 AND status <> 'cancelled'),"
		" (SELECT undeliverable FROM contact WHERE id = CAST(v.column3 AS BIGINT))"
		" FROM (VALUES " SLOTS_RECIPIENT_CONTACT ") v WHERE v.column2 IS NOT NULL",
	[MR_STMT_LIST_OUTBOX] =
		"SELECT " OUTBOX_COLUMNS " WHERE o.status = coalesce(?1, o.status) ORDER BY o.id LIMIT ?2",
	[MR_STMT_SHOW_OUTBOX] = "SELECT " OUTBOX_COLUMNS " WHERE o.id = ?1",
	[MR_STMT_OUTBOX_SET_STATUS] =
		"UPDATE outbox SET status = ?2, next_attempt = ?3, updated = ?3,"
		" attempts = CASE WHEN ?2 = 'queued' THEN 0 ELSE attempts END"
		" WHERE id = ?1 AND status IN (?4, ?5, ?6, ?7) RETURNING id",
	[MR_STMT_TEMPLATE_INSERT] =
		"INSERT INTO template (name, subject, body, created, updated) VALUES (?1, ?2, ?3, ?4, ?4)"
		" ON CONFLICT (name) DO NOTHING RETURNING id",
	[MR_STMT_TEMPLATE_UPDATE] =
		"UPDATE template SET subject = ?2, body = ?3, updated = ?4 WHERE name = ?1 RETURNING id",
	[MR_STMT_SHOW_TEMPLATE] =
		"SELECT id, name, subject, body, created, updated FROM template WHERE name = ?1",
	[MR_STMT_LIST_TEMPLATES] =
		"SELECT id, name, subject, body, created, updated FROM template ORDER BY name",
	[MR_STMT_TEMPLATE_DELETE] = "DELETE FROM template WHERE name = ?1 RETURNING id",
	[MR_STMT_RECORD_MAIL_LEAD] = RECORD_MAIL("lead", "title"),
	[MR_STMT_RECORD_MAIL_OPP] = RECORD_MAIL("opportunity", "title"),
	[MR_STMT_RECORD_MAIL_TICKET] = RECORD_MAIL("ticket", "subject"),
	[MR_STMT_MESSAGE_THREAD] =
		"SELECT message_id, in_reply_to, subject_norm FROM message WHERE id = ?1",
	[MR_STMT_CONTACT_UNDELIVERABLE] =
		"UPDATE contact SET undeliverable = ?2 WHERE email = ?1 RETURNING id",
	[MR_STMT_USER_MAILBOX] =
		"SELECT u.id, u.email, u.name FROM user_address a JOIN app_user u ON u.id = a.user_id"
		" WHERE a.address = ?1",
	[MR_STMT_RECORD_LAST_IN] =
		"SELECT max(m.id) FROM link l JOIN message m ON m.id = l.message_id"
		" WHERE l.kind = ?1 AND l.record_id = ?2 AND m.direction = 'in'",
	[MR_STMT_OUTBOX_FOR_BOUNCE] =
		"SELECT o.token, o.recipient, o.status, o.contact_id, o.record_kind, o.record_id,"
		" o.message_id, m.message_id FROM outbox o JOIN message m ON m.id = o.message_id"
		" WHERE o.id = ?1",
	[MR_STMT_OUTBOX_BOUNCED] =
		"UPDATE outbox SET status = 'bounced', bounce_status = ?2, last_error = ?3,"
		" claimed_until = NULL, claim = NULL, updated = ?4 WHERE id = ?1",
	[MR_STMT_CONTACT_MARK_ID] = "UPDATE contact SET undeliverable = ?2 WHERE id = ?1",
};
