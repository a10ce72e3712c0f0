/* mr-hash.c - SHA-256 with Nettle. */
#include <nettle/sha2.h>

#include "mailroom/mr-hash.h"

struct _MrSha256 {
	struct sha256_ctx ctx;
};

MrSha256 *
mr_sha256_new(void)
{
	MrSha256 *h = g_new(MrSha256, 1);

	sha256_init(&h->ctx);
	return h;
}

void
mr_sha256_update(MrSha256 *h, const void *data, gsize len)
{
	if (len > 0)
		sha256_update(&h->ctx, len, data);
}

char *
mr_sha256_finish_hex(MrSha256 *h)
{
	static const char hex[] = "0123456789abcdef";
	guint8 digest[SHA256_DIGEST_SIZE];
	char *out = g_malloc(2 * sizeof digest + 1);

	sha256_digest(&h->ctx, sizeof digest, digest);
	mr_sha256_free(h);
	for (gsize i = 0; i < sizeof digest; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 0xf];
	}
	out[2 * sizeof digest] = '\0';
	return out;
}

void
mr_sha256_free(MrSha256 *h)
{
	g_free(h);
}

char *
mr_sha256_hex(const void *data, gsize len)
{
	MrSha256 *h = mr_sha256_new();

	mr_sha256_update(h, data, len);
	return mr_sha256_finish_hex(h);
}
