/* fuzz-parse-route.c - libFuzzer target: hostile bytes through the whole
 * parse-and-route path, as every door delivers them.
 *
 * Each input is parsed (mr_ingest_item_new), then routed and applied for
 * the three mailroom roles and the bounce address of a mail mailroom sent
 * (its VERP address: the delivery report's parse and checks) inside a
 * transaction on an in-memory store that holds a user, a ticket, an
 * opportunity and that outgoing mail, and rolled back, so that every
 * input meets the same database.  A new ticket queues its acknowledgement
 * (loop protection looks at every input).  Built and run by `make fuzz`
 * (clang, -fsanitize=fuzzer,address,undefined), seeded from tests/data. */
#include <glib.h>
#include <stdint.h>

#include "mailroom/mr-clock.h"
#include "mailroom/mr-crm.h"
#include "mailroom/mr-error.h"
#include "mailroom/mr-ingest.h"
#include "mailroom/mr-outgoing.h"
#include "mailroom/mr-parse.h"
#include "mailroom/mr-store.h"
#include "mailroom/mr-store-outgoing.h"
#include "mailroom/mr-store-party.h"
#include "mailroom/mr-store-record.h"
#include "../unit/mr-test-util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The fuzzer's process state: libFuzzer calls plain functions, so the
 * configuration and store opened once live here. */
static MrConfig *fuzz_cfg;
static MrStore *fuzz_store;

static const char *fuzz_rcpts[] = { "crm@acme.test", "support@acme.test",
				    "sales+lead-1@acme.test", NULL /* the bounce address */ };

static const char fuzz_seed[] = "From: Bob <bob@customer.test>\r\n"
				"To: support@acme.test\r\n"
				"Subject: printer\r\n"
				"Message-ID: <seed-1@customer.test>\r\n\r\n"
				"It is on fire.\r\n";

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	g_autoptr(GError) error = NULL;
	g_autoptr(GBytes) seed = g_bytes_new_static(fuzz_seed, sizeof fuzz_seed - 1);

	/* The unit tests' configuration: the three roles, an in-memory store. */
	fuzz_cfg = mr_test_config(":memory:");
	fuzz_store = mr_store_open(fuzz_cfg, &error);
	if (fuzz_store == NULL)
		g_error("fuzz: store: %s", error->message);
	mr_crm_user_add(fuzz_store, "alice@acme.test", "Alice", NULL);
	/* TKT-1 for bob@customer.test, and a Message-ID to thread on. */
	if (!mr_ingest_deliver(fuzz_cfg, fuzz_store, seed, "support@acme.test", NULL, NULL, &error))
		g_error("fuzz: seed: %s", error->message);
	mr_crm_opp_add(fuzz_cfg, fuzz_store, "Printers", "bob@customer.test", "alice@acme.test", 100, NULL);
	/* a mail sent about TKT-1: its VERP address takes delivery reports */
	{
		MrOutgoingRequest req = { .record = { MR_RECORD_TICKET, 1 }, .subject = "Re: printer",
					  .body = "On its way.", .kind = MR_COMPOSE_AUTO_REPLIED,
					  .need_outbox_id = TRUE };
		MrOutgoingResult out = { 0 };
		g_autofree char *now = mr_clock_now_iso();
		g_autoptr(MrOutboxSent) sent = NULL;

		if (!mr_store_begin(fuzz_store, &error) ||
		    !mr_outgoing_queue(fuzz_store, fuzz_cfg, &req, now, &out, &error) ||
		    !mr_store_commit(fuzz_store, &error))
			g_error("fuzz: outgoing mail: %s", error->message);
		sent = mr_store_outbox_for_bounce(fuzz_store, out.outbox);
		fuzz_rcpts[3] = mr_outgoing_envelope_from(fuzz_cfg, out.outbox, sent->token);
		mr_outgoing_result_clear(&out);
	}
	g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	g_autoptr(GBytes) raw = g_bytes_new_static(data, size);
	g_autoptr(MrIngestItem) item = mr_ingest_item_new(fuzz_cfg, raw);

	if (!mr_store_begin(fuzz_store, NULL))
		g_error("fuzz: BEGIN failed");
	for (guint i = 0; i < G_N_ELEMENTS(fuzz_rcpts); i++) {
		g_autoptr(GError) error = NULL;
		MrDelivery d = { 0 };

		if (!mr_ingest_apply(fuzz_cfg, fuzz_store, item, fuzz_rcpts[i], "env@sender.test", &d,
				     &error) &&
		    !g_error_matches(error, MR_ROUTE_ERROR, MR_ROUTE_ERROR_NO_ADDRESS))
			g_error("fuzz: apply: %s", error->message);
	}
	mr_store_rollback(fuzz_store);
	return 0;
}
