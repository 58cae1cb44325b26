/*
 * schema.c: schemas, the part of a model that the host defines: a field definition that mgconn
 * keeps for the host, options that change how the model's operations and init behave, and the
 * indexes that autoIndex builds. Options are checked when the schema is made; the definition's
 * declared types are checked on the model's writes (below).
 */
#include "connection.h"

#include <string.h>
#include <strings.h>

static const char *const schema_options[] = {"collection", "bufferCommands", "bufferTimeoutMS", "autoCreate",
                                             "autoIndex",  "capped",         "collation"};

static int
check_option (const bson_iter_t *it, mgconn_error *error)
{
   const char *key = bson_iter_key (it);
   size_t i;
   for (i = 0; i < sizeof schema_options / sizeof schema_options[0]; i++) {
      if (strcmp (key, schema_options[i]) == 0) {
         break;
      }
   }
   if (i == sizeof schema_options / sizeof schema_options[0]) {
      return mg_fail (error, MGCONN_ERR_OPTION,
                      "Unknown schema option \"%s\": the options are collection, bufferCommands, bufferTimeoutMS, "
                      "autoCreate, autoIndex, capped, collation",
                      key);
   }
   if (strcmp (key, "collection") == 0 && (!BSON_ITER_HOLDS_UTF8 (it) || !*bson_iter_utf8 (it, NULL))) {
      return mg_fail (error, MGCONN_ERR_OPTION, "Schema option \"collection\" must be a non-empty string");
   }
   if ((strcmp (key, "bufferCommands") == 0 || strcmp (key, "autoCreate") == 0 || strcmp (key, "autoIndex") == 0) &&
       !BSON_ITER_HOLDS_BOOL (it)) {
      return mg_fail (error, MGCONN_ERR_OPTION, "Schema option \"%s\" must be true or false", key);
   }
   if (strcmp (key, "bufferTimeoutMS") == 0 &&
       (!(BSON_ITER_HOLDS_INT32 (it) || BSON_ITER_HOLDS_INT64 (it)) || bson_iter_as_int64 (it) < 0 ||
        bson_iter_as_int64 (it) > INT32_MAX)) {
      return mg_fail (error, MGCONN_ERR_OPTION, "Schema option \"bufferTimeoutMS\" must be an integer from 0 to 2147483647");
   }
   if (strcmp (key, "capped") == 0) {
      bson_iter_t size;
      bool ok = ((BSON_ITER_HOLDS_INT32 (it) || BSON_ITER_HOLDS_INT64 (it)) && bson_iter_as_int64 (it) > 0) ||
                (BSON_ITER_HOLDS_DOCUMENT (it) && bson_iter_recurse (it, &size) && bson_iter_find (&size, "size") &&
                 BSON_ITER_HOLDS_NUMBER (&size) && bson_iter_as_int64 (&size) > 0);
      if (!ok) {
         return mg_fail (error, MGCONN_ERR_OPTION,
                         "Schema option \"capped\" must be a size in bytes (> 0) or {size, max}");
      }
   }
   if (strcmp (key, "collation") == 0 && !BSON_ITER_HOLDS_DOCUMENT (it)) {
      return mg_fail (error, MGCONN_ERR_OPTION, "Schema option \"collation\" must be a document such as {locale: \"en\"}");
   }
   return 0;
}

static int
borrow (bson_t *doc, const uint8_t *data, size_t len, const char *what, mgconn_error *error)
{
   if (!data) {
      bson_init (doc);
      return 0;
   }
   if (!bson_init_static (doc, data, len) || !bson_validate (doc, BSON_VALIDATE_NONE, NULL)) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "the schema's %s are not a valid BSON document", what);
   }
   return 0;
}

static int check_type_names (const bson_iter_t *def, char *path, size_t path_size, mgconn_error *error);

