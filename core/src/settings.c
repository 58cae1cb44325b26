/*
 * settings.c: runtime-wide settings (Mongoose's mongoose.set) and the precedence that decides each
 * operation's buffering: the model's schema, then the connection's options, then these, then the
 * defaults (bufferCommands true, bufferTimeoutMS 10000). Read again for every operation.
 */
#include "connection.h"

#include <string.h>

typedef struct {
   const char *name;
   size_t offset;
   bool is_bool;
} setting;

static const setting settings[] = {
   {"bufferCommands", offsetof (mgconn_runtime, set_buffer_commands), true},
   {"bufferTimeoutMS", offsetof (mgconn_runtime, set_buffer_timeout_ms), false},
   {"autoIndex", offsetof (mgconn_runtime, set_auto_index), true},
   {"autoCreate", offsetof (mgconn_runtime, set_auto_create), true},
   {"debug", offsetof (mgconn_runtime, set_debug), true},
   {"pluralization", offsetof (mgconn_runtime, set_pluralization), true},
   {"overwriteModels", offsetof (mgconn_runtime, set_overwrite_models), true},
};

static const setting *
find_setting (const char *name)
{
   for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
      if (strcasecmp (settings[i].name, name) == 0) {
         return &settings[i];
      }
   }
   return NULL;
}

void
mg_settings_init (mgconn_runtime *rt)
{
   for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
      atomic_init ((atomic_int *) ((char *) rt + settings[i].offset), -1);
   }
}

int
mgconn_runtime_set (mgconn_runtime *rt, const uint8_t *data, size_t len, mgconn_error *error)
{
   bson_t doc;
   bson_iter_t it;
   if (!rt || !data || !bson_init_static (&doc, data, len) || !bson_validate (&doc, BSON_VALIDATE_NONE, NULL)) {
      return mg_fail (error, MGCONN_ERR_INVALID_ARGUMENT, "mgconn_runtime_set: %s",
                      rt ? "the settings are not a valid BSON document" : "rt is NULL");
   }
   /* Check every entry before changing any: a bad document changes nothing. */
   for (int pass = 0; pass < 2; pass++) {
      bson_iter_init (&it, &doc);
      while (bson_iter_next (&it)) {
         const setting *s = find_setting (bson_iter_key (&it));
         int value = -1;
         if (!s) {
            return mg_fail (error, MGCONN_ERR_OPTION,
                            "Unknown setting \"%s\": the settings are bufferCommands, bufferTimeoutMS, autoIndex, "
                            "autoCreate, debug, pluralization, overwriteModels",
                            bson_iter_key (&it));
         }
         if (BSON_ITER_HOLDS_NULL (&it)) {
            value = -1;
         } else if (s->is_bool && BSON_ITER_HOLDS_BOOL (&it)) {
            value = bson_iter_bool (&it);
         } else if (!s->is_bool && (BSON_ITER_HOLDS_INT32 (&it) || BSON_ITER_HOLDS_INT64 (&it)) &&
                    bson_iter_as_int64 (&it) >= 0 && bson_iter_as_int64 (&it) <= INT32_MAX) {
            value = (int) bson_iter_as_int64 (&it);
         } else {
            return mg_fail (error, MGCONN_ERR_OPTION, "Setting \"%s\" must be %s (or null to unset it)", s->name,
                            s->is_bool ? "true or false" : "an integer from 0 to 2147483647");
         }
         if (pass == 1) {
            atomic_store ((atomic_int *) ((char *) rt + s->offset), value);
         }
      }
   }
   return 0;
}

int
mgconn_runtime_get (const mgconn_runtime *rt, const char *name, int32_t *value)
{
   const setting *s = name ? find_setting (name) : NULL;
   if (!rt || !s || !value) {
      return mg_fail (NULL, MGCONN_ERR_OPTION, "Unknown setting \"%s\"", name ? name : "(null)");
   }
   *value = atomic_load ((atomic_int *) ((char *) rt + s->offset));
   return 0;
}

/* First set value wins: schema (model), connection, runtime, default. */
static int
first_set (int schema, int conn, int runtime, int fallback)
{
   return schema >= 0 ? schema : conn >= 0 ? conn : runtime >= 0 ? runtime : fallback;
}

int
mg_effective_buffer_commands (const mgconn_op *op)
{
   return first_set (op->model ? mg_model_schema_int (op->model, "bufferCommands") : -1,
                     op->conn->has_opts ? op->conn->opts.buffer_commands : -1, atomic_load (&op->rt->set_buffer_commands), 1);
}

int32_t
mg_effective_buffer_timeout_ms (const mgconn_op *op)
{
   return first_set (op->model ? mg_model_schema_int (op->model, "bufferTimeoutMS") : -1,
                     op->conn->has_opts ? op->conn->opts.buffer_timeout_ms : -1, atomic_load (&op->rt->set_buffer_timeout_ms), 10000);
}

bool
mg_effective_debug (const mgconn_op *op)
{
   return first_set (-1, op->conn->has_opts ? op->conn->opts.debug : -1, atomic_load (&op->rt->set_debug), 0) == 1;
}

bool
mg_effective_auto (const mgconn_model *model, const mgconn_connection *root, bool create)
{
   const char *name = create ? "autoCreate" : "autoIndex";
   int from_conn = !root->has_opts ? -1 : create ? root->opts.auto_create : root->opts.auto_index;
   return first_set (mg_model_schema_int (model, name), from_conn,
                     atomic_load (create ? &root->rt->set_auto_create : &root->rt->set_auto_index), 1) == 1;
}

/* methodCase (runtime options): which spelling of method names messages use. */
void
mg_conn_read_method_case (mgconn_runtime *rt, const uint8_t *opts, size_t opts_len)
{
   bson_t doc;
   bson_iter_t it;
   rt->camel_case = false;
   if (opts && bson_init_static (&doc, opts, opts_len) && bson_iter_init (&it, &doc)) {
      while (bson_iter_next (&it)) {
         if (strcasecmp (bson_iter_key (&it), "methodCase") == 0 && BSON_ITER_HOLDS_UTF8 (&it)) {
            rt->camel_case = strcmp (bson_iter_utf8 (&it, NULL), "camel") == 0;
         }
      }
   }
}
