/* mr-hash.h - SHA-256 of message bytes, as lower-case hex.
 *
 * Core.  The content key of every message and the address of every
 * attachment are SHA-256 digests; this is where they are computed, with
 * Nettle (GnuTLS's crypto library: its SHA-256 uses the CPU's SHA
 * instructions, about six times GLib's GChecksum on a 4 KB message).  */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _MrSha256 MrSha256;

/* Returns: (transfer full): a new digest in progress. */
MrSha256 *mr_sha256_new(void);

/* Adds @len bytes at @data to @h. */
void mr_sha256_update(MrSha256 *h, const void *data, gsize len);

/* Frees @h and returns: (transfer full): its digest, 64 hex digits. */
char *mr_sha256_finish_hex(MrSha256 *h);

/* Frees @h unfinished (NULL is fine). */
void mr_sha256_free(MrSha256 *h);

/* Returns: (transfer full): the digest of @len bytes at @data, in hex. */
char *mr_sha256_hex(const void *data, gsize len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(MrSha256, mr_sha256_free)

G_END_DECLS