int
mgconn_schema_new (mgconn_schema **out, const uint8_t *definition, size_t definition_len, const uint8_t *options,
                   size_t options_len, mgconn_error *error)
{
   bson_t def, opts;
   bson_iter_t it;
   mgconn_schema *s;
   int rc;
   if (!out) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_schema_new: out is NULL");
   }
   *out = NULL;
   if ((rc = borrow (&def, definition, definition_len, "fields", error)) ||
       (rc = borrow (&opts, options, options_len, "options", error))) {
      return rc;
   }
   bson_iter_init (&it, &opts);
   while (bson_iter_next (&it)) {
      if ((rc = check_option (&it, error)) != 0) {
         return rc;
      }
   }
   {
      char path[256] = "";
      bson_iter_t fields;
      bson_iter_init (&fields, &def);
      while (bson_iter_next (&fields)) {
         bson_snprintf (path, sizeof path, "%s", bson_iter_key (&fields));
         if ((rc = check_type_names (&fields, path, sizeof path, error)) != 0) {
            return rc;
         }
      }
   }
   s = BSON_ALIGNED_ALLOC0 (mgconn_schema); /* embeds bson_t: 128-byte aligned */
   atomic_init (&s->refs, 1);
   bson_copy_to (&def, &s->definition);
   bson_copy_to (&opts, &s->options);
   bson_init (&s->indexes);
   *out = s;
   return 0;
}

int
mgconn_schema_index (mgconn_schema *s, const uint8_t *keys, size_t keys_len, const uint8_t *options,
                     size_t options_len, mgconn_error *error)
{
   bson_t k, o, model = BSON_INITIALIZER;
   char buf[16];
   const char *key;
   int rc;
   if (!s || !keys) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_schema_index: %s is NULL", s ? "keys" : "schema");
   }
   if ((rc = borrow (&k, keys, keys_len, "index keys", error)) || (rc = borrow (&o, options, options_len, "index options", error))) {
      return rc;
   }
   if (bson_empty (&k)) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "an index needs at least one key");
   }
   BSON_APPEND_DOCUMENT (&model, "key", &k);
   bson_concat (&model, &o);
   bson_uint32_to_string (bson_count_keys (&s->indexes), &key, buf, sizeof buf);
   BSON_APPEND_DOCUMENT (&s->indexes, key, &model);
   bson_destroy (&model);
   return 0;
}

void
mg_schema_ref (mgconn_schema *s)
{
   atomic_fetch_add (&s->refs, 1);
}

void
mgconn_schema_free (mgconn_schema *s)
{
   if (s && atomic_fetch_sub (&s->refs, 1) == 1) {
      bson_destroy (&s->definition);
      bson_destroy (&s->options);
      bson_destroy (&s->indexes);
      bson_free (s);
   }
}

int
mgconn_schema_definition (const mgconn_schema *s, const uint8_t **data, size_t *len)
{
   if (!s || !data || !len) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_schema_definition: a NULL argument");
   }
   *data = bson_get_data (&s->definition);
   *len = s->definition.len;
   return 0;
}

