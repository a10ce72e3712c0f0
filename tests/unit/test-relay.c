/* test-relay.c - the SMTP client of the outgoing mail (mr-relay.h) against
 * servers run by the test on 127.0.0.1: a scripted fake server (a thread on
 * a plain socket) for the verdicts and the hostile servers, and the test
 * relay of the integration tests (tests/integration/mrrelay.py, aiosmtpd)
 * for STARTTLS and the logins.  The fake announces PIPELINING unless a
 * case says otherwise, and every verdict case runs twice: pipelined, and
 * against an EHLO without PIPELINING (one command at a time).  No sleeps:
 * the time-out cases wait for a 2 s timeout. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "mailroom/mr-relay.h"

#define PASSWORD_ENV "MR_TEST_RELAY_PASSWORD"
#define PASSWORD "secret"
#define MESSAGE "From: a@x.test\r\nTo: b@y.test\r\nSubject: relay test\r\n\r\nHello.\r\n"

/* --- the fake server ------------------------------------------------------------ */

typedef enum {
	FAKE_REPLY,       /* the reply, then the next command */
	FAKE_CLOSE,       /* the reply, then close */
	FAKE_FLOOD_LINES, /* the reply, then "250-..." lines until the client goes */
	FAKE_FLOOD_NOEOL, /* the reply, then bytes without a line end, likewise */
} FakeAct;

/* What the server does when @verb comes: "" is the greeting, "." the end
 * of the data, other verbs are a command's first word. */
typedef struct {
	const char *verb;
	const char *reply; /* (nullable): nothing is sent */
	FakeAct act;
	int nth; /* only the nth time the verb comes (0: every time) */
} FakeStep;

#define FAKE_STEPS 4

/* The defaults answer as a real server does when a pipelined group meets
 * a refusal: RCPT without an accepted MAIL and DATA without an accepted
 * RCPT are refused (fake_serve()). */
static const FakeStep fake_defaults[] = {
	{ .verb = "", .reply = "220 fake.test ESMTP\r\n" },
	{ .verb = "EHLO", .reply = "250-fake.test\r\n250-PIPELINING\r\n250 SIZE 10000000\r\n" },
	{ .verb = "HELO", .reply = "250 fake.test\r\n" },
	{ .verb = "MAIL", .reply = "250 2.1.0 ok\r\n" },
	{ .verb = "RCPT", .reply = "250 2.1.5 ok\r\n" },
	{ .verb = "DATA", .reply = "354 go ahead\r\n" },
	{ .verb = ".", .reply = "250 2.0.0 queued\r\n" },
	{ .verb = "RSET", .reply = "250 2.0.0 ok\r\n" },
	{ .verb = "QUIT", .reply = "221 2.0.0 bye\r\n", .act = FAKE_CLOSE },
	{ .verb = NULL, .reply = "502 5.5.2 what?\r\n" },
};
static const FakeStep fake_no_mail = { .verb = "RCPT",
				       .reply = "503 5.5.1 need MAIL command\r\n" };
static const FakeStep fake_no_rcpt = { .verb = "DATA",
				       .reply = "554 5.5.1 no valid recipients\r\n" };

/* An EHLO reply without PIPELINING: what the serial runs script. */
#define FAKE_EHLO_SERIAL { .verb = "EHLO", .reply = "250-fake.test\r\n250 SIZE 10000000\r\n" }

typedef struct {
	FakeStep steps[FAKE_STEPS];
	int sock, port;
	GThread *thread;
	GMutex lock;
	GCond cond;
	GString *log;      /* "N>LINE\n": every command line of connection N,
	                      and "N>.\n" for the end of the data */
	GString *trace;    /* "N>VERB@R\n": every command of connection N and
	                      the number R of replies the server had sent when
	                      it arrived: a pipelined group arrives whole,
	                      "1>MAIL@2 1>RCPT@2 1>DATA@2" */
	GString *data;     /* the last message's data as received */
	GHashTable *seen;  /* verb -> times it came */
	int connections;   /* accepted */
	int closed;        /* ended */
} Fake;

static gboolean
fake_send(int fd, const char *s, gsize n)
{
	while (n > 0) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);

		if (k <= 0)
			return FALSE;
		s += k;
		n -= (gsize)k;
	}
	return TRUE;
}

/* The default step for @verb. */
static const FakeStep *
fake_default(const char *verb)
{
	for (guint i = 0;; i++)
		if (fake_defaults[i].verb == NULL || strcmp(fake_defaults[i].verb, verb) == 0)
			return &fake_defaults[i];
}

static const FakeStep *
fake_step(Fake *f, const char *verb)
{
	int n;

	g_mutex_lock(&f->lock);
	n = GPOINTER_TO_INT(g_hash_table_lookup(f->seen, verb)) + 1;
	g_hash_table_insert(f->seen, g_strdup(verb), GINT_TO_POINTER(n));
	g_mutex_unlock(&f->lock);
	for (int i = 0; i < FAKE_STEPS; i++)
		if (f->steps[i].verb != NULL && strcmp(f->steps[i].verb, verb) == 0 &&
		    (f->steps[i].nth == 0 || f->steps[i].nth == n))
			return &f->steps[i];
	return fake_default(verb);
}

/* Does what @st says on @fd.  Returns FALSE when the connection ends. */
static gboolean
fake_act(int fd, const FakeStep *st)
{
	char chunk[4096];

	if (st->reply != NULL && !fake_send(fd, st->reply, strlen(st->reply)))
		return FALSE;
	switch (st->act) {
	case FAKE_REPLY:
		return TRUE;
	case FAKE_CLOSE:
		return FALSE;
	case FAKE_FLOOD_LINES:
		while (fake_send(fd, "250-flood flood flood flood flood flood flood\r\n", 47))
			;
		return FALSE;
	case FAKE_FLOOD_NOEOL:
		memset(chunk, 'x', sizeof(chunk));
		while (fake_send(fd, chunk, sizeof(chunk)))
			;
		return FALSE;
	}
	return FALSE;
}

/* When the bytes up to @end (counted from the start of the connection)
 * came: after @replies replies. */
typedef struct {
	guint64 end;
	guint replies;
} FakeArrival;

