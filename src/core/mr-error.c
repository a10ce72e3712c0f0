/* mr-error.c - the GError domains of mailroom (see mr-error.h). */
#include "mailroom/mr-error.h"

G_DEFINE_QUARK(mr-config-error-quark, mr_config_error)
G_DEFINE_QUARK(mr-parse-error-quark, mr_parse_error)
G_DEFINE_QUARK(mr-route-error-quark, mr_route_error)
G_DEFINE_QUARK(mr-store-error-quark, mr_store_error)
G_DEFINE_QUARK(mr-imap-error-quark, mr_imap_error)
G_DEFINE_QUARK(mr-token-error-quark, mr_token_error)
G_DEFINE_QUARK(mr-net-error-quark, mr_net_error)