int
mgconn_schema_options (const mgconn_schema *s, const uint8_t **data, size_t *len)
{
   if (!s || !data || !len) {
      return mg_fail (NULL, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_schema_options: a NULL argument");
   }
   *data = bson_get_data (&s->options);
   *len = s->options.len;
   return 0;
}

/* ---- declared field types, checked on a model's writes ----
 *
 * A definition maps a path to what it holds: a type name ("str", "string", "number", "ObjectId":
 * each host's spelling, compared without case), a nested definition (a subdocument), an array of
 * one definition (every element), or {"type": NAME, ...} (Mongoose's long form). Values written
 * through a model are checked against it on the host thread, before anything is queued: inserts,
 * replacements, and the $set / $setOnInsert values of an update whose path is declared. A type
 * name mgconn does not know, an undeclared path and null are not checked (null is Mongoose's
 * "unset"). Nothing is cast: 5 for a string path is refused, as the host gave a number. */

typedef struct {
   const char *spellings; /* '|'-separated, lower case */
   const char *shown;     /* how messages name it */
   int32_t accepts[4];    /* bson_type_t values; 0 ends the list */
} field_type;

static const field_type field_types[] = {
   {"string|str", "string", {BSON_TYPE_UTF8}},
   {"number|float|double", "number", {BSON_TYPE_DOUBLE, BSON_TYPE_INT32, BSON_TYPE_INT64, BSON_TYPE_DECIMAL128}},
   {"int|integer|int32|int64|long", "integer", {BSON_TYPE_INT32, BSON_TYPE_INT64}},
   {"boolean|bool", "boolean", {BSON_TYPE_BOOL}},
   {"date|datetime", "date", {BSON_TYPE_DATE_TIME}},
   {"objectid", "ObjectId", {BSON_TYPE_OID}},
   {"buffer|bytes|binary|uuid", "binary", {BSON_TYPE_BINARY}},
   {"decimal128|decimal", "Decimal128", {BSON_TYPE_DECIMAL128}},
   {"object|dict|document|map", "document", {BSON_TYPE_DOCUMENT}},
   {"array|list|tuple", "array", {BSON_TYPE_ARRAY}},
   {"table", "table", {BSON_TYPE_DOCUMENT, BSON_TYPE_ARRAY}},
   {"regex|regexp", "regex", {BSON_TYPE_REGEX}},
   {"timestamp", "timestamp", {BSON_TYPE_TIMESTAMP}},
};

static const char *
bson_type_word (bson_type_t t)
{
   switch (t) {
   case BSON_TYPE_DOUBLE: return "double";
   case BSON_TYPE_UTF8: return "string";
   case BSON_TYPE_DOCUMENT: return "document";
   case BSON_TYPE_ARRAY: return "array";
   case BSON_TYPE_BINARY: return "binary";
   case BSON_TYPE_OID: return "ObjectId";
   case BSON_TYPE_BOOL: return "boolean";
   case BSON_TYPE_DATE_TIME: return "date";
   case BSON_TYPE_REGEX: return "regex";
   case BSON_TYPE_INT32: return "int32";
   case BSON_TYPE_TIMESTAMP: return "timestamp";
   case BSON_TYPE_INT64: return "int64";
   case BSON_TYPE_DECIMAL128: return "Decimal128";
   case BSON_TYPE_MINKEY: return "MinKey";
   case BSON_TYPE_MAXKEY: return "MaxKey";
   default: return "another BSON type";
   }
}

/* Steps through a '|'-separated spelling list: the next spelling into `out`; false at the end. */
static bool
next_spelling (const char **list, char *out, size_t out_size)
{
   const char *end;
   size_t n;
   if (!**list) {
      return false;
   }
   end = strchr (*list, '|');
   n = end ? (size_t) (end - *list) : strlen (*list);
   bson_snprintf (out, out_size, "%.*s", (int) n, *list);
   *list += n + (end ? 1 : 0);
   return true;
}

/* The type a name means, or NULL for a name not known here (such a path is not checked). */
static const field_type *
field_type_named (const char *name)
{
   for (size_t i = 0; i < sizeof field_types / sizeof field_types[0]; i++) {
      const char *p = field_types[i].spellings;
      char spelling[32];
      while (next_spelling (&p, spelling, sizeof spelling)) {
         if (strcasecmp (spelling, name) == 0) {
            return &field_types[i];
         }
      }
   }
   return NULL;
}

/* A type name a schema declares that is one or two letters away from a known spelling ("Nubmer",
 * "strng") is a typo, refused when the schema is made; a name far from all of them (Mixed, Any, a
 * class of the host's own) is left unchecked, as below. Writes `close` (a known spelling). */
static bool
mistyped_type_name (const char *name, char *close, size_t close_size)
{
   size_t best = 3;
   if (field_type_named (name)) {
      return false;
   }
   for (size_t i = 0; i < sizeof field_types / sizeof field_types[0]; i++) {
      const char *p = field_types[i].spellings;
      char spelling[32];
      while (next_spelling (&p, spelling, sizeof spelling)) {
         size_t d = mg_edit_distance (name, spelling);
         /* two letters away only for names long enough that two edits leave most of them */
         if (d < best && (d == 1 || (strlen (name) >= 5 && strlen (spelling) >= 5))) {
            best = d;
            bson_snprintf (close, close_size, "%s", field_types[i].shown);
         }
      }
   }
   return best < 3;
}

static bool long_form (const bson_iter_t *def, bson_iter_t *type);

/* Walks a definition for mistyped type names and for values that are no type at all (a number, a
 * boolean); -MGCONN_ERR_INVALID_ARGUMENT naming the path. */
static int
check_type_names (const bson_iter_t *def, char *path, size_t path_size, mgconn_error *error)
{
   bson_iter_t sub;
   size_t used = strlen (path);
   int rc = 0;
   if (long_form (def, &sub)) {
      return check_type_names (&sub, path, path_size, error);
   }
   if (BSON_ITER_HOLDS_UTF8 (def)) {
      char close[32];
      const char *name = bson_iter_utf8 (def, NULL);
      if (mistyped_type_name (name, close, sizeof close)) {
         return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT,
                         "Invalid schema configuration: `%s` is not a valid type at path `%s`; did you mean %s?",
                         name, path, close);
      }
      return 0;
   }
   if (BSON_ITER_HOLDS_NUMBER (def) || BSON_ITER_HOLDS_BOOL (def)) { /* {"x": 5}: a value, not a type */
      char value[32];
      if (BSON_ITER_HOLDS_BOOL (def)) {
         bson_snprintf (value, sizeof value, "%s", bson_iter_bool (def) ? "true" : "false");
      } else {
         bson_snprintf (value, sizeof value, "%g", bson_iter_as_double (def));
      }
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT,
                      "Invalid schema configuration: `%s` is not a valid type at path `%s` (a path maps to a "
                      "type name, a nested definition, a list of one, or {type: ...})",
                      value, path);
   }
   if ((BSON_ITER_HOLDS_DOCUMENT (def) || BSON_ITER_HOLDS_ARRAY (def)) && bson_iter_recurse (def, &sub)) {
      bool array = BSON_ITER_HOLDS_ARRAY (def);
      while (rc == 0 && bson_iter_next (&sub)) {
         if (!array) {
            bson_snprintf (path + used, path_size - used, "%s%s", used ? "." : "", bson_iter_key (&sub));
         }
         rc = check_type_names (&sub, path, path_size, error);
         path[used] = '\0';
      }
   }
   return rc;
}


