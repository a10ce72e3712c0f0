/* mr-row.c - row structs by their declaration (mr-row.h): read from the
 * current row of a statement, and freed.
 *
 * Store stage.  The columns of a statement follow the fields of the
 * declaration it is read with (mr-store-sql.c); see mr-store-rows.c for
 * the declarations. */
#define G_LOG_DOMAIN "mailroom-store"

#include <string.h>

#include "mr-store-private.h"

/* Returns the pieces of text column @i between @sep, the empty ones left
 * out (NULL for NULL: none). */
static GStrv
col_split(MrSqlStmt *st, int i, const char *sep)
{
	const char *text = mr_sql_column_text(st, i);
	g_autoptr(GStrvBuilder) b = g_strv_builder_new();

	if (text != NULL) {
		g_auto(GStrv) words = g_strsplit(text, sep, -1);

		for (char **w = words; *w != NULL; w++)
			if (**w != '\0')
				g_strv_builder_add(b, *w);
	}
	return g_strv_builder_end(b);
}

/* Returns the words of text column @i (NULL for NULL: no words). */
static GStrv
col_words(MrSqlStmt *st, int i)
{
	return col_split(st, i, " ");
}

static int
compare_refs(gconstpointer a, gconstpointer b)
{
	const MrRecordRef *x = a, *y = b;
	int c = strcmp(mr_record_kind_name(x->kind), mr_record_kind_name(y->kind));

	if (c != 0)
		return c;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Parses the words "kind:id" of text column @i into record references,
 * sorted (the engines concatenate in any order). */
static GArray *
col_refs(MrSqlStmt *st, int i)
{
	g_auto(GStrv) words = col_words(st, i);
	GArray *refs = g_array_new(FALSE, FALSE, sizeof(MrRecordRef));

	for (char **w = words; *w != NULL; w++) {
		char *colon = strchr(*w, ':');
		MrRecordRef ref;

		if (colon == NULL)
			continue;
		*colon = '\0';
		ref.kind = mr_record_kind_from_name(*w);
		ref.id = g_ascii_strtoll(colon + 1, NULL, 10);
		if (ref.kind != MR_RECORD_NONE && ref.id > 0)
			g_array_append_val(refs, ref);
	}
	g_array_sort(refs, compare_refs);
	return refs;
}

int
mr_row_read(const MrRowDesc *desc, gpointer row, MrSqlStmt *st, int col)
{
	for (guint i = 0; i < desc->n_fields; i++) {
		const MrRowField *f = &desc->fields[i];
		gpointer m = G_STRUCT_MEMBER_P(row, f->offset);

		switch (f->type) {
		case MR_ROW_TEXT:
			*(char **)m = g_strdup(mr_sql_column_text(st, col));
			break;
		case MR_ROW_INT64:
		case MR_ROW_ID:
		case MR_ROW_RECORD_ID:
			*(gint64 *)m = mr_sql_column_int64(st, col);
			break;
		case MR_ROW_AMOUNT:
			*(gint64 *)m = st->conn->driver->column_type(st, col) == MR_SQL_TYPE_NULL
					       ? -1
					       : mr_sql_column_int64(st, col);
			break;
		case MR_ROW_BOOL:
		case MR_ROW_FLAG:
			*(gboolean *)m = mr_sql_column_int64(st, col) != 0;
			break;
		case MR_ROW_WORDS:
			*(GStrv *)m = col_words(st, col);
			break;
		case MR_ROW_LINES:
			*(GStrv *)m = col_split(st, col, "\n");
			break;
		case MR_ROW_RECORD_REF: {
			MrRecordRef *ref = m;

			ref->kind = mr_record_kind_from_name(mr_sql_column_text(st, col++));
			ref->id = ref->kind != MR_RECORD_NONE ? mr_sql_column_int64(st, col) : 0;
			break;
		}
		case MR_ROW_RECORD_REFS:
			*(GArray **)m = col_refs(st, col);
			break;
		case MR_ROW_PART:
			col = mr_row_read(f->part, m, st, col);
			continue;
		}
		col++;
	}
	return col;
}

gpointer
mr_row_new(const MrRowDesc *desc, MrSqlStmt *st)
{
	gpointer row = g_malloc0(desc->size);

	mr_row_read(desc, row, st, 0);
	return row;
}

void
mr_row_clear(const MrRowDesc *desc, gpointer row)
{
	for (guint i = 0; i < desc->n_fields; i++) {
		const MrRowField *f = &desc->fields[i];
		gpointer m = G_STRUCT_MEMBER_P(row, f->offset);

		switch (f->type) {
		case MR_ROW_TEXT:
			g_clear_pointer((char **)m, g_free);
			break;
		case MR_ROW_WORDS:
		case MR_ROW_LINES:
			g_clear_pointer((GStrv *)m, g_strfreev);
			break;
		case MR_ROW_RECORD_REFS:
			g_clear_pointer((GArray **)m, g_array_unref);
			break;
		case MR_ROW_PART:
			mr_row_clear(f->part, m);
			break;
		default:
			break;
		}
	}
}

void
mr_row_free(const MrRowDesc *desc, gpointer row)
{
	if (row == NULL)
		return;
	mr_row_clear(desc, row);
	g_free(row);
}

GPtrArray *
mr_store_read_rows(MrSqlStmt *st, const MrRowDesc *desc, GError **error)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(desc->free);
	MrSqlStep rc;

	while ((rc = mr_sql_step(st, error)) == MR_SQL_ROW)
		g_ptr_array_add(rows, mr_row_new(desc, st));
	if (rc != MR_SQL_DONE)
		return NULL;
	return g_steal_pointer(&rows);
}