/* Serves connection number @conn on @fd until one side ends it. */
static void
fake_serve(Fake *f, int fd, int conn)
{
	g_autoptr(GString) buf = g_string_new(NULL);
	g_autoptr(GArray) arrivals = g_array_new(FALSE, FALSE, sizeof(FakeArrival));
	guint64 consumed = 0; /* bytes taken from the front of buf */
	guint replies = 0;
	gboolean in_data = FALSE, mail_ok = FALSE, rcpt_ok = FALSE;
	const FakeStep *st = fake_step(f, "");

	if (!fake_act(fd, st))
		return;
	replies += st->reply != NULL;
	for (;;) {
		g_autofree char *line = NULL;
		g_autofree char *verb = NULL;
		char chunk[4096], *nl;
		guint arrived;
		gsize len;

		while ((nl = memchr(buf->str, '\n', buf->len)) == NULL) {
			ssize_t k = recv(fd, chunk, sizeof(chunk), 0);
			FakeArrival a;

			if (k <= 0)
				return;
			g_string_append_len(buf, chunk, k);
			a.end = consumed + buf->len;
			a.replies = replies;
			g_array_append_val(arrivals, a);
		}
		len = (gsize)(nl - buf->str + 1);
		while (g_array_index(arrivals, FakeArrival, 0).end < consumed + len)
			g_array_remove_index(arrivals, 0);
		arrived = g_array_index(arrivals, FakeArrival, 0).replies;
		line = g_strndup(buf->str, len);
		g_string_erase(buf, 0, (gssize)len);
		consumed += len;
		if (in_data && strcmp(line, ".\r\n") != 0) {
			g_mutex_lock(&f->lock);
			g_string_append(f->data, line);
			g_mutex_unlock(&f->lock);
			continue;
		}
		g_strchomp(line);
		if (in_data) {
			in_data = FALSE;
			verb = g_strdup(".");
		} else {
			verb = g_ascii_strup(line, (gssize)strcspn(line, " :"));
		}
		g_mutex_lock(&f->lock);
		g_string_append_printf(f->log, "%d>%s\n", conn, line);
		g_string_append_printf(f->trace, "%d>%s@%u\n", conn, verb, arrived);
		g_mutex_unlock(&f->lock);
		st = fake_step(f, verb);
		if (st == fake_default("RCPT") && !mail_ok)
			st = &fake_no_mail;
		else if (st == fake_default("DATA") && !rcpt_ok)
			st = &fake_no_rcpt;
		if (strcmp(verb, "MAIL") == 0) {
			mail_ok = st->reply != NULL && st->reply[0] == '2';
			rcpt_ok = FALSE;
		} else if (strcmp(verb, "RCPT") == 0) {
			rcpt_ok = rcpt_ok || (st->reply != NULL && st->reply[0] == '2');
		} else if (strcmp(verb, ".") == 0 || strcmp(verb, "RSET") == 0) {
			mail_ok = rcpt_ok = FALSE;
		}
		if (strcmp(verb, "DATA") == 0 && st->reply != NULL &&
		    g_str_has_prefix(st->reply, "354")) {
			in_data = TRUE;
			g_mutex_lock(&f->lock);
			g_string_truncate(f->data, 0);
			g_mutex_unlock(&f->lock);
		}
		if (!fake_act(fd, st))
			return;
		replies += st->reply != NULL;
	}
}

static gpointer
fake_thread(gpointer data)
{
	Fake *f = data;

	for (;;) {
		int fd = accept(f->sock, NULL, NULL);
		int n;

		if (fd < 0 && errno == EINTR)
			continue;
		if (fd < 0)
			return NULL; /* fake_stop() */
		g_mutex_lock(&f->lock);
		n = ++f->connections;
		g_mutex_unlock(&f->lock);
		fake_serve(f, fd, n);
		close(fd);
		g_mutex_lock(&f->lock);
		f->closed++;
		g_cond_broadcast(&f->cond);
		g_mutex_unlock(&f->lock);
	}
}

/* A fake server on 127.0.0.1 that answers as @steps say (nullable: the
 * defaults throughout). */
