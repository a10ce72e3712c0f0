/* mr-row.h - stage 4: the declaration of a row struct of the store, field
 * by field (Dovecot's lib-sql sql_field_def): its name, its type and
 * where it is in the struct.
 *
 * The store reads a statement's columns into a struct by its declaration
 * and frees it by it; the CLI makes JSON of it by the same declaration
 * (src/ctl/).  Adding a kind of row is its struct, its declaration and
 * its SQL. */
#pragma once

#include <glib.h>

#include "mailroom/mr-record.h"

G_BEGIN_DECLS

/* The types of a field: the C type of the member, what it is read from
 * (one column, unless said otherwise) and what it is in JSON. */
typedef enum {
	MR_ROW_TEXT,        /* char *, NULL for NULL; a string or null */
	MR_ROW_INT64,       /* gint64, 0 for NULL; a number */
	MR_ROW_ID,          /* gint64, a row id, 0 for NULL: none; a number,
	                       null for 0 */
	MR_ROW_AMOUNT,      /* gint64, -1 for NULL: none (where 0 is a value);
	                       a number, null when negative */
	MR_ROW_BOOL,        /* gboolean, from a number; 0 or 1 (the CLI's
	                       contract keeps numbers) */
	MR_ROW_FLAG,        /* gboolean, from a number; true or false (the
	                       kinds of row that came with JSON booleans:
	                       rules) */
	MR_ROW_WORDS,       /* GStrv (empty for NULL), from words separated by
	                       spaces; the words joined by spaces, null for none */
	MR_ROW_LINES,       /* GStrv (empty for NULL), from lines separated by
	                       newlines; an array of strings */
	MR_ROW_RECORD_ID,   /* gint64, the id of a record of the field's kind,
	                       0 for NULL; its display id ("TKT-3"), null for 0 */
	MR_ROW_RECORD_REF,  /* MrRecordRef, from two columns: the kind's name
	                       and the id; its display id, null for none */
	MR_ROW_RECORD_REFS, /* GArray of MrRecordRef, from words "kind:id",
	                       ordered by kind name, then id; an array of
	                       display ids */
	MR_ROW_PART,        /* a struct of the field's declaration, embedded:
	                       its fields, read and shown in its place */
} MrRowType;

typedef struct _MrRowDesc MrRowDesc;

/* One field of a row struct. */
typedef struct {
	const char *name;  /* its name in JSON; NULL: read and freed, not shown */
	MrRowType type;
	gsize offset;      /* of the member in the struct */
	MrRecordKind kind; /* MR_ROW_RECORD_ID: the kind of the record */
	const MrRowDesc *part; /* MR_ROW_PART: the declaration of the part */
} MrRowField;

/* A row struct: what it is, its size and its fields, in the order of the
 * columns it is read from and of its JSON members. */
struct _MrRowDesc {
	const char *kind;  /* "ticket", for messages */
	gsize size;
	const MrRowField *fields;
	guint n_fields;
	GDestroyNotify free; /* frees a struct of this kind (for arrays of rows) */
};

/* The C type of the members of each MrRowType, checked at compile time by
 * MR_ROW_FIELD(): a mismatch is an array of negative size. */
#define MR_ROW_TYPE_CHECK(T, member, type)                                         \
	(0 * sizeof(char[_Generic(((T *)0)->member,                                \
		char *: (type) == MR_ROW_TEXT,                                      \
		gint64: (type) == MR_ROW_INT64 || (type) == MR_ROW_ID ||            \
			(type) == MR_ROW_AMOUNT || (type) == MR_ROW_RECORD_ID,     \
		gboolean: (type) == MR_ROW_BOOL || (type) == MR_ROW_FLAG,           \
		GStrv: (type) == MR_ROW_WORDS || (type) == MR_ROW_LINES,            \
		MrRecordRef: (type) == MR_ROW_RECORD_REF,                           \
		GArray *: (type) == MR_ROW_RECORD_REFS,                             \
		default: 0) ? 1 : -1]))

/* The field @member of struct @T, named @name (NULL: not shown), of
 * @type.  MR_ROW_RECORD_FIELD: a record id of kind @kind.
 * MR_ROW_PART_FIELD: the struct @member, of declaration @desc. */
#define MR_ROW_FIELD(T, member, field_name, field_type)                            \
	{ .name = (field_name), .type = (field_type),                               \
	  .offset = G_STRUCT_OFFSET(T, member) + MR_ROW_TYPE_CHECK(T, member, field_type) }
#define MR_ROW_RECORD_FIELD(T, member, field_name, record_kind)                    \
	{ .name = (field_name), .type = MR_ROW_RECORD_ID, .kind = (record_kind),    \
	  .offset = G_STRUCT_OFFSET(T, member) +                                    \
		    MR_ROW_TYPE_CHECK(T, member, MR_ROW_RECORD_ID) }
#define MR_ROW_PART_FIELD(T, member, desc)                                         \
	{ .type = MR_ROW_PART, .offset = G_STRUCT_OFFSET(T, member), .part = &(desc) }

/* The declaration @desc of the row struct @T, freed by @free_fn (with its
 * g_autoptr cleanup). */
#define MR_ROW_DECLARE(T, desc, free_fn)                                           \
	extern const MrRowDesc desc;                                               \
	void free_fn(T *row);                                                      \
	G_DEFINE_AUTOPTR_CLEANUP_FUNC(T, free_fn)

/* The declaration of @T named @kind, of the fields @fields (an array),
 * freed by @free_fn. */
#define MR_ROW_DESC(T, row_kind, row_fields, free_fn)                             \
	{ .kind = (row_kind), .size = sizeof(T), .fields = (row_fields),            \
	  .n_fields = G_N_ELEMENTS(row_fields), .free = (GDestroyNotify)(free_fn) }

/* Defines @desc (MR_ROW_DESC()) and its @free_fn, which frees by it
 * (mr_row_free()): for the structs without a part of their own to free. */
#define MR_ROW_DEFINE(T, desc, kind, fields, free_fn)                              \
	const MrRowDesc desc = MR_ROW_DESC(T, kind, fields, free_fn);              \
	void free_fn(T *row)                                                       \
	{                                                                          \
		mr_row_free(&desc, row);                                           \
	}

/* Frees what the fields of @row own (its text, words and references) and
 * zeroes them; not the struct itself. */
void mr_row_clear(const MrRowDesc *desc, gpointer row);

/* Frees @row (NULL-safe): mr_row_clear(), then the struct. */
void mr_row_free(const MrRowDesc *desc, gpointer row);

G_END_DECLS
