/*
 * schema.c: schemas, the part of a model that the host defines: a field definition that mgconn
 * keeps for the host, options that change how the model's operations and init behave, and the
 * indexes that autoIndex builds. Options are checked when the schema is made.
 */
#include "connection.h"

#include <string.h>

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