static Fake *
fake_start(const FakeStep *steps)
{
	Fake *f = g_new0(Fake, 1);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	if (steps != NULL)
		memcpy(f->steps, steps, sizeof(f->steps));
	g_mutex_init(&f->lock);
	g_cond_init(&f->cond);
	f->log = g_string_new(NULL);
	f->trace = g_string_new(NULL);
	f->data = g_string_new(NULL);
	f->seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	f->sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	g_assert_cmpint(f->sock, >=, 0);
	g_assert_cmpint(bind(f->sock, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	g_assert_cmpint(listen(f->sock, 8), ==, 0);
	g_assert_cmpint(getsockname(f->sock, (struct sockaddr *)&sa, &len), ==, 0);
	f->port = ntohs(sa.sin_port);
	f->thread = g_thread_new("fake-smtp", fake_thread, f);
	return f;
}

/* How many connections the server accepted. */
static int
fake_connections(Fake *f)
{
	int n;

	g_mutex_lock(&f->lock);
	n = f->connections;
	g_mutex_unlock(&f->lock);
	return n;
}

/* A copy of @s, one of @f's strings (the data of the last message, the
 * trace so far), taken under its lock. */
static char *
fake_copy(Fake *f, const GString *s)
{
	char *copy;

	g_mutex_lock(&f->lock);
	copy = g_strdup(s->str);
	g_mutex_unlock(&f->lock);
	return copy;
}

/* Waits until @n connections have ended. */
static void
fake_wait_closed(Fake *f, int n)
{
	g_mutex_lock(&f->lock);
	while (f->closed < n)
		g_cond_wait(&f->cond, &f->lock);
	g_mutex_unlock(&f->lock);
}

/* Stops the server (after the client closed: the connection in progress
 * is served to its end) and frees it.  Returns: (transfer full): its
 * log. */
static char *
fake_stop(Fake *f)
{
	char *log;

	shutdown(f->sock, SHUT_RDWR);
	g_thread_join(f->thread);
	close(f->sock);
	log = g_string_free(f->log, FALSE);
	g_string_free(f->trace, TRUE);
	g_string_free(f->data, TRUE);
	g_hash_table_unref(f->seen);
	g_mutex_clear(&f->lock);
	g_cond_clear(&f->cond);
	g_free(f);
	return log;
}

/* --- helpers --------------------------------------------------------------------- */

static void
remote_init(MrRemote *rm, int port, int timeout_s)
{
	memset(rm, 0, sizeof(*rm));
	rm->label = g_strdup("relay");
	rm->host = g_strdup("127.0.0.1");
	rm->port = port;
	rm->tls = MR_REMOTE_TLS_NONE;
	rm->tls_verify = TRUE;
	rm->timeout_s = timeout_s;
}

static GBytes *
message_bytes(void)
{
	return g_bytes_new_static(MESSAGE, strlen(MESSAGE));
}

static guint
count_of(const char *haystack, const char *needle)
{
	guint n = 0;

	for (const char *p = strstr(haystack, needle); p != NULL; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void
assert_result(const MrRelayResult *res, MrRelayVerdict verdict, int code, const char *reply)
{
	if (res->verdict != verdict || res->code != code || strstr(res->reply, reply) == NULL)
		g_test_message("verdict %d code %d reply \"%s\"", res->verdict, res->code, res->reply);
	g_assert_cmpint(res->verdict, ==, verdict);
	g_assert_cmpint(res->code, ==, code);
	g_assert_nonnull(strstr(res->reply, reply));
	g_assert_cmpuint(strlen(res->reply), <=, MR_RELAY_REPLY_MAX);
}

/* --- a relay client and a scripted server --------------------------------------------- */

typedef struct {
	Fake *fake;
	MrRemote remote; /* tests may change it until the first send */
	MrRelay *relay;
	MrRelayResult res;
	GBytes *msg;
} Session;

/* A fake server answering as @steps say (nullable) and a relay client for
 * it, whose commands time out after @timeout_s. */
static void
session_start(Session *s, const FakeStep *steps, int timeout_s, GCancellable *cancel)
{
	memset(s, 0, sizeof(*s));
	s->fake = fake_start(steps);
	remote_init(&s->remote, s->fake->port, timeout_s);
	s->relay = mr_relay_new(&s->remote, "relay.test", cancel);
	s->msg = message_bytes();
}

/* Sends the test message to @rcpt and checks the result. */
static void
session_send(Session *s, const char *rcpt, MrRelayVerdict verdict, int code, const char *reply)
{
	mr_relay_send(s->relay, "a@x.test", rcpt, s->msg, &s->res);
	assert_result(&s->res, verdict, code, reply);
}

/* Frees the client, then stops the server.  Returns: (transfer full): the
 * server's log. */
static char *
session_end(Session *s)
{
	mr_relay_free(s->relay);
	mr_relay_result_clear(&s->res);
	mr_remote_clear(&s->remote);
	g_bytes_unref(s->msg);
	return fake_stop(s->fake);
}

/* --- one mail against a scripted server -------------------------------------------- */

typedef struct {
	const char *name;
	FakeStep steps[FAKE_STEPS];
	int timeout_s;         /* 0: 10 */
	gboolean starttls;     /* tls = starttls */
	gboolean login;        /* user and password set */
	MrRelayVerdict verdict;
	int code;
	const char *reply;     /* what the reply holds */
	gboolean connected;    /* after the send */
	const char *not_sent;  /* (nullable): no command line starts so */
	const char *sent;      /* (nullable): one does */
	gboolean again;        /* a second mail is sent on the connection */
	/* Where pipelining changes what happens (0 and NULL: as above): a
	 * command after MAIL in the group is sent with it, so that what is
	 * not sent is the data (".": the end of the data). */
	struct {
		int code;
		const char *reply; /* (nullable): code and reply as above */
		const char *not_sent;
	} group;
} VerdictCase;

static const VerdictCase verdict_cases[] = {
	{ .name = "sent", .verdict = MR_RELAY_SENT, .code = 250, .reply = "250 2.0.0 queued",
	  .connected = TRUE, .sent = "EHLO relay.test" },
	{ .name = "rcpt-451", .steps = { { .verb = "RCPT", .reply = "451 4.3.0 try later\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 451, .reply = "451 4.3.0 try later",
	  .connected = TRUE, .not_sent = "DATA", .group.not_sent = "." },
	{ .name = "rcpt-550",
	  .steps = { { .verb = "RCPT", .reply = "550 5.1.1 <b@y.test>: user unknown\r\n" } },
	  .verdict = MR_RELAY_PERMFAIL, .code = 550, .reply = "550 5.1.1 <b@y.test>: user unknown",
	  .connected = TRUE, .not_sent = "DATA", .group.not_sent = "." },
	{ .name = "rcpt-251", .steps = { { .verb = "RCPT", .reply = "251 2.1.5 will forward\r\n" } },
	  .verdict = MR_RELAY_SENT, .code = 250, .reply = "250 2.0.0 queued", .connected = TRUE },
	/* libetpan takes only 250 for MAIL; pipelined, the same */
	{ .name = "mail-251", .steps = { { .verb = "MAIL", .reply = "251 2.1.0 fine\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 251, .reply = "MAIL FROM: unexpected reply: 251",
	  .not_sent = "RCPT", .group.not_sent = "." },
	{ .name = "rcpt-multiline",
	  .steps = { { .verb = "RCPT", .reply = "550-5.1.1 first\r\n550 5.1.1 second\r\n" } },
	  .verdict = MR_RELAY_PERMFAIL, .code = 550, .reply = "550 5.1.1 first 5.1.1 second",
	  .connected = TRUE },
	{ .name = "rcpt-control-characters",
	  .steps = { { .verb = "RCPT", .reply = "550 5.1.1 no\x1b[31m\r\n" } },
	  .verdict = MR_RELAY_PERMFAIL, .code = 550, .reply = "550 5.1.1 no\\x1b[31m",
	  .connected = TRUE },
	{ .name = "mail-530",
	  .steps = { { .verb = "MAIL", .reply = "530 5.7.0 Authentication required\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 530, .reply = "530 5.7.0", .connected = TRUE },
	{ .name = "data-554",
	  .steps = { { .verb = "DATA", .reply = "554 5.5.1 no valid recipients\r\n" } },
	  .verdict = MR_RELAY_PERMFAIL, .code = 554, .reply = "554 5.5.1", .connected = TRUE },
	{ .name = "end-of-data-552",
	  .steps = { { .verb = ".", .reply = "552 5.3.4 message too big\r\n" } },
	  .verdict = MR_RELAY_PERMFAIL, .code = 552, .reply = "552 5.3.4 message too big",
	  .connected = TRUE },
	{ .name = "end-of-data-451", .steps = { { .verb = ".", .reply = "451 4.3.0 later\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 451, .reply = "451 4.3.0 later",
	  .connected = TRUE },
	{ .name = "greeting-554", .steps = { { .verb = "", .reply = "554 5.3.2 go away\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 554, .reply = "554 5.3.2 go away",
	  .not_sent = "EHLO" },
	{ .name = "greeting-421",
	  .steps = { { .verb = "", .reply = "421 4.3.2 busy\r\n", .act = FAKE_CLOSE } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 421, .reply = "421 4.3.2 busy",
	  .not_sent = "EHLO" },
	{ .name = "ehlo-421", .steps = { { .verb = "EHLO", .reply = "421 4.3.2 closing\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 421, .reply = "421 4.3.2 closing",
	  .not_sent = "MAIL" },
	{ .name = "helo-fallback",
	  .steps = { { .verb = "EHLO", .reply = "502 5.5.1 no EHLO here\r\n" } },
	  .verdict = MR_RELAY_SENT, .code = 250, .reply = "250 2.0.0 queued", .connected = TRUE,
	  .sent = "HELO relay.test" },
	{ .name = "garbage", .steps = { { .verb = "EHLO", .reply = "hello there\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "EHLO: a reply that makes no sense: \"hello there\"", .not_sent = "MAIL" },
	{ .name = "plus-code", .steps = { { .verb = "MAIL", .reply = "+250 ok\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0, .reply = "MAIL FROM: a reply that makes no sense",
	  .not_sent = "RCPT", .group.not_sent = "." },
	{ .name = "unexpected-class", .steps = { { .verb = "RCPT", .reply = "354 go on\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 354, .reply = "RCPT TO: unexpected reply: 354",
	  .not_sent = "DATA", .group.not_sent = "." },
	{ .name = "answers-twice", .steps = { { .verb = "MAIL", .reply = "250 ok\r\n250 ok\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "RCPT TO: the server sent a reply that was not asked for", .not_sent = "RCPT",
	  /* pipelined, RCPT and DATA are out before the second 250 is seen:
	   * it is read as RCPT's reply and RCPT's as DATA's, of the wrong
	   * class */
	  .group = { .code = 250, .reply = "DATA: unexpected reply: 250 2.1.5 ok", .not_sent = "." } },
	{ .name = "closes-mid-reply",
	  .steps = { { .verb = "RCPT", .reply = "250-part one\r\n", .act = FAKE_CLOSE } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "RCPT TO: the server closed the connection", .not_sent = "DATA",
	  .group.not_sent = "." },
	{ .name = "closes-at-mail",
	  .steps = { { .verb = "MAIL", .reply = NULL, .act = FAKE_CLOSE } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "MAIL FROM: the server closed the connection" },
	{ .name = "flood-lines",
	  .steps = { { .verb = "EHLO", .reply = "250-fake.test\r\n", .act = FAKE_FLOOD_LINES } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0, .reply = "EHLO: the server sent more than",
	  .not_sent = "MAIL" },
	{ .name = "flood-no-line-end",
	  .steps = { { .verb = "MAIL", .reply = "250 ", .act = FAKE_FLOOD_NOEOL } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0, .reply = "MAIL FROM: the server sent more than",
	  .not_sent = "RCPT", .group.not_sent = "." },
	{ .name = "lone-lf", .steps = { { .verb = "MAIL", .reply = "\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0, .reply = "MAIL FROM: the server sent an empty line",
	  .not_sent = "RCPT", .group.not_sent = "." },
	{ .name = "ehlo-tab",
	  .steps = { { .verb = "EHLO", .reply = "250-fake.test\r\n250 AUTH X\tPLAIN\r\n" } },
	  .verdict = MR_RELAY_SENT, .code = 250, .reply = "250 2.0.0 queued", .connected = TRUE },
	{ .name = "timeout", .steps = { { .verb = "RCPT", .reply = NULL } }, .timeout_s = 2,
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0, .reply = "RCPT TO: no complete answer within 2 s",
	  .not_sent = "DATA",
	  /* pipelined, the server's 554 to DATA is read as RCPT's reply and
	   * DATA's never comes: out of step, TEMPFAIL, never that 554 */
	  .group = { .code = 0, .reply = "DATA: no complete answer within 2 s", .not_sent = "." } },
	{ .name = "timeout-all",
	  .steps = { { .verb = "RCPT", .reply = NULL }, { .verb = "DATA", .reply = NULL } },
	  .timeout_s = 2, .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "RCPT TO: no complete answer within 2 s", .not_sent = "DATA",
	  .group.not_sent = "." },
	{ .name = "starttls-not-offered", .starttls = TRUE, .verdict = MR_RELAY_TEMPFAIL,
	  .code = 0, .reply = "does not offer STARTTLS", .not_sent = "MAIL" },
	{ .name = "starttls-454",
	  .steps = { { .verb = "EHLO", .reply = "250-fake.test\r\n250 STARTTLS\r\n" },
		     { .verb = "STARTTLS", .reply = "454 4.7.0 TLS not available\r\n" } },
	  .starttls = TRUE, .verdict = MR_RELAY_TEMPFAIL, .code = 454,
	  .reply = "454 4.7.0 TLS not available", .not_sent = "MAIL" },
	{ .name = "starttls-injection",
	  .steps = { { .verb = "EHLO", .reply = "250-fake.test\r\n250 STARTTLS\r\n" },
		     { .verb = "STARTTLS", .reply = "220 go ahead\r\n250 injected\r\n" } },
	  .starttls = TRUE, .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "STARTTLS: the server sent more than its reply", .not_sent = "MAIL" },
	{ .name = "login-refused",
	  .steps = { { .verb = "EHLO", .reply = "250-fake.test\r\n250 AUTH PLAIN LOGIN\r\n" },
		     { .verb = "AUTH", .reply = "535 5.7.8 bad credentials\r\n" } },
	  .login = TRUE, .verdict = MR_RELAY_TEMPFAIL, .code = 535,
	  .reply = "535 5.7.8 bad credentials", .not_sent = "MAIL", .sent = "AUTH PLAIN " },
	{ .name = "login-250", /* libetpan would take it */
	  .steps = { { .verb = "EHLO", .reply = "250-fake.test\r\n250 AUTH PLAIN\r\n" },
		     { .verb = "AUTH", .reply = "250 fine\r\n" } },
	  .login = TRUE, .verdict = MR_RELAY_TEMPFAIL, .code = 250,
	  .reply = "AUTH PLAIN: unexpected reply: 250 fine", .not_sent = "MAIL" },
	{ .name = "login-not-offered", .login = TRUE, .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "offers neither AUTH PLAIN nor AUTH LOGIN", .not_sent = "MAIL" },
};

/* Sends a mail as @c says, to a server that announces PIPELINING (unless
 * @c scripts EHLO) when @pipelining, else to one whose EHLO lacks it. */
static void
verdict_run(const VerdictCase *c, gboolean pipelining)
{
	FakeStep steps[FAKE_STEPS];
	gboolean group = FALSE, scripted = FALSE, connected;
	int code = c->code;
	const char *reply = c->reply, *not_sent = c->not_sent;
	Session s;
	guint i;

	memcpy(steps, c->steps, sizeof(steps));
	for (i = 0; i < FAKE_STEPS && steps[i].verb != NULL; i++)
		scripted = scripted || strcmp(steps[i].verb, "EHLO") == 0;
	if (!pipelining && !scripted) {
		g_assert_cmpuint(i, <, FAKE_STEPS);
		steps[i] = (FakeStep)FAKE_EHLO_SERIAL;
	}
	group = pipelining && !scripted;
	if (group && c->group.reply != NULL) {
		code = c->group.code;
		reply = c->group.reply;
	}
	if (group && c->group.not_sent != NULL)
		not_sent = c->group.not_sent;
	session_start(&s, steps, c->timeout_s > 0 ? c->timeout_s : 10, NULL);
	if (c->starttls)
		s.remote.tls = MR_REMOTE_TLS_STARTTLS;
	if (c->login) {
		s.remote.user = g_strdup("mailroom");
		s.remote.password_env = g_strdup(PASSWORD_ENV);
	}
	session_send(&s, "b@y.test", c->verdict, code, reply);
	connected = mr_relay_connected(s.relay);
	if (c->again) {
		session_send(&s, "b@y.test", MR_RELAY_SENT, 250, "250 2.0.0 queued");
		g_assert_cmpint(fake_connections(s.fake), ==, 1);
	}
	g_autofree char *log = session_end(&s);
	g_assert_cmpint(connected, ==, c->connected);
	if (not_sent != NULL) {
		g_autofree char *line = g_strdup_printf("1>%s", not_sent);

		g_assert_null(strstr(log, line));
	}
	if (c->sent != NULL) {
		g_autofree char *line = g_strdup_printf("1>%s", c->sent);

		g_assert_nonnull(strstr(log, line));
	}
}

static void
test_verdict(gconstpointer data)
{
	verdict_run(data, TRUE);
}

static void
test_verdict_serial(gconstpointer data)
{
	verdict_run(data, FALSE);
}

/* --- pipelining ----------------------------------------------------------------------- */

/* What only a pipelined group can meet: replies to commands sent after a
 * refused one, a server that takes DATA after refusing RCPT, more replies
 * than commands.  Steps with .nth = 1 leave the second mail (.again) to
 * the defaults. */
static const VerdictCase group_cases[] = {
	{ .name = "rcpt-550-data-554",
	  .steps = { { .verb = "RCPT", .reply = "550 5.1.1 no such user\r\n", .nth = 1 },
		     { .verb = "DATA", .reply = "554 5.5.1 no valid recipients\r\n", .nth = 1 } },
	  .verdict = MR_RELAY_PERMFAIL, .code = 550, .reply = "550 5.1.1 no such user",
	  .connected = TRUE, .sent = "DATA\n1>RSET\n1>MAIL", .again = TRUE },
	{ .name = "mail-451-then-503",
	  .steps = { { .verb = "MAIL", .reply = "451 4.3.0 try later\r\n", .nth = 1 },
		     { .verb = "RCPT", .reply = "503 5.5.1 need MAIL\r\n", .nth = 1 },
		     { .verb = "DATA", .reply = "503 5.5.1 need RCPT\r\n", .nth = 1 } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 451, .reply = "451 4.3.0 try later",
	  .connected = TRUE, .sent = "DATA\n1>RSET\n1>MAIL", .again = TRUE },
	{ .name = "mail-530-then-503",
	  .steps = { { .verb = "MAIL", .reply = "530 5.7.0 Authentication required\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 530, .reply = "530 5.7.0", .connected = TRUE,
	  .not_sent = "." },
	/* a broken server: the data ends at once, the verdict is RCPT's */
	{ .name = "data-354-after-refusal",
	  .steps = { { .verb = "RCPT", .reply = "550 5.1.1 no such user\r\n", .nth = 1 },
		     { .verb = "DATA", .reply = "354 go ahead\r\n", .nth = 1 } },
	  .verdict = MR_RELAY_PERMFAIL, .code = 550, .reply = "550 5.1.1 no such user",
	  .connected = TRUE, .sent = "DATA\n1>.\n1>RSET\n", .again = TRUE },
	{ .name = "data-354-after-mail-451",
	  .steps = { { .verb = "MAIL", .reply = "451 4.3.0 try later\r\n", .nth = 1 },
		     { .verb = "DATA", .reply = "354 go ahead\r\n", .nth = 1 } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 451, .reply = "451 4.3.0 try later",
	  .connected = TRUE, .sent = "DATA\n1>.\n1>RSET\n", .again = TRUE },
	{ .name = "four-replies",
	  .steps = { { .verb = "MAIL", .reply = "451 4.3.0 try later\r\n" },
		     { .verb = "RCPT", .reply = "503 5.5.1 need MAIL\r\n" },
		     { .verb = "DATA", .reply = "503 5.5.1 need RCPT\r\n503 5.5.1 again\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "DATA: the server sent a reply that was not asked for", .not_sent = "." },
	{ .name = "four-replies-354",
	  .steps = { { .verb = "DATA", .reply = "354 go ahead\r\n250 2.0.0 queued\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0,
	  .reply = "DATA: the server sent a reply that was not asked for", .not_sent = "." },
	/* after a refusal, a 421 closes the connection but keeps the verdict ... */
	{ .name = "rcpt-550-then-421",
	  .steps = { { .verb = "RCPT", .reply = "550 5.1.1 no such user\r\n" },
		     { .verb = "DATA", .reply = "421 4.3.2 closing\r\n", .act = FAKE_CLOSE } },
	  .verdict = MR_RELAY_PERMFAIL, .code = 550, .reply = "550 5.1.1 no such user",
	  .not_sent = "." },
	/* ... a reply out of step makes it TEMPFAIL */
	{ .name = "rcpt-550-then-nonsense",
	  .steps = { { .verb = "RCPT", .reply = "550 5.1.1 no such user\r\n" },
		     { .verb = "DATA", .reply = "hello\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0, .reply = "DATA: a reply that makes no sense",
	  .not_sent = "." },
	{ .name = "rcpt-550-then-250",
	  .steps = { { .verb = "RCPT", .reply = "550 5.1.1 no such user\r\n" },
		     { .verb = "DATA", .reply = "250 ok\r\n" } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 250, .reply = "DATA: unexpected reply: 250 ok",
	  .not_sent = "." },
	{ .name = "mail-421",
	  .steps = { { .verb = "MAIL", .reply = "421 4.3.2 closing\r\n", .act = FAKE_CLOSE } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 421, .reply = "421 4.3.2 closing", .not_sent = "." },
	{ .name = "closes-after-rcpt",
	  .steps = { { .verb = "RCPT", .reply = "550 5.1.1 no such user\r\n", .act = FAKE_CLOSE } },
	  .verdict = MR_RELAY_TEMPFAIL, .code = 0, .reply = "DATA: the server closed the connection",
	  .not_sent = "." },
};

/* Two mails and QUIT: with PIPELINING (@data non-NULL) MAIL, RCPT and
 * DATA arrive together, before any reply to them; without, each after
 * the reply to the one before. */
static void
test_trace(gconstpointer data)
{
	static const FakeStep serial[FAKE_STEPS] = { FAKE_EHLO_SERIAL };
	gboolean pipelining = data != NULL;
	Session s;
	g_autofree char *trace = NULL;

	session_start(&s, pipelining ? NULL : serial, 10, NULL);
	for (int i = 0; i < 2; i++)
		session_send(&s, "b@y.test", MR_RELAY_SENT, 250, "250 2.0.0 queued");
	mr_relay_close(s.relay);
	trace = fake_copy(s.fake, s.fake->trace);
	g_autofree char *log = session_end(&s);
	/* replies: 1 the greeting, 2 EHLO's, 3-5 the group's, 6 the end of
	 * the data's, ... */
	g_assert_cmpstr(trace, ==,
			pipelining ? "1>EHLO@1\n1>MAIL@2\n1>RCPT@2\n1>DATA@2\n1>.@5\n"
				     "1>MAIL@6\n1>RCPT@6\n1>DATA@6\n1>.@9\n1>QUIT@10\n"
				   : "1>EHLO@1\n1>MAIL@2\n1>RCPT@3\n1>DATA@4\n1>.@5\n"
				     "1>MAIL@6\n1>RCPT@7\n1>DATA@8\n1>.@9\n1>QUIT@10\n");
}

/* MAIL FROM is the same with and without PIPELINING (@data non-NULL):
 * what libetpan's mailesmtp_mail_size() writes, RET=HDRS with DSN, SIZE
 * when announced. */
static void
test_mail_line(gconstpointer data)
{
	static const struct {
		const char *ehlo, *pipelining_ehlo, *want;
		gboolean size; /* SIZE=<the message's size> follows */
	} cases[] = {
		{ "250-fake.test\r\n250-DSN\r\n250 SIZE 1000\r\n",
		  "250-fake.test\r\n250-PIPELINING\r\n250-DSN\r\n250 SIZE 1000\r\n",
		  "1>MAIL FROM:<a@x.test> RET=HDRS", TRUE },
		{ "250-fake.test\r\n250 8BITMIME\r\n", "250-fake.test\r\n250 PIPELINING\r\n",
		  "1>MAIL FROM:<a@x.test>", FALSE },
	};

	for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
		FakeStep steps[FAKE_STEPS] = {
			{ .verb = "EHLO", .reply = data != NULL ? cases[i].pipelining_ehlo : cases[i].ehlo },
		};
		Session s;
		g_autofree char *want =
			cases[i].size ? g_strdup_printf("%s SIZE=%zu\n", cases[i].want, strlen(MESSAGE))
				      : g_strdup_printf("%s\n", cases[i].want);

		session_start(&s, steps, 10, NULL);
		session_send(&s, "b@y.test", MR_RELAY_SENT, 250, "250 2.0.0 queued");
		g_autofree char *log = session_end(&s);
		g_assert_nonnull(strstr(log, want));
	}
}

/* --- several mails ------------------------------------------------------------------- */

/* Two mails, one connection, one EHLO; the relay's QUIT at the end. */
static void
test_reuse(void)
{
	Session s;

	session_start(&s, NULL, 10, NULL);
	for (int i = 0; i < 2; i++)
		session_send(&s, "b@y.test", MR_RELAY_SENT, 250, "250 2.0.0 queued");
	g_assert_true(mr_relay_connected(s.relay));
	mr_relay_close(s.relay);
	g_assert_false(mr_relay_connected(s.relay));
	mr_relay_close(s.relay); /* idempotent */
	g_assert_cmpint(fake_connections(s.fake), ==, 1);
	g_autofree char *log = session_end(&s);
	g_assert_cmpuint(count_of(log, ">EHLO"), ==, 1);
	g_assert_cmpuint(count_of(log, ">MAIL FROM:<a@x.test>"), ==, 2);
	g_assert_cmpuint(count_of(log, ">RSET"), ==, 0);
	g_assert_true(g_str_has_suffix(log, "1>QUIT\n"));
}

/* A mail refused at RCPT leaves a transaction open: RSET before the next. */
static void
test_rset(void)
{
	static const FakeStep steps[FAKE_STEPS] = {
		{ .verb = "RCPT", .reply = "550 5.1.1 no such user\r\n", .nth = 1 },
	};
	Session s;
	const char *rset, *second_mail;

	session_start(&s, steps, 10, NULL);
	session_send(&s, "nobody@y.test", MR_RELAY_PERMFAIL, 550, "550 5.1.1 no such user");
	session_send(&s, "b@y.test", MR_RELAY_SENT, 250, "250 2.0.0 queued");
	g_autofree char *log = session_end(&s);
	rset = strstr(log, "1>RSET\n");
	second_mail = strstr(log, "1>RCPT TO:<b@y.test>");
	g_assert_nonnull(rset);
	g_assert_nonnull(second_mail);
	g_assert_true(rset < second_mail);
	g_assert_cmpuint(count_of(log, ">RSET"), ==, 1);
}

typedef struct {
	const char *name;
	FakeStep steps[FAKE_STEPS];
	gboolean wait; /* until the server closed the first connection */
} ReconnectCase;

static const ReconnectCase reconnect_cases[] = {
	/* the server closes after a mail: seen before the next one */
	{ .name = "closed",
	  .steps = { { .verb = ".", .reply = "250 2.0.0 queued\r\n", .act = FAKE_CLOSE, .nth = 1 } },
	  .wait = TRUE },
	/* ... or not yet: the next one fails before any reply and is sent again */
	{ .name = "closing",
	  .steps = { { .verb = ".", .reply = "250 2.0.0 queued\r\n", .act = FAKE_CLOSE, .nth = 1 } } },
	/* an idle time-out's 421 after the reply */
	{ .name = "idle-421",
	  .steps = { { .verb = ".", .reply = "250 2.0.0 queued\r\n421 4.4.2 idle too long\r\n",
		       .act = FAKE_CLOSE, .nth = 1 } },
	  .wait = TRUE },
	/* the server stops answering MAIL on a kept connection */
	{ .name = "gone-at-mail",
	  .steps = { { .verb = "MAIL", .reply = NULL, .act = FAKE_CLOSE, .nth = 2 } } },
};

static void
test_reconnect(gconstpointer data)
{
	const ReconnectCase *c = data;
	Session s;

	session_start(&s, c->steps, 10, NULL);
	session_send(&s, "b@y.test", MR_RELAY_SENT, 250, "250 2.0.0 queued");
	if (c->wait)
		fake_wait_closed(s.fake, 1);
	session_send(&s, "b@y.test", MR_RELAY_SENT, 250, "250 2.0.0 queued");
	g_assert_true(mr_relay_connected(s.relay));
	g_assert_cmpint(fake_connections(s.fake), ==, 2);
	g_autofree char *log = session_end(&s);
	g_assert_cmpuint(count_of(log, "2>EHLO"), ==, 1);
}

/* What reaches the server: the envelope (the null sender, SIZE), the data
 * dot-stuffed with CRLF line ends and no line added at its end. */
static void
test_envelope(void)
{
	static const char data[] = "Subject: dots\n\n.leading dot\nline\r\nbare\rcr\n";
	Session s;
	g_autofree char *got = NULL;
	g_autoptr(GBytes) msg = g_bytes_new_static(data, strlen(data));
	g_autofree char *mail = g_strdup_printf("1>MAIL FROM:<> SIZE=%zu\n", strlen(data));

	session_start(&s, NULL, 10, NULL);
	mr_relay_send(s.relay, "", "b@y.test", msg, &s.res);
	assert_result(&s.res, MR_RELAY_SENT, 250, "250 2.0.0 queued");
	got = fake_copy(s.fake, s.fake->data);
	g_autofree char *log = session_end(&s);
	g_assert_nonnull(strstr(log, mail));
	g_assert_nonnull(strstr(log, "1>RCPT TO:<b@y.test>\n"));
	g_assert_cmpstr(got, ==, "Subject: dots\r\n\r\n..leading dot\r\nline\r\nbare\r\ncr\r\n");
}

typedef struct {
	const char *name;
	const char *from, *rcpt;
} InjectionCase;

static const InjectionCase injection_cases[] = {
	{ "rcpt-crlf", "a@x.test", "b@y.test>\r\nRCPT TO:<c@z.test" },
	{ "rcpt-lf", "a@x.test", "b@y.test\nDATA" },
	{ "from-cr", "a@x.test\rRSET", "b@y.test" },
	{ "from-space", "a@x.test SIZE=1", "b@y.test" },
	{ "rcpt-brackets", "a@x.test", "<b@y.test>" },
	{ "rcpt-empty", "a@x.test", "" },
	{ "rcpt-del", "a@x.test", "b@y.test\x7f" },
	{ "rcpt-long", "a@x.test",
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb@y.test" },
};

/* Addresses that would smuggle a command are refused before any byte is
 * written: the server sees no connection. */
static void
test_injection(gconstpointer data)
{
	const InjectionCase *c = data;
	Session s;

	session_start(&s, NULL, 10, NULL);
	mr_relay_send(s.relay, c->from, c->rcpt, s.msg, &s.res);
	assert_result(&s.res, MR_RELAY_PERMFAIL, 0, "invalid address");
	g_assert_false(mr_relay_connected(s.relay));
	g_assert_cmpint(fake_connections(s.fake), ==, 0);
	g_autofree char *log = session_end(&s);
}

/* A cancelled relay sends nothing: TEMPFAIL at once. */
static void
test_cancelled(void)
{
	g_autoptr(GCancellable) cancel = g_cancellable_new();
	Session s;

	session_start(&s, NULL, 10, cancel);
	g_cancellable_cancel(cancel);
	session_send(&s, "b@y.test", MR_RELAY_TEMPFAIL, 0, "");
	g_assert_cmpstr(s.res.reply, !=, "");
	g_assert_false(mr_relay_connected(s.relay));
	g_autofree char *log = session_end(&s);
	g_assert_null(strstr(log, ">MAIL"));
}

/* Nobody listens. */
static void
test_refused(void)
{
	Session s;
	g_autofree char *what = NULL;

	session_start(&s, NULL, 10, NULL);
	g_free(fake_stop(s.fake)); /* the port is free again */
	s.fake = fake_start(NULL); /* for session_end(), on another port */
	what = g_strdup_printf("connect to 127.0.0.1:%d: ", s.remote.port);
	session_send(&s, "b@y.test", MR_RELAY_TEMPFAIL, 0, what);
	g_autofree char *log = session_end(&s);
}

/* --- the test relay of the integration tests (aiosmtpd) -------------------------------- */

#define SERVER_PYTHON "/usr/bin/python3"

typedef struct {
	char *dir, *cert, *key;
	GPid pid;
	int port;
} Relay;

static gboolean
run_quietly(const char *const *argv)
{
	int status = 0;

	return g_spawn_sync(NULL, (char **)argv, NULL,
			    G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
				    G_SPAWN_STDERR_TO_DEV_NULL,
			    NULL, NULL, NULL, NULL, &status, NULL) &&
	       g_spawn_check_wait_status(status, NULL);
}

/* Reads the port the server prints, within 30 s; 0 when it does not. */
static int
read_port(int fd)
{
	char line[16] = { 0 };
	gsize n = 0;
	gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

	while (n < sizeof(line) - 1 && (n == 0 || line[n - 1] != '\n')) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		gint64 left = (deadline - g_get_monotonic_time()) / 1000;

		if (left <= 0 || poll(&p, 1, (int)left) != 1 || read(fd, line + n, 1) != 1)
			return 0;
		n++;
	}
	return atoi(line);
}

/* Starts mrrelay.py --serve with STARTTLS (a self-signed certificate for
 * 127.0.0.1, made here) and AUTH as mailroom/PASSWORD, @exclude (nullable)
 * not offered, PIPELINING announced when @pipelining (aiosmtpd does not by
 * itself).  Returns FALSE (the test skipped) when SERVER_PYTHON has no
 * aiosmtpd or there is no openssl. */
static gboolean
relay_start(Relay *rr, const char *exclude, gboolean pipelining)
{
	const char *const probe[] = { SERVER_PYTHON, "-c", "import aiosmtpd", NULL };
	g_autoptr(GError) error = NULL;
	g_autofree char *script = NULL;
	g_autofree char *parent = g_strdup_printf("%d", (int)getpid());
	const char *data = g_getenv("MR_TEST_DATA");
	int out = -1;

	memset(rr, 0, sizeof(*rr));
	if (data == NULL || !run_quietly(probe)) {
		g_test_skip(SERVER_PYTHON " cannot import aiosmtpd (or MR_TEST_DATA is not set)");
		return FALSE;
	}
	script = g_build_filename(data, "..", "integration", "mrrelay.py", NULL);
	rr->dir = g_dir_make_tmp("mr-relay-XXXXXX", &error);
	g_assert_no_error(error);
	rr->cert = g_build_filename(rr->dir, "cert.pem", NULL);
	rr->key = g_build_filename(rr->dir, "key.pem", NULL);
	{
		const char *const openssl[] = { "openssl", "req", "-x509", "-newkey", "rsa:2048",
						"-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
						"-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
						rr->key, "-out", rr->cert, NULL };

		if (!run_quietly(openssl)) {
			g_test_skip("openssl cannot make a certificate");
			return FALSE;
		}
	}
	{
		const char *argv[] = { SERVER_PYTHON, "-I", script, "--serve", "--dir", rr->dir,
				       "--parent", parent, "--tls", rr->cert, rr->key,
				       "--auth", "mailroom", PASSWORD, NULL, NULL, NULL, NULL };
		guint n = 14;

		if (pipelining)
			argv[n++] = "--pipelining";
		if (exclude != NULL) {
			argv[n++] = "--auth-exclude";
			argv[n++] = exclude;
		}

		g_assert_true(g_spawn_async_with_pipes(NULL, (char **)argv, NULL,
						       G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &rr->pid,
						       NULL, &out, NULL, &error));
		g_assert_no_error(error);
	}
	rr->port = read_port(out);
	close(out);
	g_assert_cmpint(rr->port, >, 0);
	return TRUE;
}

static void
relay_stop(Relay *rr)
{
	if (rr->pid > 0) {
		kill(rr->pid, SIGTERM);
		waitpid(rr->pid, NULL, 0);
		g_spawn_close_pid(rr->pid);
	}
	if (rr->dir != NULL) {
		const char *const rm[] = { "rm", "-rf", rr->dir, NULL };

		g_assert_true(run_quietly(rm));
	}
	g_free(rr->dir);
	g_free(rr->cert);
	g_free(rr->key);
}

static int
compare_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The messages the relay stored, oldest first: each one's message.eml. */
static GPtrArray *
relay_messages(const Relay *rr)
{
	g_autofree char *top = g_build_filename(rr->dir, "messages", NULL);
	g_autoptr(GDir) dir = g_dir_open(top, 0, NULL);
	g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
	GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
	const char *name;

	while (dir != NULL && (name = g_dir_read_name(dir)) != NULL)
		if (name[0] != '.')
			g_ptr_array_add(names, g_strdup(name));
	g_ptr_array_sort(names, compare_names);
	for (guint i = 0; i < names->len; i++) {
		g_autofree char *path =
			g_build_filename(top, g_ptr_array_index(names, i), "message.eml", NULL);
		char *text = NULL;

		g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
		g_ptr_array_add(out, text);
	}
	return out;
}

static void
relay_remote(MrRemote *rm, const Relay *rr)
{
	remote_init(rm, rr->port, 10);
	rm->tls = MR_REMOTE_TLS_STARTTLS;
	rm->tls_ca_file = g_strdup(rr->cert);
	rm->user = g_strdup("mailroom");
	rm->password_env = g_strdup(PASSWORD_ENV);
}

typedef struct {
	const char *exclude; /* (nullable): the mechanism not offered */
	gboolean pipelining; /* announced */
} RealCase;

static const RealCase real_plain = { NULL, FALSE };
static const RealCase real_login = { "PLAIN", FALSE };
static const RealCase real_pipelining = { NULL, TRUE };

/* STARTTLS (the certificate verified against tls_ca_file), AUTH PLAIN or
 * LOGIN, two mails on one connection, pipelined or not (@data: a
 * RealCase). */
static void
test_real_relay(gconstpointer data)
{
	const RealCase *c = data;
	Relay rr;
	MrRemote rm;
	MrRelay *r;
	MrRelayResult res = { 0 };
	g_autoptr(GBytes) msg = message_bytes();
	g_autoptr(GPtrArray) stored = NULL;

	if (!relay_start(&rr, c->exclude, c->pipelining)) {
		relay_stop(&rr);
		return;
	}
	relay_remote(&rm, &rr);
	r = mr_relay_new(&rm, "relay.test", NULL);
	for (int i = 0; i < 2; i++) {
		mr_relay_send(r, "a@x.test", "b@y.test", msg, &res);
		assert_result(&res, MR_RELAY_SENT, 250, "250 2.0.0 Ok: queued as ");
		g_assert_true(mr_relay_connected(r));
	}
	mr_relay_free(r);
	stored = relay_messages(&rr);
	g_assert_cmpuint(stored->len, ==, 2);
	g_assert_nonnull(strstr(g_ptr_array_index(stored, 0), "Subject: relay test\r\n"));
	g_assert_true(g_str_has_suffix(g_ptr_array_index(stored, 1), "\r\n\r\nHello.\r\n"));
	mr_relay_result_clear(&res);
	mr_remote_clear(&rm);
	relay_stop(&rr);
}

/* A wrong password: TEMPFAIL with the relay's reply; a recipient the
 * control file refuses: its reply, and the next mail goes on the same
 * connection (pipelined: after aiosmtpd's 503 to DATA) (@data non-NULL:
 * PIPELINING announced). */
static void
test_real_refusals(gconstpointer data)
{
	Relay rr;
	MrRemote rm;
	MrRelay *r;
	MrRelayResult res = { 0 };
	g_autoptr(GBytes) msg = message_bytes();
	g_autofree char *control = NULL;

	if (!relay_start(&rr, NULL, data != NULL)) {
		relay_stop(&rr);
		return;
	}
	relay_remote(&rm, &rr);
	g_free(rm.user);
	rm.user = g_strdup("intruder");
	r = mr_relay_new(&rm, "relay.test", NULL);
	mr_relay_send(r, "a@x.test", "b@y.test", msg, &res);
	assert_result(&res, MR_RELAY_TEMPFAIL, 535, "535 5.7.8");
	g_assert_false(mr_relay_connected(r));
	mr_relay_free(r);

	g_free(rm.user);
	rm.user = g_strdup("mailroom");
	control = g_build_filename(rr.dir, "control.json", NULL);
	g_assert_true(g_file_set_contents(
		control, "{\"mode\": \"ok\", \"reply_rcpt\": {\"temp\": \"451 4.3.0 try later\"}}",
		-1, NULL));
	r = mr_relay_new(&rm, "relay.test", NULL);
	mr_relay_send(r, "a@x.test", "temp1@y.test", msg, &res);
	assert_result(&res, MR_RELAY_TEMPFAIL, 451, "451 4.3.0 try later");
	mr_relay_send(r, "a@x.test", "b@y.test", msg, &res);
	assert_result(&res, MR_RELAY_SENT, 250, "250 2.0.0 Ok");
	g_assert_true(mr_relay_connected(r));
	mr_relay_free(r);
	g_autoptr(GPtrArray) stored = relay_messages(&rr);
	g_assert_cmpuint(stored->len, ==, 1);
	mr_relay_result_clear(&res);
	mr_remote_clear(&rm);
	relay_stop(&rr);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	/* before any thread: the password, and GIO without the modules that
	 * leave threads running at exit (the proxy resolver libproxy, which
	 * every connect asks, and the dconf settings it reads), which
	 * valgrind counts as "possibly lost" */
	g_setenv(PASSWORD_ENV, PASSWORD, TRUE);
	g_setenv("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
	g_setenv("GSETTINGS_BACKEND", "memory", TRUE);
	for (guint i = 0; i < G_N_ELEMENTS(verdict_cases); i++) {
		g_autofree char *path =
			g_strdup_printf("/mailroom/net/relay/verdict/%s", verdict_cases[i].name);

		g_test_add_data_func(path, &verdict_cases[i], test_verdict);
	}
	for (guint i = 0; i < G_N_ELEMENTS(verdict_cases); i++) {
		g_autofree char *path = g_strdup_printf("/mailroom/net/relay/verdict-serial/%s",
							verdict_cases[i].name);

		g_test_add_data_func(path, &verdict_cases[i], test_verdict_serial);
	}
	for (guint i = 0; i < G_N_ELEMENTS(group_cases); i++) {
		g_autofree char *path =
			g_strdup_printf("/mailroom/net/relay/pipelining/%s", group_cases[i].name);

		g_test_add_data_func(path, &group_cases[i], test_verdict);
	}
	g_test_add_data_func("/mailroom/net/relay/pipelining/one-write", "", test_trace);
	g_test_add_data_func("/mailroom/net/relay/pipelining/serial", NULL, test_trace);
	g_test_add_data_func("/mailroom/net/relay/pipelining/mail-line", "", test_mail_line);
	g_test_add_data_func("/mailroom/net/relay/pipelining/mail-line-serial", NULL, test_mail_line);
	for (guint i = 0; i < G_N_ELEMENTS(reconnect_cases); i++) {
		g_autofree char *path =
			g_strdup_printf("/mailroom/net/relay/reconnect/%s", reconnect_cases[i].name);

		g_test_add_data_func(path, &reconnect_cases[i], test_reconnect);
	}
	for (guint i = 0; i < G_N_ELEMENTS(injection_cases); i++) {
		g_autofree char *path =
			g_strdup_printf("/mailroom/net/relay/injection/%s", injection_cases[i].name);

		g_test_add_data_func(path, &injection_cases[i], test_injection);
	}
	g_test_add_func("/mailroom/net/relay/reuse", test_reuse);
	g_test_add_func("/mailroom/net/relay/rset", test_rset);
	g_test_add_func("/mailroom/net/relay/envelope", test_envelope);
	g_test_add_func("/mailroom/net/relay/cancelled", test_cancelled);
	g_test_add_func("/mailroom/net/relay/refused", test_refused);
	g_test_add_data_func("/mailroom/net/relay/aiosmtpd/plain", &real_plain, test_real_relay);
	g_test_add_data_func("/mailroom/net/relay/aiosmtpd/login", &real_login, test_real_relay);
	g_test_add_data_func("/mailroom/net/relay/aiosmtpd/pipelining", &real_pipelining,
			     test_real_relay);
	g_test_add_data_func("/mailroom/net/relay/aiosmtpd/refusals", NULL, test_real_refusals);
	g_test_add_data_func("/mailroom/net/relay/aiosmtpd/refusals-pipelining", "",
			     test_real_refusals);
	return g_test_run();
}
