/* mr-crm-private.h - what the files of src/crm/ share, and nobody else. */
#pragma once

#include "mailroom/mr-crm.h"

/* Fails with MR_CRM_ERROR_NOT_FOUND and the message @fmt -- unless a
 * look-up failed since the last check (mr_store_check()), in which case
 * "not found" may be false: that error instead. */
void mr_crm_not_found(MrStore *store, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
