/* mr-act.h - the acting half of mailroomd as services (mr-service.h):
 * the scheduler, which runs the jobs that fall due, and the outbox, which
 * sends queued mail through the relay (issue 23).
 *
 * Act stage.  Both live on the main loop with one timer each, set to the
 * earliest due row, and a watcher of the database that notices work
 * other processes add (PostgreSQL LISTEN/NOTIFY; on SQLite, inotify on
 * the database file and its WAL, then PRAGMA data_version); neither polls.  They write
 * through the writer like every door.  The scheduler decides when, the
 * outbox only sends. */
#pragma once

#include "mailroom/mr-service.h"

G_BEGIN_DECLS

/* Jobs: claims what is due (a lease in the database), runs each in a unit
 * of the writer, and records the outcome; a failed job is tried again
 * with a backoff, at most MR_JOB_MAX_ATTEMPTS times. */
extern const MrServiceClass mr_scheduler_service;

/* The outbox: a thread of its own sends claimed mail with libetpan's SMTP
 * client through relay { ... } (mr-relay.h), keeping the connection open
 * for the next mail; a 4xx or a failed connection is tried again after
 * relay.retry_min doubling up to relay.retry_max, a 5xx or
 * relay.max_attempts tries end in failed (event mail.failed).  Without a
 * relay the mail waits in the outbox. */
extern const MrServiceClass mr_outbox_service;

/* How often a job is tried before it is failed. */
#define MR_JOB_MAX_ATTEMPTS 5

/* How long a claim holds a job or a mail (seconds): a daemon that dies
 * leaves them to another, or to itself after a restart, after this. */
#define MR_ACT_LEASE_S 300

G_END_DECLS
