/* mr-verp.c - VERP envelope senders: format, parse, and their tokens.
 *
 * Core.  No state.  The token is the only secret: it comes from the
 * kernel's random source (GLib's g_random is a Mersenne Twister whose
 * state a few outputs reveal, and g_uuid_string_random() promises no
 * cryptographic quality), and tokens are compared in constant time. */
#define G_LOG_DOMAIN "mailroom-core"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "mailroom/mr-address.h"
#include "mailroom/mr-verp.h"

/* Fills @buf with @len random bytes from getrandom(2) or, on a kernel
 * without it, /dev/urandom.  Returns FALSE when neither answers. */
static gboolean
verp_random(guint8 *buf, gsize len)
{
	gsize got = 0;
	int fd;

	while (got < len) {
		ssize_t n = getrandom(buf + got, len - got, 0);

		if (n > 0)
			got += (gsize)n;
		else if (n < 0 && errno != EINTR)
			break;
	}
	if (got == len)
		return TRUE;
	if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
		return FALSE;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n > 0)
			got += (gsize)n;
		else if (n == 0 || errno != EINTR)
			break;
	}
	close(fd);
	return got == len;
}

char *
mr_verp_token_new(void)
{
	static const char hex[] = "0123456789abcdef";
	guint8 bytes[MR_VERP_TOKEN_LEN / 2];
	char *token = g_malloc(MR_VERP_TOKEN_LEN + 1);

	if (!verp_random(bytes, sizeof(bytes))) {
		/* As g_malloc() does without memory: a mail with a guessable
		 * token must not go out. */
		g_critical("no random source: getrandom(2) and /dev/urandom failed: %s", g_strerror(errno));
		g_abort();
	}
	for (gsize i = 0; i < sizeof(bytes); i++) {
		token[2 * i] = hex[bytes[i] >> 4];
		token[2 * i + 1] = hex[bytes[i] & 0x0f];
	}
	token[MR_VERP_TOKEN_LEN] = '\0';
	memset(bytes, 0, sizeof(bytes));
	return token;
}

static gboolean
verp_is_lower_hex(char c)
{
	return g_ascii_isdigit(c) || (c >= 'a' && c <= 'f');
}

/* Returns the number of lower-case hex digits that begin @s. */
static gsize
verp_hex_span(const char *s)
{
	gsize n = 0;

	while (verp_is_lower_hex(s[n]))
		n++;
	return n;
}

gboolean
mr_verp_token_valid(const char *token)
{
	gsize n;

	if (token == NULL)
		return FALSE;
	n = verp_hex_span(token);
	return token[n] == '\0' && n >= MR_VERP_TOKEN_MIN && n <= MR_VERP_TOKEN_MAX;
}

gboolean
mr_verp_token_equal(const char *a, const char *b)
{
	gsize la, lb;
	guint diff;

	if (a == NULL || b == NULL)
		return FALSE;
	la = strlen(a);
	lb = strlen(b);
	diff = la != lb;
	for (gsize i = 0; i < la; i++)
		diff |= (guint)(guchar)a[i] ^ (guint)(guchar)(i < lb ? b[i] : 0);
	return diff == 0;
}

/* Returns TRUE when @s holds no white space and no control characters. */
static gboolean
verp_no_blanks(const char *s)
{
	for (; *s != '\0'; s++)
		if ((guchar)*s <= ' ' || *s == '\x7f')
			return FALSE;
	return TRUE;
}

/* Returns: the '@' of @address when it is LOCAL@DOMAIN with a single '@',
 * both parts non-empty, without blanks; else NULL. */
static const char *
verp_split(const char *address)
{
	const char *at = strchr(address, '@');

	if (at == NULL || at == address || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
	    !verp_no_blanks(address))
		return NULL;
	return at;
}

char *
mr_verp_format(const char *bounce_address, gint64 id, const char *token)
{
	const char *at;

	g_return_val_if_fail(bounce_address != NULL, NULL);
	g_return_val_if_fail(id > 0, NULL);
	g_return_val_if_fail(mr_verp_token_valid(token), NULL);

	if ((at = verp_split(bounce_address)) == NULL)
		return NULL;
	return g_strdup_printf("%.*s+%" G_GINT64_FORMAT "-%s%s", (int)(at - bounce_address), bounce_address,
			       id, token, at);
}

gboolean
mr_verp_parse(const char *address, const char *bounce_address, gint64 *id_out, char **token_out)
{
	g_autofree char *addr = NULL;
	g_autofree char *bounce = NULL;
	const char *bounce_at, *p;
	gsize local_len, n;
	gint64 id = 0;

	g_return_val_if_fail(bounce_address != NULL, FALSE);

	if (address == NULL || !verp_no_blanks(address))
		return FALSE;
	addr = mr_address_normalise(address);
	bounce = mr_address_normalise(bounce_address);
	if (verp_split(addr) == NULL || (bounce_at = verp_split(bounce)) == NULL)
		return FALSE;
	local_len = (gsize)(bounce_at - bounce);
	if (strncmp(addr, bounce, local_len) != 0 || addr[local_len] != '+')
		return FALSE;
	p = addr + local_len + 1;
	if (!g_ascii_isdigit(*p))
		return FALSE;
	for (; g_ascii_isdigit(*p); p++) {
		int digit = *p - '0';

		if (id > (G_MAXINT64 - digit) / 10)
			return FALSE;
		id = id * 10 + digit;
	}
	if (id == 0 || *p++ != '-')
		return FALSE;
	n = verp_hex_span(p);
	if (n < MR_VERP_TOKEN_MIN || n > MR_VERP_TOKEN_MAX || strcmp(p + n, bounce_at) != 0)
		return FALSE;
	if (id_out != NULL)
		*id_out = id;
	if (token_out != NULL)
		*token_out = g_strndup(p, n);
	return TRUE;
}
