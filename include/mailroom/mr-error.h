/* mr-error.h - one GError domain per stage of the mail path.
 *
 * Codes are small positive enums per domain; callers match them with
 * g_error_matches().  sysexits(3) codes used by the programs live here too so
 * that every stage maps its failures the same way. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* sysexits(3), spelled out so that no file depends on <sysexits.h>. */
#define MR_EX_OK 0
#define MR_EX_USAGE 64
#define MR_EX_DATAERR 65
#define MR_EX_NOUSER 67
#define MR_EX_NOINPUT 66
#define MR_EX_UNAVAILABLE 69
#define MR_EX_NOPERM 77
#define MR_EX_SOFTWARE 70
#define MR_EX_IOERR 74
#define MR_EX_TEMPFAIL 75
#define MR_EX_CONFIG 78

#define MR_CONFIG_ERROR (mr_config_error_quark())
#define MR_PARSE_ERROR (mr_parse_error_quark())
#define MR_ROUTE_ERROR (mr_route_error_quark())
#define MR_STORE_ERROR (mr_store_error_quark())
#define MR_IMAP_ERROR (mr_imap_error_quark())

typedef enum {
	MR_CONFIG_ERROR_IO,      /* the file cannot be read */
	MR_CONFIG_ERROR_SYNTAX,  /* libconfig refused it */
	MR_CONFIG_ERROR_INVALID, /* a key has a bad type or value */
} MrConfigError;

typedef enum {
	MR_PARSE_ERROR_EMPTY, /* no bytes at all */
} MrParseError;

typedef enum {
	MR_ROUTE_ERROR_NO_ADDRESS, /* envelope recipient is no mailroom address */
} MrRouteError;

typedef enum {
	MR_STORE_ERROR_OPEN,      /* the database cannot be opened or migrated */
	MR_STORE_ERROR_BUSY,      /* locked too long: temporary, retry later */
	MR_STORE_ERROR_FAILED,    /* any other database failure (either engine) */
	MR_STORE_ERROR_NOT_FOUND, /* no such record */
	MR_STORE_ERROR_INVALID,   /* the request contradicts the data */
	MR_STORE_ERROR_CONSTRAINT, /* a constraint refused a row */
} MrStoreError;

GQuark mr_config_error_quark(void);
GQuark mr_parse_error_quark(void);
GQuark mr_route_error_quark(void);
typedef enum {
	MR_IMAP_ERROR_CONNECT,  /* no connection (refused, unreachable, lost) */
	MR_IMAP_ERROR_TLS,      /* the TLS handshake or the certificate failed */
	MR_IMAP_ERROR_AUTH,     /* the login was refused (or no credentials) */
	MR_IMAP_ERROR_PROTOCOL, /* the server answered something unusable */
	MR_IMAP_ERROR_NO_BODY,  /* the server sent no body for a message it has */
} MrImapError;

GQuark mr_store_error_quark(void);
GQuark mr_imap_error_quark(void);

#define MR_TOKEN_ERROR (mr_token_error_quark())

typedef enum {
	MR_TOKEN_ERROR_SPAWN,   /* the command cannot be started */
	MR_TOKEN_ERROR_FAILED,  /* it failed (exit status, signal, no token) */
	MR_TOKEN_ERROR_TIMEOUT, /* no answer in time */
	MR_TOKEN_ERROR_LIMIT,   /* it wrote more than a token's worth */
} MrTokenError;

GQuark mr_token_error_quark(void);

#define MR_NET_ERROR (mr_net_error_quark())

typedef enum {
	MR_NET_ERROR_CONNECT, /* no connection (refused, unreachable) */
	MR_NET_ERROR_TLS,     /* the TLS handshake or the certificate failed */
} MrNetError;

GQuark mr_net_error_quark(void);

G_END_DECLS
