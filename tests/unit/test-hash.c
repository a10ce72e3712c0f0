/* test-hash.c - SHA-256 (Nettle) gives GChecksum's digests: the content
 * keys and attachment addresses of databases written before stay valid. */
#include <string.h>

#include "mailroom/mr-hash.h"
#include "mailroom/mr-ingest.h"

static void
test_vectors(void)
{
	g_autofree char *empty = mr_sha256_hex("", 0);
	g_autofree char *abc = mr_sha256_hex("abc", 3);

	g_assert_cmpstr(empty, ==, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	g_assert_cmpstr(abc, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* Every length up to a few blocks, fed whole and in pieces of every size. */
static void
test_like_gchecksum(void)
{
	g_autoptr(GRand) rand = g_rand_new_with_seed(42);
	guint8 buf[700];

	for (gsize i = 0; i < sizeof buf; i++)
		buf[i] = (guint8)g_rand_int(rand);
	for (gsize len = 0; len <= sizeof buf; len += 7) {
		g_autofree char *want = g_compute_checksum_for_data(G_CHECKSUM_SHA256, buf, len);
		g_autofree char *whole = mr_sha256_hex(buf, len);
		gsize step = 1 + len % 97;
		MrSha256 *h = mr_sha256_new();
		g_autofree char *pieces = NULL;

		for (gsize pos = 0; pos < len; pos += step)
			mr_sha256_update(h, buf + pos, MIN(step, len - pos));
		pieces = mr_sha256_finish_hex(h);
		g_assert_cmpstr(whole, ==, want);
		g_assert_cmpstr(pieces, ==, want);
	}
}

/* The content key: the digest of the message with CR LF as LF. */
static void
test_content_key(void)
{
	static const char crlf[] = "From: a@b.test\r\nSubject: x\r\n\r\nbody\rline\r\n";
	static const char lf[] = "From: a@b.test\nSubject: x\n\nbody\rline\n";
	g_autoptr(GBytes) raw = g_bytes_new_static(crlf, strlen(crlf));
	g_autofree char *key = mr_ingest_content_key(raw);
	g_autofree char *want = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)lf,
							    strlen(lf));

	g_assert_cmpstr(key, ==, want);
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/mailroom/core/hash/vectors", test_vectors);
	g_test_add_func("/mailroom/core/hash/like-gchecksum", test_like_gchecksum);
	g_test_add_func("/mailroom/core/hash/content-key", test_content_key);
	return g_test_run();
}