typedef struct {
   char path[256];
   char *why;      /* the message, filled at the first refusal */
   size_t why_size;
} type_check;

static void
path_push (type_check *c, size_t *saved, const char *key)
{
   size_t used = strlen (c->path);
   *saved = used;
   bson_snprintf (c->path + used, sizeof c->path - used, "%s%s", used ? "." : "", key);
}

static bool check_value (type_check *c, const bson_iter_t *def, const bson_iter_t *value);

/* Every declared field present in the subdocument `value` against the definition document `def`. */
static bool
check_fields (type_check *c, const bson_iter_t *def, const bson_iter_t *value)
{
   bson_iter_t fields, field;
   if (!bson_iter_recurse (value, &fields)) {
      return true;
   }
   while (bson_iter_next (&fields)) {
      size_t saved;
      bool ok;
      if (!bson_iter_recurse (def, &field) || !bson_iter_find (&field, bson_iter_key (&fields))) {
         continue;
      }
      path_push (c, &saved, bson_iter_key (&fields));
      ok = check_value (c, &field, &fields);
      c->path[saved] = '\0';
      if (!ok) {
         return false;
      }
   }
   return true;
}

/* A definition in Mongoose's long form {"type": NAME, ...}: `type` is set to its "type". */
static bool
long_form (const bson_iter_t *def, bson_iter_t *type)
{
   return BSON_ITER_HOLDS_DOCUMENT (def) && bson_iter_recurse (def, type) && bson_iter_find (type, "type") &&
          (BSON_ITER_HOLDS_UTF8 (type) || BSON_ITER_HOLDS_DOCUMENT (type) || BSON_ITER_HOLDS_ARRAY (type));
}

static bool
refuse (type_check *c, const char *declared, bson_type_t got)
{
   bson_snprintf (c->why, c->why_size, "path `%s` is declared %s and got %s (a schema's types are checked, never cast)",
                  c->path, declared, bson_type_word (got));
   return false;
}

