/* mr-config-section.c - reading one group of mailroom.conf (see
 * mr-config-section.h): its strings, integers and choices, and refusals
 * that name FILE:LINE and SECTION.KEY.
 *
 * Core module: used by the loader, by the remote server's keys and by the
 * sections parsed above core. */
#define G_LOG_DOMAIN "mailroom-config"

#include "mailroom/mr-config-section.h"
#include "mailroom/mr-error.h"

gboolean
mr_config_invalid(GError **error, const char *path, const config_setting_t *setting,
		  const char *key, const char *what)
{
	int line = setting != NULL ? config_setting_source_line(setting) : 0;

	if (line > 0)
		g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_INVALID, "%s:%d: %s: %s", path,
			    line, key, what);
	else /* a missing key has no line */
		g_set_error(error, MR_CONFIG_ERROR, MR_CONFIG_ERROR_INVALID, "%s: %s: %s", path, key,
			    what);
	return FALSE;
}

gboolean
mr_config_member_string(config_setting_t *group, const char *path, const char *section,
			const char *key, const char *def, char **out, GError **error)
{
	config_setting_t *s = config_setting_get_member(group, key);
	g_autofree char *full = g_strconcat(section, ".", key, NULL);

	if (s == NULL) {
		*out = g_strdup(def);
		return TRUE;
	}
	if (config_setting_type(s) != CONFIG_TYPE_STRING || *config_setting_get_string(s) == '\0')
		return mr_config_invalid(error, path, s, full, "must be a non-empty string");
	*out = g_strdup(config_setting_get_string(s));
	return TRUE;
}

gboolean
mr_config_member_int(config_setting_t *group, const char *path, const char *section,
		     const char *key, int def, int min, int max, int *out, GError **error)
{
	config_setting_t *s = config_setting_get_member(group, key);
	g_autofree char *full = g_strconcat(section, ".", key, NULL);
	long long v;

	*out = def;
	if (s == NULL)
		return TRUE;
	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
		return mr_config_invalid(error, path, s, full, "must be an integer");
	v = config_setting_get_int64(s);
	if (v < min || v > max) {
		g_autofree char *range = g_strdup_printf("must be between %d and %d", min, max);

		return mr_config_invalid(error, path, s, full, range);
	}
	*out = (int)v;
	return TRUE;
}

int
mr_config_pick(const char *text, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (g_ascii_strcasecmp(text, names[i]) == 0)
			return i;
	return -1;
}