static bool
check_value (type_check *c, const bson_iter_t *def, const bson_iter_t *value)
{
   bson_type_t got = bson_iter_type (value);
   bson_iter_t type, element, elements;
   if (got == BSON_TYPE_NULL || got == BSON_TYPE_UNDEFINED) {
      return true;
   }
   if (long_form (def, &type)) {
      return check_value (c, &type, value);
   }
   if (BSON_ITER_HOLDS_UTF8 (def)) {
      const char *name = bson_iter_utf8 (def, NULL);
      const field_type *t = field_type_named (name);
      if (!t) {
         return true; /* Mixed, Any, or a name of the host's own: not checked */
      }
      for (size_t i = 0; i < 4 && t->accepts[i]; i++) {
         if ((bson_type_t) t->accepts[i] == got) {
            return true;
         }
      }
      return refuse (c, name, got);
   }
   if (BSON_ITER_HOLDS_DOCUMENT (def)) {
      if (!bson_iter_recurse (def, &element) || !bson_iter_next (&element)) {
         return true; /* {}: Mixed */
      }
      if (got != BSON_TYPE_DOCUMENT) {
         return refuse (c, "a subdocument", got);
      }
      return check_fields (c, def, value);
   }
   if (BSON_ITER_HOLDS_ARRAY (def)) {
      if (got != BSON_TYPE_ARRAY) {
         return refuse (c, "an array", got);
      }
      if (!bson_iter_recurse (def, &element) || !bson_iter_next (&element) || !bson_iter_recurse (value, &elements)) {
         return true; /* []: an array of anything */
      }
      while (bson_iter_next (&elements)) {
         size_t saved;
         bool ok;
         path_push (c, &saved, bson_iter_key (&elements));
         ok = check_value (c, &element, &elements);
         c->path[saved] = '\0';
         if (!ok) {
            return false;
         }
      }
   }
   return true;
}

/* The definition of the dotted `path` ("address.city", "tags.0", "tags.$"), or false when the path
 * is not declared. */
static bool
definition_of (const bson_t *definition, const char *path, bson_iter_t *out)
{
   bson_iter_t level, type;
   const char *seg = path;
   bool top = true;
   while (*seg) {
      const char *dot = strchr (seg, '.');
      size_t n = dot ? (size_t) (dot - seg) : strlen (seg);
      char key[128];
      if (n >= sizeof key) {
         return false;
      }
      memcpy (key, seg, n);
      key[n] = '\0';
      if (top) {
         if (!bson_iter_init_find (out, definition, key)) {
            return false;
         }
         top = false;
      } else {
         if (long_form (out, &type)) {
            *out = type;
         }
         if (BSON_ITER_HOLDS_ARRAY (out)) { /* an element: "tags.0", "tags.$", "tags.$[]" */
            if (!bson_iter_recurse (out, &level) || !bson_iter_next (&level)) {
               return false;
            }
         } else if (!BSON_ITER_HOLDS_DOCUMENT (out) || !bson_iter_recurse (out, &level) || !bson_iter_find (&level, key)) {
            return false;
         }
         *out = level;
      }
      seg += n + (dot ? 1 : 0);
   }
   return !top;
}

bool
mg_schema_check_document (const mgconn_schema *s, const bson_t *doc, char *why, size_t why_size)
{
   type_check c = {.why = why, .why_size = why_size};
   bson_iter_t it, def;
   if (bson_empty (&s->definition) || !bson_iter_init (&it, doc)) {
      return true;
   }
   while (bson_iter_next (&it)) {
      if (bson_iter_init_find (&def, &s->definition, bson_iter_key (&it))) {
         c.path[0] = '\0';
         size_t saved;
         path_push (&c, &saved, bson_iter_key (&it));
         if (!check_value (&c, &def, &it)) {
            return false;
         }
      }
   }
   return true;
}

bool
mg_schema_check_update (const mgconn_schema *s, const bson_t *update, char *why, size_t why_size)
{
   type_check c = {.why = why, .why_size = why_size};
   bson_iter_t op, field, def;
   if (bson_empty (&s->definition) || !bson_iter_init (&op, update)) {
      return true;
   }
   while (bson_iter_next (&op)) {
      if ((strcmp (bson_iter_key (&op), "$set") != 0 && strcmp (bson_iter_key (&op), "$setOnInsert") != 0) ||
          !BSON_ITER_HOLDS_DOCUMENT (&op) || !bson_iter_recurse (&op, &field)) {
         continue;
      }
      while (bson_iter_next (&field)) {
         if (definition_of (&s->definition, bson_iter_key (&field), &def)) {
            bson_snprintf (c.path, sizeof c.path, "%s", bson_iter_key (&field));
            if (!check_value (&c, &def, &field)) {
               return false;
            }
         }
      }
   }
   return true;
}
